from django.urls import path

from maintenance.security import views

app_name = "security"

urlpatterns = [
    path("", views.compliance, name="compliance"),
    path("compliance.csv", views.compliance_csv, name="compliance_csv"),
    path("advisories/", views.advisories, name="advisories"),
    path("advisories/<int:pk>/", views.advisory_detail, name="advisory"),
    path("components/<int:pk>/", views.component_detail, name="component"),
    path("components/<int:pk>/refresh/", views.component_refresh, name="component_refresh"),
    path("exposures/<int:pk>/propose/", views.propose, name="propose"),
]
