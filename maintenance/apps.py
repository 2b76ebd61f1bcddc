from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "maintenance"

    def ready(self) -> None:
        from changes import hooks
        from maintenance import panels
        from maintenance.procedures import checklist, script  # noqa: F401  (built-in kinds)
        from maintenance.services import reports, windows

        panels.register()
        hooks.on_approval_decided(windows.on_change_approval_decided)
        hooks.on_change_moved(reports.on_change_moved)
