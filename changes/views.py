from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from changes import access, selectors, services
from changes.errors import ChangeError, Conflict
from changes.forms import ChangeFilterForm, ChangeRequestForm, DecisionForm, DelegateForm
from changes.models import CANCELLABLE_STATES, Approval, ChangeRequest, State
from portal.roles import APPROVER_ROLES, has_role


def _get_change_for_user(request: HttpRequest, pk: int) -> ChangeRequest:
    """404 when the change does not exist or the user may not see it."""
    if not access.changes_visible_to(request.user).filter(pk=pk).exists():
        raise Http404("No such change.")
    return selectors.change_detail(pk=pk)


def _get_approval_for_user(request: HttpRequest, pk: int) -> Approval:
    """404 if its change is hidden from the user; 403 if seen but not theirs to decide."""
    approval = Approval.objects.select_related("change").filter(pk=pk).first()
    if approval is None or not access.can_view_change(request.user, approval.change):
        raise Http404("No such approval.")
    if not access.may_decide(request.user, approval):
        raise PermissionDenied("You may not decide this approval.")
    return approval


def _posted(request: HttpRequest):
    """Form data for a POST, even an empty one (``request.POST or None`` would leave the
    form unbound: a 400 with no message)."""
    return request.POST if request.method == "POST" else None


def _refused(
    request: HttpRequest,
    exc: ChangeError,
    *,
    template: str = "changes/refused.html",
    context: dict | None = None,
) -> HttpResponse:
    return render(request, template, {"error": exc.message, **(context or {})}, status=exc.status)


@login_required
def change_list(request: HttpRequest) -> HttpResponse:
    form = ChangeFilterForm(request.GET or None, user=request.user)
    filters = form.cleaned_data if form.is_valid() else {}
    page = selectors.change_page(
        user=request.user, filters=filters, page_number=request.GET.get("page", 1)
    )
    template = "changes/_list_rows.html" if request.htmx else "changes/list.html"
    return render(
        request,
        template,
        {"page": page, "form": form, "can_create": access.can_create(request.user)},
    )


def _form_impact(form: ChangeRequestForm) -> dict:
    return {
        "components": list(form.cleaned_data["components"]),
        "services": list(form.cleaned_data.get("services") or []),
        "tenants": list(form.cleaned_data["tenants"]),
    }


def _submit_saved_draft(request: HttpRequest, change: ChangeRequest) -> HttpResponse:
    """Submit a draft the form has just saved. Saving and submitting are two
    transactions, so when submitting is refused the requester is told the draft was
    kept and sent back to it, never shown a form that looks like nothing was saved."""
    try:
        change = services.change_submit(change=change, by=request.user)
    except ChangeError as exc:
        messages.error(
            request,
            f"{change.public_id} was saved as a draft but not submitted: {exc.message}",
        )
        return redirect("changes:edit", pk=change.pk)
    messages.success(
        request,
        f"{change.public_id} submitted: {change.get_category_display()}, risk {change.risk_level}.",
    )
    return redirect(change.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def change_create(request: HttpRequest) -> HttpResponse:
    if not access.can_create(request.user):
        raise PermissionDenied("Your roles do not allow filing change requests.")
    form = ChangeRequestForm(_posted(request), user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            change = services.change_create(
                by=request.user, data=form.service_data(), **_form_impact(form)
            )
        except ChangeError as exc:
            form.add_error(None, exc.message)
        else:
            if request.POST.get("action") != "submit":
                messages.success(request, f"{change.public_id} saved as a draft.")
                return redirect(change.get_absolute_url())
            return _submit_saved_draft(request, change)
    status = 400 if request.method == "POST" else 200
    return render(request, "changes/form.html", {"form": form, "change": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def change_edit(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    if not access.is_requester(request.user, change):
        raise PermissionDenied("Only the requester may edit this change.")
    if change.state != State.DRAFT:
        messages.error(request, "Only drafts can be edited.")
        return redirect(change.get_absolute_url())
    form = ChangeRequestForm(_posted(request), instance=change, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            change = services.change_update(
                change=change,
                by=request.user,
                data=form.service_data(),
                version=form.cleaned_data.get("version"),
                **_form_impact(form),
            )
        except ChangeError as exc:
            form.add_error(None, exc.message)
            return render(
                request, "changes/form.html", {"form": form, "change": change}, status=exc.status
            )
        if request.POST.get("action") != "submit":
            messages.success(request, f"{change.public_id} saved.")
            return redirect(change.get_absolute_url())
        return _submit_saved_draft(request, change)
    status = 400 if request.method == "POST" else 200
    return render(request, "changes/form.html", {"form": form, "change": change}, status=status)


@login_required
def change_detail(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    user = request.user
    approvals = list(change.approvals.all())
    decidable = {
        a.pk
        for a in approvals
        if a.status == Approval.Status.PENDING
        and access.decision_open(a)
        and access.may_decide(user, a)
        and not access.sod_refusal(user, a)
    }
    mine = access.is_requester(user, change)
    return render(
        request,
        "changes/detail.html",
        {
            "change": change,
            "approvals": approvals,
            "decidable": decidable,
            "timeline": selectors.change_timeline(change),
            "can_edit": mine and change.state == State.DRAFT,
            "can_cancel": mine and change.state in CANCELLABLE_STATES,
            "can_copy": change.state in (State.REJECTED, State.CANCELLED)
            and access.can_create(user),
        },
    )


def _posted_version(request: HttpRequest) -> int | None:
    """The version a change's form carried. A damaged one is treated like a stale form
    (409) instead of reaching the service as text."""
    raw = request.POST.get("version", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise Conflict("This form is out of date or damaged. Reload the page and try again.")
    return int(raw)


def _requester_action(request: HttpRequest, pk: int, action) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    if not access.is_requester(request.user, change):
        raise PermissionDenied("Only the requester may do this.")
    try:
        change = action(change)
    except ChangeError as exc:
        if exc.status == 400:
            messages.error(request, exc.message)
            return redirect(change.get_absolute_url())
        return _refused(request, exc, context={"change": change})
    return redirect(change.get_absolute_url())


@login_required
@require_POST
def change_submit(request: HttpRequest, pk: int) -> HttpResponse:
    def submit(change):
        change = services.change_submit(
            change=change, by=request.user, version=_posted_version(request)
        )
        messages.success(request, f"{change.public_id} submitted: {change.get_category_display()}.")
        return change

    return _requester_action(request, pk, submit)


@login_required
@require_POST
def change_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    def cancel(change):
        change = services.change_cancel(
            change=change,
            by=request.user,
            reason=request.POST.get("reason", "")[:2000],
            version=_posted_version(request),
        )
        messages.success(request, f"{change.public_id} cancelled.")
        return change

    return _requester_action(request, pk, cancel)


@login_required
@require_POST
def change_copy(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    if not access.can_create(request.user):
        raise PermissionDenied("Your roles do not allow filing change requests.")
    try:
        copy = services.change_copy(change=change, by=request.user)
    except ChangeError as exc:
        return _refused(request, exc, context={"change": change})
    messages.success(request, f"{copy.public_id} created from {change.public_id}. Review it.")
    return redirect("changes:edit", pk=copy.pk)


@login_required
def approval_queue(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_superuser or has_role(request.user, *APPROVER_ROLES)):
        raise PermissionDenied("Only approvers have an approval queue.")
    return render(
        request,
        "changes/approvals.html",
        {
            "page": selectors.approval_queue_page(
                request.user, page_number=request.GET.get("page", 1)
            )
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def approval_decide(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _get_approval_for_user(request, pk)
    change = selectors.change_detail(pk=approval.change_id)
    form = DecisionForm(_posted(request), initial={"version": approval.version})
    partial = "changes/_decision.html"
    context = {
        "approval": approval,
        "change": change,
        "form": form,
        "refusal": access.sod_refusal(request.user, approval),
        "open": access.decision_open(approval),
    }
    if request.method == "POST":
        if not form.is_valid():
            return render(
                request, partial if request.htmx else "changes/approval.html", context, status=400
            )
        try:
            approval = services.approval_decide(
                approval=approval,
                by=request.user,
                decision=form.cleaned_data["decision"],
                comment=form.cleaned_data.get("comment", ""),
                version=form.cleaned_data.get("version"),
            )
        except ChangeError as exc:
            context["error"] = exc.message
            return render(
                request,
                partial if request.htmx else "changes/approval.html",
                context,
                status=exc.status,
            )
        context.update(
            approval=approval, decided=True, change=selectors.change_detail(pk=approval.change_id)
        )
        if not request.htmx:
            messages.success(request, f"Your decision on {change.public_id} is recorded.")
            return redirect(change.get_absolute_url())
        return render(request, partial, context)
    return render(request, "changes/approval.html", context)


@login_required
@require_POST
def approval_delegate(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _get_approval_for_user(request, pk)
    form = DelegateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Name the user to delegate to.")
        return redirect(approval.get_absolute_url())
    to_user = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
    if to_user is None:
        messages.error(request, "No user with that username.")
        return redirect(approval.get_absolute_url())
    try:
        services.approval_delegate(approval=approval, by=request.user, to_user=to_user)
    except ChangeError as exc:
        return _refused(request, exc, context={"change": approval.change})
    messages.success(request, f"Delegated to {to_user.get_username()}.")
    return redirect(approval.change.get_absolute_url())
