from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import views

portal_patterns = (
    [
        path("", views.dashboard_view, name="dashboard"),
        path("preferences/", views.preferences_view, name="preferences"),
        path("notifications/", views.notifications_view, name="notifications"),
        path("notifications/read/", views.notifications_mark_read, name="notifications_read"),
    ],
    "portal",
)

# Friendly error pages: Django's own handlers render 403.html, 403_csrf.html and 500.html;
# ours renders 404.html, filtering what the page repeats of the error.
handler404 = "portal.views.not_found"

urlpatterns = [
    path("", include(portal_patterns)),
    path("", include("changes.urls")),
    path("", include("maintenance.urls")),
    path("", include("maintenance.calendar_urls")),
    path("dbops/", include("dbops.urls")),
    # Reports (the audit trail), exports, evidence packs, KPIs and MFA.
    path("", include("compliance.urls")),
    # The REST API, its schema and docs, and the deployment gate (api/).
    path("api/", include("api.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
