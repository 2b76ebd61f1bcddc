from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        from compliance import panels, retention
        from compliance.mfa import signals  # noqa: F401  (MFA state at login)

        panels.register()
        retention.connect()
