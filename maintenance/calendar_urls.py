from django.urls import path

from maintenance import views_calendar as views

app_name = "calendar"

urlpatterns = [
    path("calendar/", views.calendar_month, name="month"),
    path("calendar/week/", views.calendar_week, name="week"),
    path("calendar/feed/<slug:token>.ics", views.calendar_feed, name="feed"),
    path("calendar/feed-token/", views.calendar_token, name="token"),
    path("windows/emergency/new/", views.emergency_new, name="emergency_new"),
    path("windows/approvals/<int:pk>/decide/", views.window_decide, name="window_decide"),
    path("windows/approvals/<int:pk>/delegate/", views.window_delegate, name="window_delegate"),
    path("windows/approvals/<int:pk>/revoke/", views.window_revoke, name="window_revoke"),
]
