from django.urls import path

from compliance.views import evidence, exports, kpis, mfa, reports

app_name = "compliance"

urlpatterns = [
    path("reports/", reports.reports_view, name="reports"),
    path("reports/verify-chain/", reports.verify_chain_start, name="verify_chain"),
    path("reports/verify-chain/<int:pk>/", reports.verification_status, name="verification"),
    path("reports/signing-key.pem", reports.signing_key, name="signing_key"),
    path(
        "reports/changes.csv",
        exports.export_download,
        {"identifier": "changes", "fmt": "csv"},
        name="changes_csv",
    ),
    path(
        "reports/changes.xlsx",
        exports.export_download,
        {"identifier": "changes", "fmt": "xlsx"},
        name="changes_xlsx",
    ),
    path(
        "reports/audit.csv",
        exports.export_download,
        {"identifier": "audit", "fmt": "csv"},
        name="audit_csv",
    ),
    path(
        "reports/audit.xlsx",
        exports.export_download,
        {"identifier": "audit", "fmt": "xlsx"},
        name="audit_xlsx",
    ),
    path("reports/exports/", exports.export_job_create, name="export_jobs"),
    path("reports/exports/<int:pk>/", exports.export_job_detail, name="export_job"),
    path(
        "reports/exports/<int:pk>/download/",
        exports.export_job_download,
        name="export_job_download",
    ),
    path("reports/kpis/", kpis.kpi_page, name="kpis"),
    path("reports/kpis/<slug:key>.csv", kpis.kpi_csv, name="kpi_csv"),
    # Under the change's own path, served here: the pack gathers every layer's records.
    path("changes/<int:pk>/evidence.zip", evidence.evidence_pack, name="evidence"),
    path("mfa/", mfa.mfa_status, name="mfa"),
    path("mfa/enrol/", mfa.mfa_enrol, name="mfa_enrol"),
    path("mfa/verify/", mfa.mfa_verify, name="mfa_verify"),
    path("mfa/recovery-codes/", mfa.mfa_recovery_codes, name="mfa_recovery_codes"),
]
