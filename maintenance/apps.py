from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "maintenance"

    def ready(self) -> None:
        from changes import hooks
        from maintenance import panels, template_procedures
        from maintenance.procedures import checklist, script  # noqa: F401  (built-in kinds)

        # Security updates: their executors, procedure kind, beat tasks and admin.
        from maintenance.security import admin, procedure, tasks  # noqa: F401
        from maintenance.security.executors import pyenv  # noqa: F401
        from maintenance.security.executors import script as script_executor  # noqa: F401
        from maintenance.services import reports, windows

        panels.register()
        template_procedures.register()
        hooks.on_approval_decided(windows.on_change_approval_decided)
        hooks.on_change_moved(reports.on_change_moved)
