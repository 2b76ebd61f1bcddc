"""System tuning (seed: SystemTuning, tuneSystem): baseline, adjust, wait for
stabilisation, measure, keep only what improved beyond the noise, final verification.
Every sample is stored; run pages and reports chart them as server-rendered SVG."""
