from django.urls import path

from changes import views

app_name = "changes"

urlpatterns = [
    path("changes/", views.change_list, name="list"),
    path("changes/new/", views.change_create, name="create"),
    path("changes/<int:pk>/", views.change_detail, name="detail"),
    path("changes/<int:pk>/edit/", views.change_edit, name="edit"),
    path("changes/<int:pk>/submit/", views.change_submit, name="submit"),
    path("changes/<int:pk>/cancel/", views.change_cancel, name="cancel"),
    path("changes/<int:pk>/copy/", views.change_copy, name="copy"),
    path("approvals/", views.approval_queue, name="approvals"),
    path("approvals/<int:pk>/", views.approval_decide, name="approval"),
    path("approvals/<int:pk>/delegate/", views.approval_delegate, name="delegate"),
]
