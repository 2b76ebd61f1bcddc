from django.urls import path, re_path

from api.views import changes, common, docs, exports, gate, maintenance, templates, tokens

app_name = "api"

urlpatterns = [
    path("schema/", docs.SchemaView.as_view(), name="schema"),
    path("docs/", docs.SwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", docs.RedocView.as_view(url_name="api:schema"), name="redoc"),
    path("changes/", changes.ChangeListView.as_view(), name="changes"),
    path("changes/<int:pk>/", changes.ChangeDetailView.as_view(), name="change"),
    path("changes/<int:pk>/submit/", changes.ChangeSubmitView.as_view(), name="change_submit"),
    path("changes/<int:pk>/cancel/", changes.ChangeCancelView.as_view(), name="change_cancel"),
    path("approvals/", changes.PendingApprovalsView.as_view(), name="approvals"),
    path("approvals/<int:pk>/", changes.ApprovalDetailView.as_view(), name="approval"),
    path(
        "approvals/<int:pk>/decide/", changes.ApprovalDecideView.as_view(), name="approval_decide"
    ),
    path("windows/", maintenance.WindowListView.as_view(), name="windows"),
    path("windows/<int:pk>/", maintenance.WindowDetailView.as_view(), name="window"),
    path("runs/<int:pk>/", maintenance.RunDetailView.as_view(), name="run"),
    path("calendar/", maintenance.CalendarView.as_view(), name="calendar"),
    path("templates/", templates.TemplateListView.as_view(), name="templates"),
    path("templates/<int:pk>/file/", templates.TemplateFileView.as_view(), name="template_file"),
    path("exports/", exports.ExportListView.as_view(), name="exports"),
    path("exports/<int:pk>/", exports.ExportDetailView.as_view(), name="export"),
    path(
        "exports/<int:pk>/download/", exports.ExportDownloadView.as_view(), name="export_download"
    ),
    path("gate/", gate.GateView.as_view(), name="gate"),
    # Pages: the tokens section of Preferences posts here.
    path("tokens/new/", tokens.token_create, name="token_create"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token_revoke"),
    # Last: any other path ending in a slash (without one, APPEND_SLASH redirects first).
    re_path(r"^.*/$", common.UnknownView.as_view(), name="unknown"),
]
