"""Reads for the standard change catalog pages and the filing form."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from changes.models import StandardTemplate, TemplateApproval, TemplateStatus, TemplateVersion
from changes.template_access import templates_visible_to


def current_version(template: StandardTemplate) -> TemplateVersion | None:
    """The approved version in use, if any (at most one: a constraint says so)."""
    return template.versions.filter(status=TemplateStatus.APPROVED).first()


def pending_version(template: StandardTemplate) -> TemplateVersion | None:
    return template.versions.filter(status=TemplateStatus.PENDING).first()


def catalog(user, *, include_retired: bool = False) -> list[StandardTemplate]:
    """The templates this user may see, each with its versions (three queries)."""
    qs: QuerySet[StandardTemplate] = templates_visible_to(user)
    if not include_retired:
        qs = qs.filter(retired_at__isnull=True)
    versions = TemplateVersion.objects.select_related("template").prefetch_related("tenants")
    templates = list(
        qs.select_related("created_by")
        .prefetch_related(Prefetch("versions", queryset=versions.order_by("-number")))
        .order_by("name", "pk")
    )
    for template in templates:
        all_versions = list(template.versions.all())
        template.current = next(
            (v for v in all_versions if v.status == TemplateStatus.APPROVED), None
        )
        template.pending = next(
            (v for v in all_versions if v.status == TemplateStatus.PENDING), None
        )
    return templates


def template_versions(template: StandardTemplate) -> list[TemplateVersion]:
    approvals = TemplateApproval.objects.select_related("decided_by").order_by("role")
    return list(
        template.versions.select_related("proposed_by", "source_change", "template")
        .prefetch_related("components", "tenants", Prefetch("approvals", queryset=approvals))
        .order_by("-number")
    )
