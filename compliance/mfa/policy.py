"""Who must use MFA, and what a signed-in but unverified session must do next.

``settings.MFA_REQUIRED_ROLES`` names the roles ("ADMIN": staff and superusers). A user
who enrolled of their own accord is asked for a code too. Whether a user has a device
is remembered in the session at sign-in (and when enrolling or being reset), so pages
pay no extra query for it; the role check uses the roles every page reads anyway.
"""

from __future__ import annotations

from django.conf import settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.roles import has_role

SESSION_KEY = "portal_mfa"  # "device" or "none"
VERIFY, ENROL = "verify", "enrol"


def required(user) -> bool:
    roles = set(settings.MFA_REQUIRED_ROLES)
    if not roles or not getattr(user, "is_authenticated", False):
        return False
    if "ADMIN" in roles and (user.is_staff or user.is_superuser):
        return True
    return has_role(user, *(roles - {"ADMIN"}))


def has_device(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def remember(session, user) -> None:
    session[SESSION_KEY] = "device" if has_device(user) else "none"


def next_step(request) -> str | None:
    """VERIFY, ENROL, or None when the request may go on."""
    user = request.user
    if not user.is_authenticated or user.is_verified():
        return None
    known = request.session.get(SESSION_KEY)
    if known is None:  # a session from before MFA existed
        remember(request.session, user)
        known = request.session[SESSION_KEY]
    if known == "device":
        return VERIFY
    if required(user):
        return ENROL
    return None
