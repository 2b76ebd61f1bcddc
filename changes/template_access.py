"""Who may see and do what with the standard change catalog: the pages (which buttons to
show) and the services (what to allow) ask these functions, as ``changes.access`` does
for changes.

A template is seen by whoever may see one of the tenants it covers (Compliance sees
all); it is filed from by whoever may file changes; its approvals are decided, like a
change's, by a holder of the role who may see every tenant it covers and did not
propose it; it is retired by its author or an operator.
"""

from __future__ import annotations

from django.db.models import QuerySet

from changes.access import YES, Verdict, can_create, is_operator, may_decide, sees_everything
from changes.models import (
    ApprovalBase,
    StandardTemplate,
    TemplateApproval,
    TemplateStatus,
    TemplateVersion,
)
from portal.errors import Conflict, NotAllowed
from portal.permissions import visible_tenants


def templates_visible_to(user) -> QuerySet[StandardTemplate]:
    if not getattr(user, "is_authenticated", False):
        return StandardTemplate.objects.none()
    if sees_everything(user):
        return StandardTemplate.objects.all()
    tenant_ids = visible_tenants(user).values("pk")
    version_ids = TemplateVersion.tenants.through.objects.filter(tenant_id__in=tenant_ids).values(
        "templateversion_id"
    )
    return StandardTemplate.objects.filter(versions__in=version_ids).distinct()


def sees_all_tenants_of(user, version: TemplateVersion) -> bool:
    if sees_everything(user):
        return True
    wanted = {t.pk for t in version.tenants.all()}
    allowed = set(visible_tenants(user).filter(pk__in=wanted).values_list("pk", flat=True))
    return wanted <= allowed


def template_actions(
    user,
    template: StandardTemplate,
    *,
    current: TemplateVersion | None,
    pending: TemplateVersion | None,
) -> dict[str, Verdict]:
    """File from it, propose a new version (edit it), retire it."""
    actions: dict[str, Verdict] = {}
    retired = Verdict(False, f"{template.public_id} is retired.", 409)
    if not can_create(user):
        actions["file"] = Verdict(False, "Your roles do not allow filing change requests.")
    elif template.retired:
        actions["file"] = retired
    elif current is None:
        actions["file"] = Verdict(
            False, f"{template.public_id} has no approved version yet; it cannot be used.", 409
        )
    else:
        actions["file"] = YES

    if not can_create(user):
        actions["propose"] = Verdict(False, "Your roles do not allow proposing templates.")
    elif template.retired:
        actions["propose"] = retired
    elif pending is not None:
        actions["propose"] = Verdict(
            False, f"{pending.public_id} is awaiting approval; decide it first.", 409
        )
    else:
        actions["propose"] = YES

    if not (user.is_superuser or is_operator(user) or template.created_by_id == user.pk):
        actions["retire"] = Verdict(False, "Only its author or an operator retires a template.")
    elif template.retired:
        actions["retire"] = retired
    else:
        actions["retire"] = YES
    return actions


def require_template(user, template: StandardTemplate, action: str, **versions) -> None:
    verdict = template_actions(user, template, **versions)[action]
    if verdict:
        return
    if verdict.status == 409:
        raise Conflict(verdict.reason)
    raise NotAllowed(verdict.reason, user=user, action=f"template.{action}_refused", obj=template)


# --- a template version's approvals: the same engine as a change's ---------------------


def sod_refusal(user, approval: TemplateApproval) -> str | None:
    version = approval.template_version
    if version.proposed_by_id == user.pk:
        return "You proposed this template version, so you cannot decide on it."
    for other in version.approvals.all():
        if other.pk != approval.pk and other.decided_by_id == user.pk:
            return (
                f"You already decided this template as {other.get_role_display()}; "
                "one person may fill only one role per template."
            )
    return None


def closed_reason(approval: TemplateApproval) -> str | None:
    version = approval.template_version
    if version.template.retired:
        return f"{version.template.public_id} is retired."
    if version.status != TemplateStatus.PENDING:
        return f"{version.public_id} is {version.get_status_display().lower()}."
    return None


def delegate_refusal(approval: TemplateApproval, to_user) -> str | None:
    return "Template approvals are decided by the role's holders; they are not delegated."


def approval_actions(user, approval: TemplateApproval) -> dict[str, Verdict]:
    refusal = sod_refusal(user, approval)
    if refusal:
        decide = Verdict(False, refusal)
    elif not may_decide(user, approval):
        decide = Verdict(False, f"You may not decide the {approval.get_role_display()} approval.")
    elif not sees_all_tenants_of(user, approval.template_version):
        decide = Verdict(
            False, "You may not see every tenant this template covers, so you cannot decide it."
        )
    elif approval.status != ApprovalBase.Status.PENDING:
        decide = Verdict(False, "This approval is already decided.", 409)
    elif closed_reason(approval):
        decide = Verdict(False, closed_reason(approval) or "", 409)
    else:
        decide = YES
    return {"decide": decide}


def decision_refusal(user, approval: TemplateApproval) -> str | None:
    """What the engine checks first: separation of duties, then sight of every tenant
    the template covers (a decider must know what they approve)."""
    refusal = sod_refusal(user, approval)
    if refusal:
        return refusal
    if not sees_all_tenants_of(user, approval.template_version):
        return "You may not see every tenant this template covers, so you cannot decide it."
    return None
