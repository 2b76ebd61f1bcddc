from django.apps import AppConfig


class DbopsConfig(AppConfig):
    name = "dbops"

    def ready(self) -> None:
        # Plug VACUUM / ANALYZE / REINDEX / UPGRADE into the procedure framework.
        from dbops import procedures  # noqa: F401
