"""Pytest plugins loaded with ``-p`` (see ``addopts`` in pyproject.toml)."""
