"""Pages of the standard change catalog: the list, a template (its versions, their
approvals and decisions), proposing and editing one, retiring it, filing a change."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from changes import access, services, template_selectors
from changes import template_access as rules
from changes.models import ChangeRequest, StandardTemplate, TemplateApproval
from changes.template_forms import (
    FileFromTemplateForm,
    RetireForm,
    TemplateDecisionForm,
    TemplateForm,
)
from portal.errors import Conflict, Hidden, Invalid, PortalError
from portal.http import back_to, refused
from portal.permissions import visible_tenants
from portal.roles import user_roles


def _get_template_for_user(request: HttpRequest, pk: int) -> StandardTemplate:
    """404 (audited) when it does not exist or covers no tenant the user may see."""
    template = rules.templates_visible_to(request.user).filter(pk=pk).first()
    if template is None:
        raise Hidden(
            "No such template.",
            user=request.user,
            action="template.hidden",
            object_type="changes.standardtemplate",
            object_id=pk,
        )
    return template


def _actions(request: HttpRequest, template: StandardTemplate) -> dict:
    return rules.template_actions(
        request.user,
        template,
        current=template_selectors.current_version(template),
        pending=template_selectors.pending_version(template),
    )


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    show_retired = request.GET.get("retired") == "1"
    return render(
        request,
        "changes/templates/list.html",
        {
            "templates": template_selectors.catalog(request.user, include_retired=show_retired),
            "show_retired": show_retired,
            "can_propose": access.can_create(request.user),
        },
    )


def _source_change(request: HttpRequest, form: TemplateForm) -> ChangeRequest | None:
    pk = form.cleaned_data.get("source_change")
    if pk is None:
        return None
    change = access.changes_visible_to(request.user).filter(pk=pk).first()
    if change is None:
        raise Invalid(f"No change {ChangeRequest.public_id_of(pk)} that you may see.")
    return change


def _propose(request: HttpRequest, form: TemplateForm, template=None):
    """(the proposed version, None) or (None, the refusal)."""
    try:
        version = services.template_propose(
            by=request.user,
            data=form.cleaned_data,
            components=list(form.cleaned_data["components"]),
            tenants=list(form.cleaned_data["tenants"]),
            template=template,
            source_change=_source_change(request, form),
            version=form.cleaned_data.get("version"),
        )
    except PortalError as exc:
        return None, exc
    messages.success(
        request, f"{version.public_id} proposed; the roles the policy names approve it next."
    )
    return version, None


@login_required
@require_http_methods(["GET", "POST"])
def template_new(request: HttpRequest) -> HttpResponse:
    if not access.can_create(request.user):
        raise PermissionDenied("Your roles do not allow proposing templates.")
    form = TemplateForm(
        request.POST if request.method == "POST" else None, user=request.user, new=True
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            version, error = _propose(request, form)
            if error is None:
                return redirect(version.template.get_absolute_url())
            form.add_error(None, error.message)
            status = error.status
    return render(
        request, "changes/templates/form.html", {"form": form, "template": None}, status=status
    )


@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Editing a template proposes its next version."""
    template = _get_template_for_user(request, pk)
    verdict = _actions(request, template)["propose"]
    if not verdict:
        if verdict.status == 403:
            raise PermissionDenied(verdict.reason)
        return refused(request, Conflict(verdict.reason), back=back_to(template))
    latest = template.versions.order_by("-number").first()
    initial = TemplateForm.initial_from(latest) if latest else {}
    bound = request.POST if request.method == "POST" else None
    form = TemplateForm(bound, user=request.user, new=False, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            _, error = _propose(request, form, template=template)
            if error is None:
                return redirect(template.get_absolute_url())
            form.add_error(None, error.message)
            status = error.status
    return render(
        request,
        "changes/templates/form.html",
        {"form": form, "template": template},
        status=status,
    )


@login_required
def template_detail(request: HttpRequest, pk: int) -> HttpResponse:
    template = _get_template_for_user(request, pk)
    versions = template_selectors.template_versions(template)
    visible = set(visible_tenants(request.user).values_list("pk", flat=True))
    everything = access.sees_everything(request.user)
    rows = []
    for version in versions:
        tenants = list(version.tenants.all())
        shown = [t for t in tenants if everything or t.pk in visible]
        approvals = []
        for approval in version.approvals.all():
            decide = rules.approval_actions(request.user, approval)["decide"]
            # A holder of the role is told why they may not decide; others see nothing.
            holds = approval.role in user_roles(request.user)
            explain = decide.reason if holds and not decide and decide.status == 403 else ""
            approvals.append((approval, decide, explain))
        rows.append(
            {
                "version": version,
                "tenants": shown,
                "hidden_tenants": len(tenants) - len(shown),
                "approvals": approvals,
            }
        )
    return render(
        request,
        "changes/templates/detail.html",
        {
            "template": template,
            "rows": rows,
            "actions": _actions(request, template),
            "retire_form": RetireForm(),
        },
    )


@login_required
@require_POST
def template_decide(request: HttpRequest, pk: int) -> HttpResponse:
    approval = (
        TemplateApproval.objects.select_related("template_version__template").filter(pk=pk).first()
    )
    if approval is None:
        raise Hidden(
            "No such approval.",
            user=request.user,
            action="template.hidden",
            object_type="changes.templateapproval",
            object_id=pk,
        )
    template = _get_template_for_user(request, approval.template_version.template_id)
    form = TemplateDecisionForm(request.POST)
    try:
        if not form.is_valid():
            raise Invalid.from_form(form)
        services.template_approval_decide(
            approval=approval,
            by=request.user,
            decision=form.cleaned_data["decision"],
            comment=form.cleaned_data["comment"],
            version=form.cleaned_data.get("version"),
        )
    except PortalError as exc:
        return refused(request, exc, back=back_to(template))
    messages.success(request, "Your decision on the template is recorded.")
    return redirect(template.get_absolute_url())


@login_required
@require_POST
def template_retire(request: HttpRequest, pk: int) -> HttpResponse:
    template = _get_template_for_user(request, pk)
    form = RetireForm(request.POST)
    try:
        if not form.is_valid():
            raise Invalid.from_form(form)
        services.template_retire(
            template=template,
            by=request.user,
            reason=form.cleaned_data["reason"],
            version=form.cleaned_data.get("version"),
        )
    except PortalError as exc:
        return refused(request, exc, back=back_to(template))
    messages.success(request, f"{template.public_id} is retired; no change can be filed from it.")
    return redirect(template.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def template_file(request: HttpRequest, pk: int) -> HttpResponse:
    template = _get_template_for_user(request, pk)
    verdict = _actions(request, template)["file"]
    if not verdict:
        if verdict.status == 403:
            raise PermissionDenied(verdict.reason)
        return refused(request, Conflict(verdict.reason), back=[back_to(template)])
    version = template_selectors.current_version(template)
    form = FileFromTemplateForm(
        request.POST if request.method == "POST" else None,
        user=request.user,
        version=version,
        initial={"proposed_start": FileFromTemplateForm.default_start()},
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            components = list(form.cleaned_data["components"])
            try:
                change = services.change_file_from_template(
                    template=template,
                    by=request.user,
                    data=form.cleaned_data,
                    components=components,
                    tenants=list(form.cleaned_data["tenants"]),
                    services=list({c.service for c in components if c.service_id}),
                )
            except PortalError as exc:
                form.add_error(None, exc.message)
                status = exc.status
            else:
                messages.success(
                    request,
                    f"{change.public_id} filed: {change.category_label}, risk "
                    f"{change.risk_level} ({change.risk_score}).",
                )
                return redirect(change.get_absolute_url())
    return render(
        request,
        "changes/templates/file.html",
        {"template": template, "version": version, "form": form},
        status=status,
    )
