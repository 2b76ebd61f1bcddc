"""The secret offered at enrolment: kept in the session until a code confirms it, so an
abandoned enrolment leaves nothing behind."""

from __future__ import annotations

import secrets

from django_otp.plugins.otp_totp.models import TOTPDevice

PENDING_KEY = "portal_mfa_pending_key"


def pending_key(session) -> str:
    """The secret offered for enrolment, kept in the session until it is confirmed."""
    key = session.get(PENDING_KEY)
    if not key:
        key = secrets.token_hex(20)
        session[PENDING_KEY] = key
    return key


def pending_device(user, key: str) -> TOTPDevice:
    """An unsaved device, for its otpauth:// URL and QR code."""
    return TOTPDevice(user=user, key=key, name="Authenticator app", confirmed=False)
