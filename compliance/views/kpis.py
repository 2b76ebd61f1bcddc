"""KPIs per month, each as an SVG chart with its table and a CSV of the same rows."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from compliance import access, charts
from compliance.exporters.base import form_errors, write_csv
from compliance.forms import KpiRangeForm
from compliance.kpis import KPI_KEYS, kpis
from portal.errors import Invalid
from portal.http import Link, refused


def _range(request: HttpRequest) -> KpiRangeForm:
    if not access.sees_kpis(request.user):
        raise PermissionDenied("Your roles do not allow the KPIs.")
    return KpiRangeForm(request.GET or None)


@login_required
@require_GET
def kpi_page(request: HttpRequest) -> HttpResponse:
    form = _range(request)
    if form.is_bound and not form.is_valid():
        return refused(
            request,
            Invalid(f"These months were not understood: {form_errors(form)}"),
            back=Link("/reports/kpis/", "Back to the KPIs"),
        )
    data = form.cleaned_data if form.is_bound else {}
    months, items = kpis(request.user, start=data.get("start"), end=data.get("end"))
    return render(
        request,
        "compliance/kpis.html",
        {
            "form": form,
            "months": months,
            "kpis": [(kpi, charts.bar_chart(kpi)) for kpi in items],
            "query": request.GET.urlencode(),
        },
    )


@login_required
@require_GET
def kpi_csv(request: HttpRequest, key: str) -> HttpResponse:
    form = _range(request)
    if key not in KPI_KEYS:
        raise Http404("No such KPI.")
    if form.is_bound and not form.is_valid():
        return refused(request, Invalid(f"These months were not understood: {form_errors(form)}"))
    data = form.cleaned_data if form.is_bound else {}
    _months, items = kpis(request.user, start=data.get("start"), end=data.get("end"))
    kpi = next(k for k in items if k.key == key)
    response = HttpResponse(
        write_csv(kpi.headers, kpi.rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="kpi-{key}.csv"'
    return response
