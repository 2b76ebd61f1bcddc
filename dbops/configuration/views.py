"""Configuration pages of a target: propose a set (with every verdict), history and
diff, the postgresql.conf export and the PGTune-style suggestion. Access is the target
pages' rule (dbops.access): 403 for roles without database operations, 404 for a
target the user may not see."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from dbops import access, selectors
from dbops.configuration import forms as config_forms
from dbops.configuration import pgtune, services
from dbops.configuration import selectors as config_selectors
from dbops.configuration.facts import target_facts
from dbops.configuration.models import ConfigurationChangeSet
from dbops.models import DatabaseTarget
from portal.audit import audit_record
from portal.errors import PortalError


def _target_for(request: HttpRequest, pk: int) -> DatabaseTarget:
    if not access.is_database_operator(request.user):
        raise PermissionDenied("Your roles do not allow database operations.")
    target = selectors.target_for_user(user=request.user, pk=pk)
    if target is None:
        raise Http404("No such database target.")
    return target


def _propose_page(request, target, *, rows, validation=None, error="", status=200, source=""):
    shown = list(rows) + [("", "")] * max(config_forms.EMPTY_ROWS - len(rows), 0)
    if all(name.strip() or value.strip() for name, value in shown):
        shown.append(("", ""))  # always room for one more parameter
    entries = {e.parameter: e for e in validation.entries} if validation else {}
    return render(
        request,
        "dbops/configuration_propose.html",
        {
            "target": target,
            "rows": [(n, v, entries.get(n.strip().lower())) for n, v in shown],
            "validation": validation,
            "error": error,
            "source": source or ConfigurationChangeSet.Source.MANUAL,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def configuration_propose(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target_for(request, pk)
    if request.method == "GET":
        return _propose_page(request, target, rows=[])
    try:
        rows = config_forms.rows_from(request.POST)
    except forms.ValidationError as exc:
        return _propose_page(request, target, rows=[], error=" ".join(exc.messages), status=400)
    source = config_forms.source_from(request.POST)
    action = request.POST.get("action", "check")
    if action == "more":
        filled = [r for r in rows if r[0].strip() or r[1].strip()]
        extra = [("", "")] * config_forms.EMPTY_ROWS
        return _propose_page(request, target, rows=filled + extra, source=source)
    try:
        if action == "propose":
            change = services.configuration_set_propose(
                target=target, entries=rows, by=request.user, source=source
            )
        else:
            validation = services.configuration_set_check(
                target=target, entries=rows, by=request.user
            )
            return _propose_page(request, target, rows=rows, validation=validation, source=source)
    except services.Refused as exc:
        return _propose_page(
            request,
            target,
            rows=rows,
            validation=exc.validation,
            error=exc.message,
            status=400,
            source=source,
        )
    except PortalError as exc:
        return _propose_page(
            request, target, rows=rows, error=exc.message, status=exc.status, source=source
        )
    messages.success(
        request, f"{change.public_id} drafted: review the plan and schedule, then submit it."
    )
    return redirect("changes:edit", pk=change.pk)


@login_required
@require_GET
def configuration_history(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target_for(request, pk)
    before = request.GET.get("before")
    if before is not None and not before.isdigit():
        return render(
            request,
            "dbops/refused.html",
            {"error": "“before” must be a set number.", "target": target},
            status=400,
        )
    sets, next_before = config_selectors.history(target, before=int(before) if before else None)
    return render(
        request,
        "dbops/configuration_history.html",
        {"target": target, "sets": sets, "next_before": next_before},
    )


@login_required
@require_GET
def configuration_set(request: HttpRequest, pk: int) -> HttpResponse:
    change_set = config_selectors.change_set_detail(pk)
    if change_set is None:
        raise Http404("No such configuration change set.")
    _target_for(request, change_set.target_id)
    return render(
        request,
        "dbops/configuration_set.html",
        {"target": change_set.target, "s": change_set},
    )


@login_required
@require_GET
def configuration_export(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target_for(request, pk)
    lines, error = config_selectors.conf_snippet(target)
    if lines is None:
        return render(request, "dbops/refused.html", {"error": error, "target": target}, status=400)
    with transaction.atomic():
        audit_record(
            action="dbops.configuration.exported",
            user=request.user,
            obj=target,
            details={"format": "postgresql.conf"},
        )
    response = StreamingHttpResponse(lines, content_type="text/plain; charset=utf-8")
    name = slugify(target.name) or f"target-{target.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}-nondefault.conf"'
    return response


@login_required
@require_GET
def configuration_suggest(request: HttpRequest, pk: int) -> HttpResponse:
    target = _target_for(request, pk)
    facts = target_facts(target)
    initial = {
        "ram": f"{facts.ram_bytes // 1024**2}MB" if facts.ram_bytes else "",
        "cpus": facts.cpus,
        "storage": target.storage_type or "ssd",
        "workload": "web",
    }
    form = config_forms.SuggestForm(request.GET if "ram" in request.GET else None, initial=initial)
    context = {"target": target, "form": form, "facts": facts}
    if not form.is_bound:
        return render(request, "dbops/configuration_suggest.html", context)
    if not form.is_valid():
        return render(request, "dbops/configuration_suggest.html", context, status=400)
    c = form.cleaned_data
    suggestions = pgtune.suggest(
        ram_bytes=c["ram"],
        cpus=c.get("cpus"),
        storage=c["storage"],
        workload=c["workload"],
        connections=c.get("connections"),
    )
    rows = [(s.parameter, s.value) for s in suggestions]
    try:
        validation = services.configuration_set_check(target=target, entries=rows, by=request.user)
    except PortalError as exc:
        context["error"] = exc.message
        return render(request, "dbops/configuration_suggest.html", context, status=exc.status)
    by_name = {e.parameter: e for e in validation.entries}
    context.update(
        validation=validation,
        suggestions=[(s, by_name.get(s.parameter)) for s in suggestions],
        rows=rows,
    )
    return render(request, "dbops/configuration_suggest.html", context)
