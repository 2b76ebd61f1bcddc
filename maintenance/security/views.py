"""Patch compliance, advisories and the component inventory. Views check who may see
(404 for a component of a tenant the user may not see) and who may act (403, audited),
then call one service or selector."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from maintenance.security import advisories as advisory_services
from maintenance.security import exports, selectors
from maintenance.security.forms import AdvisoryUploadForm, ComplianceFilterForm
from maintenance.security.inventory import inventory_refresh
from maintenance.security.models import Advisory, ComponentExecutor, Exposure
from maintenance.security.services import security_update_propose
from portal.audit import audit_record
from portal.errors import NotAllowed, PortalError
from portal.http import Link, refused


def _refuse(request: HttpRequest, action: str, reason: str, obj=None) -> None:
    """403 with the reason; the refusal path audits it (portal.http)."""
    raise NotAllowed(
        reason,
        user=request.user,
        action=action,
        obj=obj,
        details={"path": request.path[:200]},
    )


def _refused_page(request: HttpRequest, exc: PortalError, back: str) -> HttpResponse:
    return refused(request, exc, back=Link(url=back, label="Back"))


def _require_view(request: HttpRequest) -> None:
    if not selectors.may_view(request.user):
        _refuse(
            request,
            "security.page_refused",
            "Patch compliance is for Security, Compliance and Operations.",
        )


def _executor_for_user(request: HttpRequest, pk: int) -> ComponentExecutor:
    _require_view(request)
    row = (
        selectors.visible_executors(request.user).select_related("component").filter(pk=pk).first()
    )
    if row is None:
        raise Http404("No such component.")
    return row


def _filters(request: HttpRequest) -> tuple[ComplianceFilterForm, selectors.Filters | None]:
    components = [
        e.component
        for e in selectors.visible_executors(request.user)
        .select_related("component")
        .order_by("component__name")[:500]
    ]
    form = ComplianceFilterForm(request.GET or None, components=components)
    if not request.GET:
        return form, selectors.Filters()
    return form, form.filters() if form.is_valid() else None


@login_required
def compliance(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    form, filters = _filters(request)
    context = {
        "form": form,
        "may_propose": selectors.may_propose(request.user),
        "may_manage": selectors.may_manage(request.user),
        "now": timezone.now(),
    }
    if filters is None:
        return render(request, "maintenance/security/compliance.html", context, status=400)
    page = selectors.compliance_page(request.user, filters, after=request.GET.get("after", ""))
    query = filters.as_query()
    context.update(
        {
            "page": page,
            "rows": [(row, selectors.days_exposed(row, context["now"])) for row in page.rows],
            "summary": selectors.severity_summary(request.user, filters),
            "query": query,
            "first_page": "after" in request.GET,
        }
    )
    return render(request, "maintenance/security/compliance.html", context)


@login_required
def compliance_csv(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    form, filters = _filters(request)
    if filters is None:
        return HttpResponse(
            "Bad filter: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    with transaction.atomic():
        audit_record(
            action="security.compliance_exported",
            user=request.user,
            object_type="maintenance.security",
            details={"filters": filters.as_query()},
        )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        exports.compliance_rows(request.user, filters), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="patch-compliance-{stamp}.csv"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def advisories(request: HttpRequest) -> HttpResponse:
    _require_view(request)
    form = AdvisoryUploadForm()
    status = 200
    if request.method == "POST":
        if not selectors.may_manage(request.user):
            _refuse(
                request,
                "security.import_refused",
                "Only Security and Operations import advisories.",
            )
        form = AdvisoryUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                summary = advisory_services.advisories_import(
                    data=upload.read(), name=upload.name, by=request.user
                )
            except PortalError as exc:
                form.add_error("file", exc.message)
                status = exc.status
            else:
                messages.success(request, summary.message)
                return redirect("maintenance:security:advisories")
        else:
            status = 400
    page = Paginator(selectors.advisories(), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "maintenance/security/advisories.html",
        {"form": form, "page": page, "may_manage": selectors.may_manage(request.user)},
        status=status,
    )


@login_required
def advisory_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require_view(request)
    advisory = Advisory.objects.filter(pk=pk).prefetch_related("packages").first()
    if advisory is None:
        raise Http404("No such advisory.")
    return render(
        request,
        "maintenance/security/advisory.html",
        {
            "advisory": advisory,
            "exposures": selectors.advisory_exposures(request.user, advisory),
        },
    )


@login_required
def component_detail(request: HttpRequest, pk: int) -> HttpResponse:
    row = _executor_for_user(request, pk)
    return render(
        request,
        "maintenance/security/component.html",
        {**selectors.component_detail(row), "may_manage": selectors.may_manage(request.user)},
    )


@login_required
@require_POST
def component_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    row = _executor_for_user(request, pk)
    if not selectors.may_manage(request.user):
        _refuse(
            request,
            "security.refresh_refused",
            "Only Security and Operations refresh the inventory.",
            row.component,
        )
    try:
        inventory_refresh(executor=row, by=request.user)
    except PortalError as exc:
        return _refused_page(request, exc, row.get_absolute_url())
    messages.success(request, f"Installed versions of {row.component} refreshed.")
    return redirect(row.get_absolute_url())


@login_required
@require_POST
def propose(request: HttpRequest, pk: int) -> HttpResponse:
    _require_view(request)
    exposure = (
        Exposure.objects.filter(pk=pk, executor__in=selectors.visible_executors(request.user))
        .select_related("executor__component", "advisory")
        .first()
    )
    if exposure is None:
        raise Http404("No such exposure.")
    if not selectors.may_propose(request.user):
        _refuse(
            request,
            "security.propose_refused",
            "Only Security and Operations propose security updates.",
            exposure.executor.component,
        )
    try:
        change = security_update_propose(exposure=exposure, by=request.user)
    except PortalError as exc:
        return _refused_page(request, exc, reverse("maintenance:security:compliance"))
    messages.success(
        request,
        f"{change.public_id} drafted with its Security update procedure; review and submit it.",
    )
    return redirect(change.get_absolute_url())
