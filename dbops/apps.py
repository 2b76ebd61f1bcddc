from django.apps import AppConfig


class DbopsConfig(AppConfig):
    name = "dbops"
