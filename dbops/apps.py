from django.apps import AppConfig


class DbopsConfig(AppConfig):
    name = "dbops"

    def ready(self) -> None:
        from dbops import panels

        # The database procedures: VACUUM / ANALYZE / REINDEX / UPGRADE / CREATE INDEX,
        # "Configuration change" and "System tuning", and PostgreSQL security updates.
        from dbops.configuration import procedure  # noqa: F401
        from dbops.procedures import extensions, indexes, tables  # noqa: F401
        from dbops.procedures.common import target_queues
        from dbops.security import executor  # noqa: F401
        from dbops.tuning import procedure as tuning_procedure  # noqa: F401
        from portal import registry

        panels.register()
        registry.register_worker_queues(target_queues)
