"""What the compliance app shows on portal pages: Reports and KPIs in the navigation,
the auditor's dashboard panel, the evidence link on a change, and the MFA notice."""

from __future__ import annotations

from django.conf import settings

from compliance import access, selectors
from compliance.mfa import policy
from portal import registry


def _auditor_panel(request) -> dict:
    return {"verification": selectors.latest_chain_verification()}


def _mfa_panel(request) -> dict | None:
    user = request.user
    if user.is_verified() or request.session.get(policy.SESSION_KEY) == "device":
        return None
    return {"required": policy.required(user), "production": settings.PRODUCTION}


def _evidence_panel(request, change) -> dict:
    # The change page is shown only to those who may see the change: the same rule as
    # the pack's own view (changes.access.can_view_change).
    return {"change": change}


def _demo_line() -> str:
    if settings.MFA_REQUIRED_ROLES:
        return f"MFA required for {', '.join(settings.MFA_REQUIRED_ROLES)}: enrol at /mfa/."
    return (
        "MFA is optional outside production (MFA_REQUIRED_ROLES is empty): "
        "any demo user may enrol a TOTP app at /mfa/."
    )


def register() -> None:
    registry.register_nav("Reports", "compliance:reports", allowed=access.is_auditor, order=80)
    registry.register_nav("KPIs", "compliance:kpis", allowed=access.sees_kpis, order=81)
    registry.register_nav("Two-factor", "compliance:mfa", allowed=lambda user: True, order=85)
    registry.register_dashboard_panel(
        "compliance",
        "compliance/_dash_compliance.html",
        _auditor_panel,
        order=12,
        allowed=access.is_auditor,
    )
    registry.register_dashboard_panel("mfa", "compliance/_dash_mfa.html", _mfa_panel, order=1)
    registry.register_change_panel(
        "evidence", "compliance/_change_evidence.html", _evidence_panel, order=90
    )
    registry.register_demo_seeder(_demo_line)
