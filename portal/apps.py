from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import heartbeat, signals  # noqa: F401  (audited auth, worker heartbeat)
        from portal.registry import register_nav

        register_nav("Dashboard", "portal:dashboard", allowed=lambda user: True, order=0)
        # Reports (order 80) are registered by the compliance app, which owns them.
        register_nav("Admin", "admin:index", allowed=lambda user: user.is_staff, order=90)
