from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from changes.access import can_view_change
from dbops import access, selectors, services
from dbops.advisor.explain import ExplainRefused, statement_explain
from dbops.advisor.forms import ExplainForm
from dbops.forms import DatabaseTargetForm, ProposeForm, ThresholdForm
from dbops.models import DatabaseTarget, IndexSuggestion
from portal.errors import Hidden, Invalid, PortalError
from portal.http import Link, back_to, refused


def _get_target_for_user(request: HttpRequest, pk: int) -> DatabaseTarget:
    """403 for roles without database operations; 404 when the target does not exist
    or the user may not see it."""
    if not access.is_database_operator(request.user):
        raise PermissionDenied("Your roles do not allow database operations.")
    target = selectors.target_for_user(user=request.user, pk=pk)
    if target is None:
        raise Hidden(
            "No such database target.",
            user=request.user,
            action="dbops.target.hidden",
            object_type="dbops.databasetarget",
            object_id=pk,
        )
    return target


def _refused(request: HttpRequest, exc: PortalError, target=None) -> HttpResponse:
    links = []
    if target is not None:
        links = [
            back_to(target, target.name),
            Link(url=reverse("dbops:queries", args=[target.pk]), label="Query performance"),
        ]
    return refused(request, exc, back=links)


@login_required
@require_GET
def target_list(request: HttpRequest) -> HttpResponse:
    if not access.is_database_operator(request.user):
        raise PermissionDenied("Your roles do not allow database operations.")
    return render(
        request,
        "dbops/targets.html",
        {
            "targets": selectors.target_list(user=request.user),
            "can_manage": access.can_manage_targets(request.user),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def target_create(request: HttpRequest) -> HttpResponse:
    if not access.can_manage_targets(request.user):
        raise PermissionDenied("Only portal administrators may register database targets.")
    form = DatabaseTargetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            target = services.database_target_create(
                by=request.user,
                data=form.service_data(),
                password=form.cleaned_data["password"],
                tenants=form.cleaned_data["tenants"],
                component=form.cleaned_data.get("component"),
            )
        except PortalError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Database target “{target.name}” registered.")
            return redirect(target.get_absolute_url())
    status = 400 if request.method == "POST" else 200
    return render(request, "dbops/target_form.html", {"form": form, "target": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def target_edit(request: HttpRequest, pk: int) -> HttpResponse:
    if not access.can_manage_targets(request.user):
        raise PermissionDenied("Only portal administrators may change database targets.")
    target = _get_target_for_user(request, pk)
    form = DatabaseTargetForm(request.POST or None, instance=target)
    if request.method == "POST" and form.is_valid():
        try:
            target = services.database_target_update(
                target=target,
                by=request.user,
                data=form.service_data(),
                password=form.cleaned_data["password"] or None,
                clear_password=form.cleaned_data.get("clear_password", False),
                tenants=form.cleaned_data["tenants"],
            )
        except PortalError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Database target “{target.name}” saved.")
            return redirect(target.get_absolute_url())
    status = 400 if request.method == "POST" else 200
    return render(
        request, "dbops/target_form.html", {"form": form, "target": target}, status=status
    )


@login_required
@require_GET
def target_detail(request: HttpRequest, pk: int) -> HttpResponse:
    target = _get_target_for_user(request, pk)
    return render(
        request,
        "dbops/target.html",
        {
            "target": target,
            "health": selectors.target_health(target=target),
            "can_manage": access.can_manage_targets(request.user),
        },
    )


@login_required
@require_POST
def target_check(request: HttpRequest, pk: int) -> HttpResponse:
    target = _get_target_for_user(request, pk)
    try:
        report = services.database_target_check(target=target, by=request.user)
    except PortalError as exc:
        return _refused(request, exc, target)
    target.refresh_from_db(fields=["last_check", "last_checked_at"])
    if request.htmx:
        return render(request, "dbops/_check.html", {"target": target})
    if report["ok"]:
        messages.success(request, f"Connected to “{target.name}”.")
    else:
        messages.error(request, report["error"])
    return redirect(target.get_absolute_url())


@login_required
@require_GET
def target_queries(request: HttpRequest, pk: int) -> HttpResponse:
    target = _get_target_for_user(request, pk)
    form = ThresholdForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "dbops/queries.html", {"target": target, "form": form}, status=400)
    remote, trend = selectors.target_queries(target=target, threshold_ms=form.threshold_ms())
    return render(
        request,
        "dbops/queries.html",
        {"target": target, "form": form, "remote": remote, "trend": trend},
    )


@login_required
@require_http_methods(["GET", "POST"])
def target_explain(request: HttpRequest, pk: int) -> HttpResponse:
    """A statement's plan (EXPLAIN), or on demand EXPLAIN ANALYZE of a SELECT."""
    target = _get_target_for_user(request, pk)
    initial_queryid = request.GET.get("queryid") if request.method == "GET" else None
    data = request.POST if request.method == "POST" else None
    if initial_queryid:
        if not initial_queryid.lstrip("-").isdigit() or abs(int(initial_queryid)) >= 2**63:
            return _refused(
                request, Invalid("A statement is named by its numeric queryid."), target
            )
        remote = selectors.statement_text(target=target, queryid=int(initial_queryid))
        if remote.error:
            return _refused(request, Invalid(remote.error), target)
        if remote.data is None:
            raise Http404("That statement is not in pg_stat_statements.")
        data = {"statement": remote.data, "queryid": initial_queryid}
    form = ExplainForm(data)
    context = {"target": target, "form": form, "result": None, "error": ""}
    status = 200
    if form.is_bound and form.is_valid():
        try:
            context["result"] = statement_explain(
                target=target,
                by=request.user,
                query=form.cleaned_data["statement"],
                analyze=form.cleaned_data["analyze"],
                queryid=form.cleaned_data.get("queryid"),
            )
        except ExplainRefused as exc:
            context["error"], status = exc.message, 400
    elif form.is_bound:
        status = 400
    return render(request, "dbops/explain.html", context, status=status)


@login_required
@require_POST
def index_propose(request: HttpRequest, pk: int) -> HttpResponse:
    target = _get_target_for_user(request, pk)
    form = ProposeForm(request.POST)
    if not form.is_valid():
        return _refused(
            request, Invalid("The proposal did not name a statement and an index."), target
        )
    remote = selectors.suggestion_find(
        target=target,
        queryid=form.cleaned_data["queryid"],
        schema=form.cleaned_data["schema"],
        table=form.cleaned_data["table"],
        columns=form.cleaned_data["column"],
    )
    if remote.error:
        return _refused(request, Invalid(remote.error), target)
    if remote.data is None:
        messages.error(
            request,
            "That suggestion no longer holds (the statement left pg_stat_statements or an "
            "index now covers it); here is the current analysis.",
        )
        return redirect("dbops:queries", pk=target.pk)
    try:
        change = services.index_suggestion_propose(
            target=target, suggestion=remote.data, by=request.user
        )
    except PortalError as exc:
        return _refused(request, exc, target)
    messages.success(
        request,
        f"{change.public_id} drafted: review the plan and schedule, then submit it.",
    )
    return redirect("changes:edit", pk=change.pk)


@login_required
@require_POST
def index_verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Measure a built index's effect again: the statement's mean time before and after."""
    suggestion = IndexSuggestion.objects.select_related("change", "target").filter(pk=pk).first()
    if suggestion is None or not can_view_change(request.user, suggestion.change):
        raise Hidden(
            "No such index suggestion.",
            user=request.user,
            action="dbops.index.hidden",
            object_type="dbops.indexsuggestion",
            object_id=pk,
        )
    if not access.is_database_operator(request.user):
        raise PermissionDenied("Your roles do not allow database operations.")
    try:
        services.index_suggestion_verify(suggestion=suggestion, by=request.user)
    except PortalError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Mean time measured again.")
    return redirect(suggestion.change.get_absolute_url())
