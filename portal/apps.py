from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import heartbeat, signals  # noqa: F401  (audited auth, worker heartbeat)
        from portal.registry import register_nav
        from portal.roles import Role, has_role

        register_nav("Dashboard", "portal:dashboard", allowed=lambda user: True, order=0)
        register_nav(
            "Reports",
            "portal:reports",
            allowed=lambda user: user.is_superuser or has_role(user, Role.COMPLIANCE),
            order=80,
        )
        register_nav("Admin", "admin:index", allowed=lambda user: user.is_staff, order=90)
