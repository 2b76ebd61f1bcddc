from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "maintenance"

    def ready(self) -> None:
        # Register the built-in procedure kinds.
        from maintenance.procedures import checklist, script  # noqa: F401

        # Security updates: their executors, procedure kind, beat tasks and admin.
        from maintenance.security import admin, procedure, tasks  # noqa: F401
        from maintenance.security.executors import pyenv  # noqa: F401
        from maintenance.security.executors import script as script_executor  # noqa: F401
