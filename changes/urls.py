from django.urls import path

from changes import template_views, views

app_name = "changes"

urlpatterns = [
    path("changes/", views.change_list, name="list"),
    path("changes/new/", views.change_create, name="create"),
    path("changes/<int:pk>/", views.change_detail, name="detail"),
    path("changes/<int:pk>/edit/", views.change_edit, name="edit"),
    path("changes/<int:pk>/submit/", views.change_submit, name="submit"),
    path("changes/<int:pk>/cancel/", views.change_cancel, name="cancel"),
    path("changes/<int:pk>/copy/", views.change_copy, name="copy"),
    path("changes/<int:pk>/implemented/", views.change_implemented, name="implemented"),
    path("changes/<int:pk>/verify/", views.change_verify, name="verify"),
    path("changes/<int:pk>/review/", views.change_review, name="review"),
    path("changes/<int:pk>/close/", views.change_close, name="close"),
    path("changes/<int:pk>/corrective-action/", views.change_correct, name="correct"),
    path("approvals/", views.approval_queue, name="approvals"),
    path("approvals/<int:pk>/", views.approval_decide, name="approval"),
    path("approvals/<int:pk>/delegate/", views.approval_delegate, name="delegate"),
    # The standard change catalog.
    path("templates/", template_views.template_list, name="templates"),
    path("templates/new/", template_views.template_new, name="template_new"),
    path("templates/<int:pk>/", template_views.template_detail, name="template"),
    path("templates/<int:pk>/edit/", template_views.template_edit, name="template_edit"),
    path("templates/<int:pk>/retire/", template_views.template_retire, name="template_retire"),
    path("templates/<int:pk>/file/", template_views.template_file, name="template_file"),
    path(
        "templates/approvals/<int:pk>/decide/",
        template_views.template_decide,
        name="template_decide",
    ),
    path(
        "approvals/<int:pk>/delegation/revoke/",
        views.approval_delegation_revoke,
        name="revoke_delegation",
    ),
]
