from django.urls import path

from dbops import views
from dbops.configuration import views as configuration

app_name = "dbops"

urlpatterns = [
    path("targets/", views.target_list, name="targets"),
    path("targets/new/", views.target_create, name="create"),
    path("targets/<int:pk>/", views.target_detail, name="target"),
    path("targets/<int:pk>/edit/", views.target_edit, name="edit"),
    path("targets/<int:pk>/check/", views.target_check, name="check"),
    path("targets/<int:pk>/queries/", views.target_queries, name="queries"),
    path("targets/<int:pk>/queries/propose/", views.index_propose, name="propose"),
    path("targets/<int:pk>/queries/explain/", views.target_explain, name="explain"),
    path("indexes/<int:pk>/verify/", views.index_verify, name="verify_index"),
    path(
        "targets/<int:pk>/configuration/",
        configuration.configuration_history,
        name="configuration_history",
    ),
    path(
        "targets/<int:pk>/configuration/propose/",
        configuration.configuration_propose,
        name="configuration_propose",
    ),
    path(
        "targets/<int:pk>/configuration/suggest/",
        configuration.configuration_suggest,
        name="configuration_suggest",
    ),
    path(
        "targets/<int:pk>/configuration/export/",
        configuration.configuration_export,
        name="configuration_export",
    ),
    path("configuration/<int:pk>/", configuration.configuration_set, name="configuration_set"),
]
