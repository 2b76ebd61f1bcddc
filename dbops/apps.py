from django.apps import AppConfig


class DbopsConfig(AppConfig):
    name = "dbops"

    def ready(self) -> None:
        # Plug VACUUM / ANALYZE / REINDEX / UPGRADE into the procedure framework.
        from dbops import procedures  # noqa: F401

        # "Configuration change" and "System tuning".
        from dbops.configuration import procedure  # noqa: F401
        from dbops.security import executor  # noqa: F401  (PostgreSQL security updates)
        from dbops.tuning import procedure as tuning_procedure  # noqa: F401
