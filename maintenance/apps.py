from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "maintenance"

    def ready(self) -> None:
        # Register the built-in procedure kinds.
        from maintenance.procedures import checklist, script  # noqa: F401
