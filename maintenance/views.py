from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from changes import access as change_access
from changes.models import ChangeRequest
from maintenance import access, reports, scheduling, selectors, services
from maintenance.forms import EvidenceForm, ProcedureKindForm, ScheduleForm, StakeholdersForm
from maintenance.models import ChangeProcedure, MaintenanceWindow, ProcedureRun, StepRun
from maintenance.procedures import UnknownProcedure, registry
from maintenance.templatetags.maintenance_runs import run_context
from portal.errors import Hidden, Invalid, PortalError
from portal.http import back_to, refused


def _hidden(request: HttpRequest, what: str, object_type: str, pk: int) -> Hidden:
    return Hidden(
        f"No such {what}.",
        user=request.user,
        action=f"{object_type.split('.')[-1]}.hidden",
        object_type=object_type,
        object_id=pk,
    )


def _get_window_for_user(request: HttpRequest, pk: int) -> MaintenanceWindow:
    if not access.can_see_windows(request.user):
        raise PermissionDenied("Your roles do not include maintenance windows.")
    try:
        return selectors.window_detail(pk)
    except MaintenanceWindow.DoesNotExist:
        raise Http404("No such window.") from None


def _get_change_for_user(request: HttpRequest, pk: int) -> ChangeRequest:
    if not change_access.changes_visible_to(request.user).filter(pk=pk).exists():
        raise _hidden(request, "change", "changes.changerequest", pk)
    return (
        ChangeRequest.objects.select_related("requester").prefetch_related("approvals").get(pk=pk)
    )


def _get_run_for_user(request: HttpRequest, pk: int) -> ProcedureRun:
    run = ProcedureRun.objects.select_related("change").filter(pk=pk).first()
    if run is None or not change_access.can_view_change(request.user, run.change):
        raise _hidden(request, "run", "maintenance.procedurerun", pk)
    return run


def _window_context(request: HttpRequest, window: MaintenanceWindow) -> dict:
    execution = selectors.window_execution(window)
    runs = selectors.execution_runs(execution)
    visible = set(
        change_access.changes_visible_to(request.user)
        .filter(slot__window=window)
        .values_list("pk", flat=True)
    )
    slots = [
        (slot, runs.get(slot.change_id, []), slot.change_id in visible)
        for slot in selectors.window_slots(window)
    ]
    return {
        "window": window,
        "execution": execution,
        "slots": slots,
        "approvals": selectors.window_approvals(window),
        "actions": access.window_actions(request.user, window),
        "stakeholders_form": StakeholdersForm(
            initial={
                "usernames": "\n".join(u.get_username() for u in window.stakeholder_users.all()),
                "roles": window.stakeholder_roles,
                "emails": "\n".join(window.stakeholder_emails or []),
                "timezone": window.timezone,
            }
        ),
        "open_now": window.is_open(),
        "live": execution is not None and execution.status == "IN_PROGRESS",
    }


@login_required
def window_detail(request: HttpRequest, pk: int) -> HttpResponse:
    window = _get_window_for_user(request, pk)
    context = _window_context(request, window)
    if request.htmx and request.GET.get("part") == "progress":
        return render(request, "maintenance/_window_progress.html", context)
    return render(request, "maintenance/window.html", context)


@login_required
@require_POST
def window_start(request: HttpRequest, pk: int) -> HttpResponse:
    window = _get_window_for_user(request, pk)
    try:
        services.window_start(window=window, by=request.user)
    except PortalError as exc:
        return refused(request, exc, back=back_to(window))
    messages.success(request, "Window started: the scheduled changes run in order.")
    return redirect(window.get_absolute_url())


@login_required
@require_POST
def window_stakeholders(request: HttpRequest, pk: int) -> HttpResponse:
    window = _get_window_for_user(request, pk)
    form = StakeholdersForm(request.POST)
    try:
        if not form.is_valid():
            raise Invalid.from_form(form)
        services.window_stakeholders_set(
            window=window,
            by=request.user,
            usernames=form.cleaned_data["usernames"],
            roles=form.cleaned_data["roles"],
            emails=form.cleaned_data["emails"],
            timezone_name=form.cleaned_data["timezone"],
        )
    except PortalError as exc:
        return refused(request, exc, back=back_to(window))
    messages.success(request, "The window's stakeholders are saved.")
    return redirect(window.get_absolute_url())


@login_required
@require_POST
def window_subscribe(request: HttpRequest, pk: int) -> HttpResponse:
    window = _get_window_for_user(request, pk)
    services.window_subscribe(
        window=window, by=request.user, subscribe=request.POST.get("subscribe") != "0"
    )
    return redirect(window.get_absolute_url())


@login_required
def window_report(request: HttpRequest, pk: int) -> HttpResponse:
    window = _get_window_for_user(request, pk)
    execution = selectors.window_execution(window)
    if execution is None:
        raise Http404("This window has not run.")
    context = reports.report_context(execution, viewer=request.user)
    return render(request, "maintenance/report.html", {**context, "for_pdf": False})


@login_required
def window_report_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    """The stored report when the viewer may see every change in it; otherwise one made
    now for them, naming only their changes and counting the others."""
    window = _get_window_for_user(request, pk)
    execution = selectors.window_execution(window)
    if execution is None or not execution.report:
        raise Http404("The report is not ready yet.")
    slots = selectors.window_slots(window)
    visible = change_access.changes_visible_to(request.user).filter(
        pk__in=[s.change_id for s in slots]
    )
    if visible.count() == len(slots):
        return FileResponse(
            execution.report.open("rb"),
            as_attachment=True,
            filename=execution.report.name.rsplit("/", 1)[-1],
            content_type="application/pdf",
        )
    filename, pdf, _ = reports.render_pdf(execution, viewer=request.user)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def change_schedule(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    verdict = change_access.change_actions(request.user, change)["schedule"]
    if not verdict:
        if verdict.status == 403:
            raise PermissionDenied(verdict.reason)
        messages.error(request, verdict.reason)
        return redirect(change.get_absolute_url())
    windows = scheduling.upcoming_windows(change)
    suggested = scheduling.next_valid_window(change)
    form = ScheduleForm(
        request.POST if request.method == "POST" else None, windows=windows, suggested=suggested
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            window = MaintenanceWindow.objects.filter(pk=form.cleaned_data["window"]).first()
            if window is None:
                form.add_error("window", "That window no longer exists.")
                status = 400
            else:
                try:
                    services.slot_create(change=change, window=window, by=request.user)
                except PortalError as exc:
                    form.add_error(None, exc.message)
                    status = exc.status
                else:
                    messages.success(
                        request,
                        f"{change.public_id} scheduled in {window.label}.",
                    )
                    return redirect(change.get_absolute_url())
        else:
            status = 400
    return render(
        request,
        "maintenance/schedule.html",
        {"change": change, "form": form, "suggested": suggested, "windows": windows, "slot": None},
        status=status,
    )


@login_required
@require_POST
def change_unschedule(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    try:
        services.slot_remove(
            change=change, by=request.user, reason=request.POST.get("reason", "")[:2000]
        )
    except PortalError as exc:
        return refused(request, exc, back=back_to(change))
    messages.success(request, f"{change.public_id} unscheduled.")
    return redirect(change.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def procedure_add(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    verdict = change_access.change_actions(request.user, change)["edit_procedures"]
    if not verdict and verdict.status == 403:
        raise PermissionDenied(verdict.reason)
    source = request.POST if request.method == "POST" else request.GET
    kind_form = ProcedureKindForm(source or None)
    kind = source.get("kind", "")
    try:
        procedure = registry.get(kind) if kind else None
    except UnknownProcedure:
        procedure = None
        kind_form.add_error("kind", "Choose a procedure from the list.")
    # The parameter form lists only what this user may use (targets they may see); on a
    # GET it is unbound, so choosing a target then reloads it with that target's tables.
    params_form = None
    if procedure is not None:
        bound = request.POST if request.method == "POST" else None
        initial = {"target": request.GET.get("target")} if request.method == "GET" else None
        params_form = procedure.build_form(bound, user=request.user, initial=initial)
    status = 200
    if request.method == "POST" and procedure is not None:
        try:
            # The QueryDict itself: a multi-valued field (tables) keeps every value.
            services.change_procedure_add(
                change=change, by=request.user, kind=kind, params=request.POST
            )
        except PortalError as exc:
            status = exc.status
            if exc.status == 403:
                return refused(request, exc, back=back_to(change))
            params_form.is_valid()
            messages.error(request, exc.message)
        else:
            messages.success(request, f"{procedure.label} added to {change.public_id}.")
            return redirect(change.get_absolute_url())
    return render(
        request,
        "maintenance/procedure_add.html",
        {
            "change": change,
            "kind_form": kind_form,
            "procedure": procedure,
            "params_form": params_form,
            "kind": kind,
        },
        status=status,
    )


@login_required
@require_POST
def procedure_remove(request: HttpRequest, pk: int) -> HttpResponse:
    item = ChangeProcedure.objects.select_related("change").filter(pk=pk).first()
    if item is None or not change_access.can_view_change(request.user, item.change):
        raise _hidden(request, "procedure", "maintenance.changeprocedure", pk)
    try:
        services.change_procedure_remove(item=item, by=request.user)
    except PortalError as exc:
        return refused(request, exc, back=back_to(item.change))
    messages.success(request, "Procedure removed.")
    return redirect(item.change.get_absolute_url())


@login_required
@require_POST
def step_complete(request: HttpRequest, pk: int) -> HttpResponse:
    step = StepRun.objects.select_related("run__change").filter(pk=pk).first()
    if step is None or not change_access.can_view_change(request.user, step.run.change):
        raise _hidden(request, "step", "maintenance.steprun", pk)
    back = step.run.get_absolute_url()
    form = EvidenceForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter an evidence note for this step.")
        return redirect(back)
    try:
        services.step_complete(
            step=step,
            by=request.user,
            evidence=form.cleaned_data["evidence"],
            passed=request.POST.get("passed", "1") == "1",
        )
    except PortalError as exc:
        return refused(request, exc, back=back_to(step.run.change))
    messages.success(request, f"Step {step.name!r} recorded.")
    # Back to the run the operator is working through, not the change page.
    return redirect(back)


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _get_run_for_user(request, pk)
    run = selectors.run_detail(pk)
    if request.htmx:
        return render(request, "maintenance/_run.html", run_context(request, run))
    return render(request, "maintenance/run.html", {"run": run})


def _operator_run_action(request: HttpRequest, pk: int, action, *, done: str) -> HttpResponse:
    """An operator's decision on an interrupted run: 404 if its change is hidden."""
    run = _get_run_for_user(request, pk)
    try:
        action(run)
    except PortalError as exc:
        return refused(request, exc, back=back_to(run.change))
    messages.success(request, done)
    return redirect(run.change.get_absolute_url())


@login_required
@require_POST
def run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    return _operator_run_action(
        request,
        pk,
        lambda run: services.run_retry(run=run, by=request.user),
        done="A new attempt is queued.",
    )


@login_required
@require_POST
def run_abandon(request: HttpRequest, pk: int) -> HttpResponse:
    return _operator_run_action(
        request,
        pk,
        lambda run: services.run_abandon(
            run=run, by=request.user, reason=request.POST.get("reason", "")
        ),
        done="The run is marked failed.",
    )
