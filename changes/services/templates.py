"""The standard change catalog: proposing a template (or a new version of one), its
approval by the roles the policy names, retiring it, and filing a change from it.

A template version is decided by the one approval engine (``decisions``) with the same
checks as a change's approvals. A change filed from an approved version is created and
submitted by the ordinary services: the risk assessment still runs, and
``changes.standard.preapproval`` decides on submit whether it stays pre-approved.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Max
from django.utils import timezone
from guardian.shortcuts import assign_perm

from changes import access, standard
from changes import template_access as rules
from changes.models import (
    Category,
    ChangeRequest,
    StandardTemplate,
    TemplateApproval,
    TemplateStatus,
    TemplateVersion,
)
from changes.policy import required_for
from changes.services import decisions
from changes.services.common import check_version
from changes.services.drafts import change_create
from changes.services.review import change_submit
from changes.template_selectors import current_version, pending_version
from portal.audit import audit_record
from portal.errors import Invalid, NotAllowed
from portal.models import Component, Service, Tenant
from portal.notifications import notify
from portal.roles import Role
from portal.transactions import service

VERSION_FIELDS = (
    "title_pattern",
    "description",
    "type",
    "implementation_plan",
    "backout_plan",
    "verification_plan",
    "max_window_minutes",
    "risk_ceiling",
)


def _check_version_data(data: dict[str, Any], components: list, tenants: list, by) -> None:
    standard.check_title_pattern(data.get("title_pattern", ""))
    for key in ("description", "implementation_plan", "backout_plan", "verification_plan"):
        if not str(data.get(key) or "").strip():
            raise Invalid(
                "Describe the work and give the implementation, backout and verification plans."
            )
    standard.check_limits(
        max_window_minutes=data["max_window_minutes"], risk_ceiling=data["risk_ceiling"]
    )
    if not components or not tenants:
        raise Invalid("Name at least one component and one tenant the template covers.")
    if not access.check_tenants_visible(by, tenants):
        raise Invalid("You can only name tenants you have access to.")


@service
def template_propose(
    *,
    by,
    data: dict[str, Any],
    components: Iterable[Component],
    tenants: Iterable[Tenant],
    template: StandardTemplate | None = None,
    source_change: ChangeRequest | None = None,
    version: int | None = None,
    now: datetime | None = None,
) -> TemplateVersion:
    """A new template, or a new version of ``template`` (editing one): it needs the
    approval of the roles the policy names before changes filed from it are
    pre-approved. The approved version, if any, stays in use until then."""
    now = now or timezone.now()
    components, tenants = list(components), list(tenants)
    if template is None:
        if not access.can_create(by):
            raise NotAllowed(
                "Your roles do not allow proposing templates.",
                user=by,
                action="template.propose_refused",
            )
        name = str(data.get("name") or "").strip()
        if not name:
            raise Invalid("Give the template a name.")
        if StandardTemplate.objects.filter(name__iexact=name).exists():
            raise Invalid(f"A template named {name!r} already exists; propose a new version of it.")
        template = StandardTemplate.objects.create(name=name[:120], created_by=by)
        number = 1
    else:
        template = StandardTemplate.objects.select_for_update().get(pk=template.pk)
        rules.require_template(
            by,
            template,
            "propose",
            current=current_version(template),
            pending=pending_version(template),
        )
        check_version(template, version)
        number = (template.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    _check_version_data(data, components, tenants, by)
    procedures: list[dict[str, Any]] = []
    if source_change is not None:
        if not access.can_view_change(by, source_change):
            raise Invalid("No such change to copy the procedures from.")
        procedures = standard.procedures_of(source_change)
    proposed = TemplateVersion.objects.create(
        template=template,
        number=number,
        proposed_by=by,
        procedures=procedures,
        source_change=source_change,
        **{key: data[key] for key in VERSION_FIELDS},
    )
    proposed.components.set(components)
    proposed.tenants.set(tenants)
    _bump(template)
    approvals = _open_review(proposed, tenant_count=len(tenants))
    audit_record(
        action="template.proposed",
        user=by,
        obj=proposed,
        details={
            "template": template.public_id,
            "version": number,
            "required": [a.role for a in approvals],
            "procedures": [p.get("summary", p.get("kind")) for p in procedures],
        },
    )
    _notify_approvers(proposed, approvals)
    return proposed


def _bump(template: StandardTemplate) -> None:
    StandardTemplate.objects.filter(pk=template.pk).update(version=template.version + 1)
    template.version += 1


def _open_review(proposed: TemplateVersion, *, tenant_count: int) -> list[TemplateApproval]:
    """One approval per role the policy names for a Standard change of this type (and
    Compliance when it covers several tenants)."""
    requirements = required_for(
        category=Category.STANDARD, change_type=proposed.type, tenant_count=tenant_count
    )
    groups = {g.name: g for g in Group.objects.filter(name__in=Role.values)}
    approvals = []
    for requirement in requirements:
        if requirement.phase != "PRE":
            continue
        approval = TemplateApproval.objects.create(
            template_version=proposed,
            role=requirement.role,
            rule=requirement.rule,
            required_because=requirement.rule.description[:300],
        )
        assign_perm(TemplateApproval.permission, groups[requirement.role], approval)
        approvals.append(approval)
    if not approvals:
        raise Invalid(
            f"The approval policy names no approver for a Standard change of type "
            f"{proposed.get_type_display()}; ask an administrator to fix the policy."
        )
    return approvals


def _notify_approvers(proposed: TemplateVersion, approvals: list[TemplateApproval]) -> None:
    User = get_user_model()
    for approval in approvals:
        notify(
            recipients=User.objects.filter(groups__name=approval.role, is_active=True)
            .exclude(pk=proposed.proposed_by_id)
            .distinct(),
            subject=f"Template approval needed: {proposed.public_id} {proposed.template.name}",
            body=f"Your role: {approval.get_role_display()}.",
            url=proposed.get_absolute_url(),
            dedup_key=f"template-approval:{approval.pk}:requested",
        )


# --- deciding a template version ---------------------------------------------------------


def _lock_subject(approval: TemplateApproval) -> TemplateVersion:
    return TemplateVersion.objects.select_for_update().get(pk=approval.template_version_id)


def _attach(approval: TemplateApproval, version: TemplateVersion) -> None:
    approval.template_version = version


RULES = decisions.Rules(
    lock_subject=_lock_subject,
    attach=_attach,
    sod_refusal=rules.decision_refusal,
    closed_reason=rules.closed_reason,
    delegate_refusal=rules.delegate_refusal,
    audit_prefix="template",
)


@service
def template_approval_decide(
    *,
    approval: TemplateApproval,
    by,
    decision: str,
    comment: str = "",
    version: int | None = None,
    now: datetime | None = None,
) -> TemplateApproval:
    """One role's decision; the last approval approves the version (superseding the one
    in use), the first rejection rejects it."""
    now = now or timezone.now()
    proposed, locked = decisions.decide(
        model=TemplateApproval,
        approval=approval,
        rules=RULES,
        by=by,
        decision=decision,
        comment=comment,
        version=version,
        now=now,
    )
    if proposed.any_rejected():
        proposed.reject()
    elif proposed.all_approved():
        previous = current_version(proposed.template)
        if previous is not None:
            previous.supersede()
            previous.save(update_fields=["status"])
        proposed.approve()
    else:
        return locked
    proposed.decided_at = now
    proposed.save(update_fields=["status", "decided_at"])
    audit_record(
        action=f"template.version_{proposed.status}",
        obj=proposed,
        details={"decisive_approval": locked.pk, "role": locked.role},
    )
    notify(
        recipients=[proposed.proposed_by],
        subject=f"{proposed.public_id} was {proposed.get_status_display().lower()}",
        body=proposed.template.name,
        url=proposed.get_absolute_url(),
        dedup_key=f"template-version:{proposed.pk}:{proposed.status}",
    )
    return locked


@service
def template_retire(
    *, template: StandardTemplate, by, reason: str, version: int | None = None
) -> StandardTemplate:
    """No change can be filed from a retired template; a version awaiting approval is
    withdrawn. Changes already filed from it go on as they are."""
    locked = StandardTemplate.objects.select_for_update().get(pk=template.pk)
    rules.require_template(
        by, locked, "retire", current=current_version(locked), pending=pending_version(locked)
    )
    check_version(locked, version)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("Say why the template is retired.")
    for pending in locked.versions.filter(status=TemplateStatus.PENDING):
        pending.withdraw()
        pending.save(update_fields=["status"])
    locked.retired_at = timezone.now()
    locked.retired_by = by
    locked.retire_reason = reason[:2000]
    locked.version += 1
    locked.save(update_fields=["retired_at", "retired_by", "retire_reason", "version"])
    audit_record(
        action="template.retired", user=by, obj=locked, details={"reason": locked.retire_reason}
    )
    return locked


# --- filing a change from a template ----------------------------------------------------------


@service
def change_file_from_template(
    *,
    template: StandardTemplate,
    by,
    data: dict[str, Any],
    components: Iterable[Component],
    tenants: Iterable[Tenant],
    services: Iterable[Service] = (),
) -> ChangeRequest:
    """File and submit a change from the template's approved version: its title, type,
    plans and procedures come from the template; the requester picks the components
    and tenants (among those it covers), the start, the window (up to its maximum) and
    the priority. Submitting assesses the risk; within the template it is pre-approved."""
    locked = StandardTemplate.objects.select_for_update().get(pk=template.pk)
    current = current_version(locked)
    rules.require_template(by, locked, "file", current=current, pending=None)
    components, tenants = list(components), list(tenants)
    if not components or not tenants:
        raise Invalid("Name at least one component and one tenant.")
    if not {c.pk for c in components} <= set(current.components.values_list("pk", flat=True)):
        raise Invalid(f"{locked.public_id} does not cover every component you named.")
    if not {t.pk for t in tenants} <= set(current.tenants.values_list("pk", flat=True)):
        raise Invalid(f"{locked.public_id} does not cover every tenant you named.")
    minutes = data.get("window_minutes")
    if not isinstance(minutes, int) or not 1 <= minutes <= current.max_window_minutes:
        raise Invalid(
            f"The window must be 1 to {current.max_window_minutes} minutes (the template's "
            "maximum)."
        )
    start = data.get("proposed_start")
    if start is None:
        raise Invalid("Give the proposed start.")
    change = change_create(
        by=by,
        data={
            "title": standard.render_title(
                current.title_pattern, components=components, tenants=tenants, start=start
            ),
            "description": current.description,
            "type": current.type,
            "priority": data.get("priority") or "LOW",
            "proposed_start": start,
            "window_minutes": minutes,
            "blackout_exception": False,
            "implementation_plan": current.implementation_plan,
            "backout_plan": current.backout_plan,
            "verification_plan": current.verification_plan,
        },
        components=components,
        services=list(services),
        tenants=tenants,
    )
    ChangeRequest.objects.filter(pk=change.pk).update(template_version=current)
    change.template_version = current
    audit_record(
        action="change.filed_from_template",
        user=by,
        obj=change,
        details={"template": locked.public_id, "version": current.number},
    )
    standard.attach_procedures(change=change, by=by, procedures=current.procedures)
    return change_submit(change=change, by=by)
