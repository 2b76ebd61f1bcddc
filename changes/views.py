from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from changes import access, selectors, services
from changes.forms import (
    ChangeFilterForm,
    ChangeRequestForm,
    CorrectiveActionForm,
    DecisionForm,
    DelegateForm,
    NotesForm,
    ReviewForm,
)
from changes.models import Approval, ChangeRequest
from portal import registry
from portal.errors import Conflict, Hidden, Invalid, PortalError
from portal.http import back_to, refused
from portal.roles import APPROVER_ROLES, has_role
from portal.transactions import entry


def _get_change_for_user(request: HttpRequest, pk: int) -> ChangeRequest:
    """404 (audited) when the change does not exist or the user may not see it."""
    change = selectors.visible_change_detail(user=request.user, pk=pk)
    if change is None:
        raise Hidden(
            "No such change.",
            user=request.user,
            action="change.hidden",
            object_type="changes.changerequest",
            object_id=pk,
        )
    return change


def _get_approval_for_user(request: HttpRequest, pk: int) -> Approval:
    """404 if its change is hidden from the user; 403 if seen but not theirs to decide."""
    approval = selectors.approval_detail(pk=pk)
    if approval is None or not access.can_view_change(request.user, approval.change):
        raise Hidden(
            "No such approval.",
            user=request.user,
            action="approval.hidden",
            object_type="changes.approval",
            object_id=pk,
        )
    if not access.may_decide(request.user, approval):
        raise PermissionDenied("You may not decide this approval.")
    return approval


def _posted(request: HttpRequest):
    """Form data for a POST, even an empty one (``request.POST or None`` would leave the
    form unbound: a 400 with no message)."""
    return request.POST if request.method == "POST" else None


def _posted_version(request: HttpRequest) -> int | None:
    """The version a change's form carried. A damaged one is treated like a stale form
    (409) instead of reaching the service as text."""
    raw = request.POST.get("version", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise Conflict("This form is out of date or damaged. Reload the page and try again.")
    return int(raw)


@login_required
def change_list(request: HttpRequest) -> HttpResponse:
    form = ChangeFilterForm(request.GET or None, user=request.user)
    filters = form.cleaned_data if form.is_valid() else {}
    page = selectors.change_page(
        user=request.user,
        filters=filters,
        before=request.GET.get("before"),
        after=request.GET.get("after"),
    )
    query = request.GET.copy()
    for key in ("before", "after", "page"):
        query.pop(key, None)
    template = "changes/_list_rows.html" if request.htmx else "changes/list.html"
    return render(
        request,
        template,
        {
            "page": page,
            "query": query.urlencode(),
            "form": form,
            "can_create": access.can_create(request.user),
        },
    )


def _form_impact(form: ChangeRequestForm) -> dict:
    return {
        "components": list(form.cleaned_data["components"]),
        "services": list(form.cleaned_data.get("services") or []),
        "tenants": list(form.cleaned_data["tenants"]),
    }


def _saved(request: HttpRequest, change: ChangeRequest, *, submitted: bool) -> HttpResponse:
    if submitted:
        messages.success(
            request,
            f"{change.public_id} submitted: {change.get_category_display()}, "
            f"risk {change.risk_level}.",
        )
    else:
        messages.success(request, f"{change.public_id} saved as a draft.")
    return redirect(change.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def change_create(request: HttpRequest) -> HttpResponse:
    if not access.can_create(request.user):
        raise PermissionDenied("Your roles do not allow filing change requests.")
    form = ChangeRequestForm(_posted(request), user=request.user)
    if request.method == "POST" and form.is_valid():
        submit = request.POST.get("action") == "submit"
        try:
            # Saving and submitting are one transaction: a refused submit saves nothing,
            # and the form comes back with everything the requester typed.
            with entry():
                change = services.change_create(
                    by=request.user, data=form.service_data(), **_form_impact(form)
                )
                if submit:
                    change = services.change_submit(change=change, by=request.user)
        except PortalError as exc:
            form.add_error(None, exc.message)
        else:
            return _saved(request, change, submitted=submit)
    status = 400 if request.method == "POST" else 200
    return render(request, "changes/form.html", {"form": form, "change": None}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def change_edit(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    verdict = access.change_actions(request.user, change)["edit"]
    if not verdict and verdict.status == 403:
        raise PermissionDenied(verdict.reason)
    if not verdict:
        messages.error(request, verdict.reason)
        return redirect(change.get_absolute_url())
    form = ChangeRequestForm(_posted(request), instance=change, user=request.user)
    if request.method == "POST" and form.is_valid():
        submit = request.POST.get("action") == "submit"
        try:
            with entry():
                change = services.change_update(
                    change=change,
                    by=request.user,
                    data=form.service_data(),
                    version=form.cleaned_data.get("version"),
                    **_form_impact(form),
                )
                if submit:
                    change = services.change_submit(change=change, by=request.user)
        except PortalError as exc:
            form.add_error(None, exc.message)
            return render(
                request, "changes/form.html", {"form": form, "change": change}, status=exc.status
            )
        if not submit:
            messages.success(request, f"{change.public_id} saved.")
            return redirect(change.get_absolute_url())
        return _saved(request, change, submitted=True)
    status = 400 if request.method == "POST" else 200
    return render(request, "changes/form.html", {"form": form, "change": change}, status=status)


@login_required
def change_detail(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    user = request.user
    approvals = list(change.approvals.all())
    decidable = {a.pk for a in approvals if access.approval_actions(user, a)["decide"]}
    return render(
        request,
        "changes/detail.html",
        {
            "change": change,
            "impact": selectors.impact_names(change),
            "approvals": approvals,
            "decidable": decidable,
            "actions": access.change_actions(user, change),
            "timeline": selectors.change_timeline(change),
            "corrective_actions": list(change.corrective_actions.all()),
            "panels": registry.change_panels(request, change),
        },
    )


def _change_action(request: HttpRequest, pk: int, action, done: str = "") -> HttpResponse:
    """Run a POSTed action on a change the user may see; refusals through one helper."""
    change = _get_change_for_user(request, pk)
    try:
        change = action(change) or change
    except PortalError as exc:
        if exc.status == 400:
            messages.error(request, exc.message)
            return redirect(change.get_absolute_url())
        return refused(request, exc, back=back_to(change))
    if done:
        messages.success(request, done.format(change=change))
    return redirect(change.get_absolute_url())


@login_required
@require_POST
def change_submit(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_action(
        request,
        pk,
        lambda c: services.change_submit(
            change=c, by=request.user, version=_posted_version(request)
        ),
        "{change.public_id} submitted: {change.get_category_display}.",
    )


@login_required
@require_POST
def change_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_action(
        request,
        pk,
        lambda c: services.change_cancel(
            change=c,
            by=request.user,
            reason=request.POST.get("reason", "")[:2000],
            version=_posted_version(request),
        ),
        "{change.public_id} cancelled.",
    )


@login_required
@require_POST
def change_copy(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    try:
        copy = services.change_copy(change=change, by=request.user)
    except PortalError as exc:
        return refused(request, exc, back=back_to(change))
    messages.success(request, f"{copy.public_id} created from {change.public_id}. Review it.")
    return redirect("changes:edit", pk=copy.pk)


@login_required
@require_POST
def change_implemented(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_action(
        request,
        pk,
        lambda c: services.change_implement(
            change=c, by=request.user, notes=request.POST.get("notes", "")[:2000]
        ),
        "{change.public_id} is implemented; verify it next.",
    )


@login_required
@require_POST
def change_verify(request: HttpRequest, pk: int) -> HttpResponse:
    form = NotesForm(request.POST)

    def verify(change):
        if not form.is_valid():
            raise Invalid("Describe what you checked.")
        return services.change_verify(
            change=change,
            by=request.user,
            passed=request.POST.get("passed") == "1",
            notes=form.cleaned_data["notes"],
        )

    return _change_action(request, pk, verify, "Verification of {change.public_id} recorded.")


@login_required
@require_http_methods(["GET", "POST"])
def change_review(request: HttpRequest, pk: int) -> HttpResponse:
    change = _get_change_for_user(request, pk)
    verdict = access.change_actions(request.user, change)["review"]
    if not verdict:
        if verdict.status == 403:
            raise PermissionDenied(verdict.reason)
        return refused(request, Conflict(verdict.reason), back=back_to(change))
    form = ReviewForm(_posted(request))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.review_submit(change=change, by=request.user, **form.cleaned_data)
            except PortalError as exc:
                form.add_error(None, exc.message)
                status = exc.status
            else:
                messages.success(request, "Post-implementation review recorded.")
                return redirect(change.get_absolute_url())
        else:
            status = 400
    return render(request, "changes/review.html", {"change": change, "form": form}, status=status)


@login_required
@require_POST
def change_close(request: HttpRequest, pk: int) -> HttpResponse:
    return _change_action(
        request,
        pk,
        lambda c: services.change_close(change=c, by=request.user),
        "{change.public_id} closed.",
    )


@login_required
@require_POST
def change_correct(request: HttpRequest, pk: int) -> HttpResponse:
    form = CorrectiveActionForm(request.POST)

    def correct(change):
        if not form.is_valid():
            raise Invalid.from_form(form)
        linked = None
        if form.cleaned_data["linked_change"]:
            linked = ChangeRequest.objects.filter(pk=form.cleaned_data["linked_change"]).first()
            if linked is None:
                raise Invalid("No change with that id.")
        services.corrective_action_record(
            change=change, by=request.user, note=form.cleaned_data["note"], linked_change=linked
        )

    return _change_action(request, pk, correct, "Corrective action recorded.")


# --- approvals ------------------------------------------------------------------------


@login_required
def approval_queue(request: HttpRequest) -> HttpResponse:
    if not (request.user.is_superuser or has_role(request.user, *APPROVER_ROLES)):
        raise PermissionDenied("Only approvers have an approval queue.")
    return render(
        request,
        "changes/approvals.html",
        {
            "page": selectors.approval_queue_page(
                request.user, before=request.GET.get("before"), after=request.GET.get("after")
            )
        },
    )


def _approval_context(request: HttpRequest, approval: Approval, form) -> dict:
    change = selectors.change_detail(pk=approval.change_id)
    approval.change = change
    actions = access.approval_actions(request.user, approval)
    return {
        "approval": approval,
        "change": change,
        "form": form,
        "actions": actions,
        "refusal": access.sod_refusal(request.user, approval),
        "open": access.decision_open(approval),
        "delegate_form": DelegateForm(initial={"days": 7}),
        "panels": registry.change_panels(request, change, page="approval"),
    }


@login_required
@require_http_methods(["GET", "POST"])
def approval_decide(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _get_approval_for_user(request, pk)
    form = DecisionForm(_posted(request), initial={"version": approval.version})
    partial = "changes/_decision.html"
    if request.method == "GET":
        return render(request, "changes/approval.html", _approval_context(request, approval, form))
    template = partial if request.htmx else "changes/approval.html"
    if not form.is_valid():
        return render(request, template, _approval_context(request, approval, form), status=400)
    try:
        approval = services.approval_decide(
            approval=approval,
            by=request.user,
            decision=form.cleaned_data["decision"],
            comment=form.cleaned_data.get("comment", ""),
            version=form.cleaned_data.get("version"),
        )
    except PortalError as exc:
        context = _approval_context(request, approval, form)
        context["error"] = exc.message
        return render(request, template, context, status=exc.status)
    if not request.htmx:
        messages.success(request, f"Your decision on {approval.change.public_id} is recorded.")
        return redirect(approval.change.get_absolute_url())
    context = _approval_context(request, approval, form)
    context["decided"] = True
    return render(request, partial, context)


@login_required
@require_POST
def approval_delegate(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _get_approval_for_user(request, pk)
    form = DelegateForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(m for errs in form.errors.values() for m in errs))
        return redirect(approval.get_absolute_url())
    to_user = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
    if to_user is None:
        messages.error(request, "No user with that username.")
        return redirect(approval.get_absolute_url())
    try:
        services.approval_delegate(
            approval=approval, by=request.user, to_user=to_user, days=form.cleaned_data["days"]
        )
    except PortalError as exc:
        return refused(request, exc, back=back_to(approval.change))
    messages.success(
        request, f"Delegated to {to_user.get_username()} for {form.cleaned_data['days']} days."
    )
    return redirect(approval.get_absolute_url())


@login_required
@require_POST
def approval_delegation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    approval = selectors.approval_detail(pk=pk)
    if approval is None or not access.can_view_change(request.user, approval.change):
        raise Hidden(
            "No such approval.",
            user=request.user,
            action="approval.hidden",
            object_type="changes.approval",
            object_id=pk,
        )
    try:
        services.approval_delegation_revoke(approval=approval, by=request.user)
    except PortalError as exc:
        return refused(request, exc, back=back_to(approval.change))
    messages.success(request, "The delegation is revoked.")
    return redirect(approval.change.get_absolute_url())
