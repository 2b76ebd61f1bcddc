from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from changes import access as change_access
from changes.errors import ChangeError
from changes.models import ChangeRequest, State
from maintenance import reports, scheduling, selectors, services
from maintenance.forms import EvidenceForm, NotesForm, ProcedureKindForm, ReviewForm, ScheduleForm
from maintenance.models import ChangeProcedure, MaintenanceWindow, ProcedureRun, StepRun
from maintenance.procedures import UnknownProcedure, registry


def _get_window_for_user(request: HttpRequest, pk: int) -> MaintenanceWindow:
    if not selectors.can_see_windows(request.user):
        raise PermissionDenied("Your roles do not include maintenance windows.")
    try:
        return selectors.window_detail(pk)
    except MaintenanceWindow.DoesNotExist:
        raise Http404("No such window.") from None


def _get_change_for_user(request: HttpRequest, pk: int) -> ChangeRequest:
    if not change_access.changes_visible_to(request.user).filter(pk=pk).exists():
        raise Http404("No such change.")
    return ChangeRequest.objects.select_related("requester").get(pk=pk)


def _require_operator(request: HttpRequest) -> None:
    if not selectors.is_operator(request.user):
        raise PermissionDenied("Only operators do this.")


def _refused(request: HttpRequest, exc: ChangeError, back: str) -> HttpResponse:
    if request.htmx:
        return render(request, "maintenance/_error.html", {"error": exc.message}, status=exc.status)
    return render(
        request, "changes/refused.html", {"error": exc.message, "back": back}, status=exc.status
    )


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
        "is_operator": selectors.is_operator(request.user),
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
    _require_operator(request)
    try:
        services.window_start(window=window, by=request.user)
    except ChangeError as exc:
        return _refused(request, exc, window.get_absolute_url())
    messages.success(request, "Window started: the scheduled changes run in order.")
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
    return render(
        request, "maintenance/report.html", {**reports.report_context(execution), "for_pdf": False}
    )


@login_required
def window_report_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    window = _get_window_for_user(request, pk)
    execution = selectors.window_execution(window)
    if execution is None or not execution.report:
        raise Http404("The report is not ready yet.")
    return FileResponse(
        execution.report.open("rb"),
        as_attachment=True,
        filename=execution.report.name.rsplit("/", 1)[-1],
        content_type="application/pdf",
    )


@login_required
@require_http_methods(["GET", "POST"])
def change_schedule(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    _require_operator(request)
    if change.state != State.APPROVED:
        messages.error(
            request,
            f"{change.public_id} is {change.get_state_display()}; only "
            "approved changes can be scheduled.",
        )
        return redirect(change.get_absolute_url())
    windows = scheduling.upcoming_windows(change)
    suggested = scheduling.next_valid_window(change)
    form = ScheduleForm(request.POST or None, windows=windows, suggested=suggested)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            window = MaintenanceWindow.objects.filter(pk=form.cleaned_data["window"]).first()
            if window is None:
                form.add_error("window", "That window no longer exists.")
            else:
                try:
                    slot = services.change_schedule(change=change, window=window, by=request.user)
                except ChangeError as exc:
                    form.add_error(None, exc.message)
                    status = exc.status
                else:
                    messages.success(
                        request,
                        f"{change.public_id} scheduled at {slot.planned_start:%Y-%m-%d %H:%M} UTC.",
                    )
                    return redirect(change.get_absolute_url())
        else:
            status = 400
    return render(
        request,
        "maintenance/schedule.html",
        {"change": change, "form": form, "suggested": suggested, "windows": windows},
        status=status,
    )


@login_required
@require_POST
def change_unschedule(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    _require_operator(request)
    try:
        services.change_unschedule(
            change=change, by=request.user, reason=request.POST.get("reason", "")[:2000]
        )
    except ChangeError as exc:
        return _refused(request, exc, change.get_absolute_url())
    messages.success(request, f"{change.public_id} unscheduled.")
    return redirect(change.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def procedure_add(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    if change.requester_id != request.user.pk and not selectors.is_operator(request.user):
        raise PermissionDenied("Only the requester or an operator changes the procedures.")
    kind_form = ProcedureKindForm(request.GET or request.POST or None)
    kind = request.POST.get("kind") or request.GET.get("kind") or ""
    try:
        procedure = registry.get(kind) if kind else None
    except UnknownProcedure:
        procedure = None
        kind_form.add_error("kind", "Choose a procedure from the list.")
    params_form = procedure.form_class(request.POST or None) if procedure else None
    status = 200
    if request.method == "POST" and procedure is not None:
        raw = {k: v for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "kind")}
        try:
            services.change_procedure_add(change=change, by=request.user, kind=kind, params=raw)
        except ChangeError as exc:
            if params_form is not None:
                params_form.is_valid()
            status = exc.status
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
        raise Http404("No such procedure.")
    try:
        services.change_procedure_remove(item=item, by=request.user)
    except ChangeError as exc:
        return _refused(request, exc, item.change.get_absolute_url())
    messages.success(request, "Procedure removed.")
    return redirect(item.change.get_absolute_url())


@login_required
@require_POST
def change_implemented(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    _require_operator(request)
    try:
        services.change_mark_implemented(
            change=change, by=request.user, notes=request.POST.get("notes", "")
        )
    except ChangeError as exc:
        return _refused(request, exc, change.get_absolute_url())
    return redirect(change.get_absolute_url())


@login_required
@require_POST
def change_verify(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    _require_operator(request)
    form = NotesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Describe what you checked.")
        return redirect(change.get_absolute_url())
    try:
        services.change_verify(
            change=change,
            by=request.user,
            passed=request.POST.get("passed") == "1",
            notes=form.cleaned_data["notes"],
        )
    except ChangeError as exc:
        return _refused(request, exc, change.get_absolute_url())
    return redirect(change.get_absolute_url())


@login_required
@require_POST
def step_complete(request: HttpRequest, pk: int) -> HttpResponse:
    step = StepRun.objects.select_related("run__change").filter(pk=pk).first()
    if step is None or not change_access.can_view_change(request.user, step.run.change):
        raise Http404("No such step.")
    _require_operator(request)
    form = EvidenceForm(request.POST)
    back = step.run.change.get_absolute_url()
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
    except ChangeError as exc:
        return _refused(request, exc, back)
    messages.success(request, f"Step {step.name!r} recorded.")
    return redirect(back)


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        run = selectors.run_detail(pk)
    except ProcedureRun.DoesNotExist:
        raise Http404("No such run.") from None
    if not change_access.can_view_change(request.user, run.change):
        raise Http404("No such run.")
    template = "maintenance/_run.html" if request.htmx else "maintenance/run.html"
    return render(
        request, template, {"run": run, "is_operator": selectors.is_operator(request.user)}
    )


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


def _operator_run_action(request: HttpRequest, pk: int, action, *, done: str) -> HttpResponse:
    """An operator's decision on an interrupted run: 404 if its change is hidden."""
    run = ProcedureRun.objects.select_related("change").filter(pk=pk).first()
    if run is None or not change_access.can_view_change(request.user, run.change):
        raise Http404("No such run.")
    _require_operator(request)
    try:
        action(run)
    except ChangeError as exc:
        return _refused(request, exc, run.change.get_absolute_url())
    messages.success(request, done)
    return redirect(run.change.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def change_review(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    if change.requester_id != request.user.pk and not selectors.is_operator(request.user):
        raise PermissionDenied("The requester or an operator writes the review.")
    form = ReviewForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.review_submit(change=change, by=request.user, **form.cleaned_data)
            except ChangeError as exc:
                form.add_error(None, exc.message)
                status = exc.status
            else:
                messages.success(request, "Post-implementation review recorded.")
                return redirect(change.get_absolute_url())
        else:
            status = 400
    return render(
        request, "maintenance/review.html", {"change": change, "form": form}, status=status
    )


@login_required
@require_POST
def change_close(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    try:
        services.change_close(change=change, by=request.user)
    except ChangeError as exc:
        return _refused(request, exc, change.get_absolute_url())
    messages.success(request, f"{change.public_id} closed.")
    return redirect(change.get_absolute_url())
