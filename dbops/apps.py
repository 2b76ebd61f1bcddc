from django.apps import AppConfig


class DbopsConfig(AppConfig):
    name = "dbops"

    def ready(self) -> None:
        # Plug VACUUM / ANALYZE / REINDEX / UPGRADE / CREATE INDEX into the framework.
        from dbops import panels
        from dbops.procedures import extensions, indexes, tables  # noqa: F401

        panels.register()
