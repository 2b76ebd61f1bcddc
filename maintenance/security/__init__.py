"""Security updates: inventory, advisories, executors and the security-update procedure."""
