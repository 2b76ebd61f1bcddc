from django.urls import include, path

from maintenance import views

app_name = "maintenance"

urlpatterns = [
    path("windows/<int:pk>/", views.window_detail, name="window"),
    path("windows/<int:pk>/start/", views.window_start, name="window_start"),
    path("windows/<int:pk>/subscribe/", views.window_subscribe, name="window_subscribe"),
    path("windows/<int:pk>/stakeholders/", views.window_stakeholders, name="window_stakeholders"),
    path("windows/<int:pk>/report/", views.window_report, name="report"),
    path("windows/<int:pk>/report.pdf", views.window_report_pdf, name="report_pdf"),
    path("changes/<int:pk>/schedule/", views.change_schedule, name="schedule"),
    path("changes/<int:pk>/unschedule/", views.change_unschedule, name="unschedule"),
    path("changes/<int:pk>/procedures/add/", views.procedure_add, name="procedure_add"),
    path("procedures/<int:pk>/remove/", views.procedure_remove, name="procedure_remove"),
    path("steps/<int:pk>/complete/", views.step_complete, name="step_complete"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/retry/", views.run_retry, name="run_retry"),
    path("runs/<int:pk>/abandon/", views.run_abandon, name="run_abandon"),
    path("security/", include("maintenance.security.urls")),
]
