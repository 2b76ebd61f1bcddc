"""Configuration management for database targets (seed: ConfigurationChange,
updateConfiguration, CONFIG_VALIDATION).

A CONFIGURATION change request carries one change set: each entry names a parameter,
the value read from ``pg_settings`` when proposed and again at apply, the new value,
the verdict of every rule that applied and the value to restore. The "Configuration
change" procedure applies the set as one transaction of configuration: ALTER SYSTEM
each entry, reload, verify each through ``pg_settings``, or restore every entry.
"""
