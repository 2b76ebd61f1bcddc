"""The seed's tuneSystem loop, as decisions over samples.

baseline (N samples) → for each adjustment: apply, wait for stabilisation (a minimum
time, then until the spread of the last samples falls under a threshold, or a maximum
time), measure N samples, keep it only if the median improved beyond the noise
threshold, else roll it back → final verification against the baseline.

The loop takes its effects as functions (measure, apply, roll back), so the decisions
are the same whether they run against a target or are read in a test.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class LoopSettings:
    samples: int = 5
    sample_seconds: int = 2
    min_stabilise_seconds: float = 2.0
    max_stabilise_seconds: float = 30.0
    spread_percent: float = 20.0
    spread_window: int = 3
    noise_percent: float = 5.0

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> LoopSettings:
        defaults = cls()
        return cls(
            samples=int(params.get("samples") or defaults.samples),
            sample_seconds=int(params.get("sample_seconds") or defaults.sample_seconds),
            min_stabilise_seconds=float(
                params.get("min_stabilise_seconds", defaults.min_stabilise_seconds)
            ),
            max_stabilise_seconds=float(
                params.get("max_stabilise_seconds", defaults.max_stabilise_seconds)
            ),
            spread_percent=float(params.get("spread_percent", defaults.spread_percent)),
            spread_window=int(params.get("spread_window") or defaults.spread_window),
            noise_percent=float(params.get("noise_percent", defaults.noise_percent)),
        )

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def spread_percent(values: list[float]) -> float:
    """(max − min) / median, in percent: how far apart the last samples are."""
    if not values:
        return 0.0
    middle = median(values)
    if middle == 0:
        return 0.0 if max(values) == min(values) else float("inf")
    return 100.0 * (max(values) - min(values)) / abs(middle)


def improvement_percent(reference: float, value: float, *, higher_is_better: bool) -> float:
    """How much better ``value`` is than ``reference`` (negative: worse)."""
    if reference == 0:
        if value == reference:
            return 0.0
        better = value > reference if higher_is_better else value < reference
        return 100.0 if better else -100.0
    change = (value - reference) / abs(reference) * 100.0
    return change if higher_is_better else -change


@dataclass
class Decision:
    kept: bool
    reference: float
    median: float
    improvement: float
    stabilised: bool
    waited: float
    message: str


@dataclass
class Loop:
    settings: LoopSettings
    metric: str
    higher_is_better: bool
    # measure(phase, index of the adjustment or None) -> the metric's value of one sample
    measure: Callable[[str, int | None], float | None]
    log: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    pause: Callable[[float], None] = time.sleep
    history: list[tuple[str, int | None, float | None]] = field(default_factory=list)

    def _take(self, phase: str, index: int | None, count: int) -> list[float]:
        values = []
        for _ in range(count):
            value = self.measure(phase, index)
            self.history.append((phase, index, value))
            if value is not None:
                values.append(value)
        return values

    def baseline(self) -> float:
        values = self._take("BASELINE", None, self.settings.samples)
        if not values:
            raise ValueError(f"The workload gave no {self.metric} figure for the baseline.")
        result = median(values)
        self.log(f"Baseline {self.metric}: median {result:.3f} of {len(values)} samples.\n")
        return result

    def stabilise(self, index: int) -> tuple[bool, float]:
        """Wait the minimum time, then sample until the spread of the last window of
        samples is under the threshold (or the maximum time has passed)."""
        started = self.clock()
        if self.settings.min_stabilise_seconds > 0:
            self.pause(self.settings.min_stabilise_seconds)
        recent: list[float] = []
        while True:
            recent += self._take("STABILISE", index, 1)
            window = recent[-self.settings.spread_window :]
            waited = self.clock() - started
            if len(window) >= self.settings.spread_window:
                spread = spread_percent(window)
                if spread <= self.settings.spread_percent:
                    self.log(f"  stable after {waited:.1f} s (spread {spread:.1f}%).\n")
                    return True, waited
            if waited >= self.settings.max_stabilise_seconds:
                self.log(f"  not stable after {waited:.1f} s; measuring anyway.\n")
                return False, waited

    def judge(self, index: int, reference: float) -> Decision:
        stabilised, waited = self.stabilise(index)
        values = self._take("MEASURE", index, self.settings.samples)
        if not values:
            return Decision(False, reference, 0.0, 0.0, stabilised, waited, "no figures")
        result = median(values)
        gain = improvement_percent(reference, result, higher_is_better=self.higher_is_better)
        kept = gain > self.settings.noise_percent
        message = (
            f"median {self.metric} {result:.3f} against {reference:.3f}: "
            f"{gain:+.1f}% ({'beyond' if kept else 'within or below'} the "
            f"{self.settings.noise_percent:g}% noise threshold) → "
            f"{'kept' if kept else 'rolled back'}"
        )
        self.log(f"  {message}\n")
        return Decision(kept, reference, result, gain, stabilised, waited, message)

    def final(self, baseline: float) -> tuple[float, float, bool]:
        """The final verification: median now, its gain over the baseline, and whether
        it is no worse than the baseline beyond the noise."""
        values = self._take("FINAL", None, self.settings.samples)
        result = median(values)
        gain = improvement_percent(baseline, result, higher_is_better=self.higher_is_better)
        if gain < -self.settings.noise_percent:
            # One more set before calling the run worse than its baseline: a burst of
            # load elsewhere on the host must not undo what the loop found.
            self.log(f"Final median {result:.3f} looks worse ({gain:+.1f}%); measuring again.\n")
            values += self._take("FINAL", None, self.settings.samples)
            result = median(values)
            gain = improvement_percent(baseline, result, higher_is_better=self.higher_is_better)
        return result, gain, gain >= -self.settings.noise_percent
