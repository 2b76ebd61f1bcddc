from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from api import panels, schema  # noqa: F401  (the schema's token extension)

        panels.register()
