"""Reports: the audit trail (filters, keyset pages, chain verification), the public key."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from changes.forms import ChangeFilterForm
from compliance import access, selectors, services, signing
from compliance.forms import AuditFilterForm
from compliance.models import ChainVerification
from portal.audit import chain_head


def _auditor(request: HttpRequest) -> None:
    if not access.is_auditor(request.user):
        raise PermissionDenied("Your roles do not allow the audit trail.")


@login_required
@require_GET
def reports_view(request: HttpRequest) -> HttpResponse:
    _auditor(request)
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    page = selectors.audit_page(
        filters, before=request.GET.get("before"), after=request.GET.get("after")
    )
    query = request.GET.copy()
    for key in ("before", "after"):
        query.pop(key, None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "export_query": query.urlencode(),
    }
    if request.htmx and request.htmx.target == "audit-rows":
        return render(request, "compliance/_audit_rows.html", context, status=_status(form))
    sequence, head = chain_head()
    context.update(
        {
            "chain_sequence": sequence,
            "chain_head": head,
            "verification": selectors.latest_chain_verification(),
            "key_id": signing.key_id(),
            "public_key_pem": signing.public_key_pem(),
            "register_form": ChangeFilterForm(user=request.user),
            "jobs": selectors.my_export_jobs(request.user),
        }
    )
    return render(request, "compliance/reports.html", context, status=_status(form))


def _status(form) -> int:
    return 400 if form.is_bound and not form.is_valid() else 200


@login_required
@require_POST
def verify_chain_start(request: HttpRequest) -> HttpResponse:
    _auditor(request)
    verification = services.chain_verification_create(by=request.user)
    if request.htmx:
        return render(request, "compliance/_verification.html", {"verification": verification})
    return redirect("compliance:reports")


@login_required
@require_GET
@never_cache
def verification_status(request: HttpRequest, pk: int) -> HttpResponse:
    _auditor(request)
    verification = get_object_or_404(ChainVerification, pk=pk)
    return render(request, "compliance/_verification.html", {"verification": verification})


@require_GET
def signing_key(request: HttpRequest) -> HttpResponse:
    """The public half of the evidence-signing key: public, so auditors can fetch it."""
    response = HttpResponse(signing.public_key_pem(), content_type="application/x-pem-file")
    response["Content-Disposition"] = 'attachment; filename="signing-key.pem"'
    return response
