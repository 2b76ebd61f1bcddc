"""PostgreSQL parts of security updates: discovery and the extension executor."""
