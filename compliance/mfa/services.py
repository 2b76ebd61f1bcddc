"""MFA writes: enrolment, verification, recovery codes, an administrator's reset."""

from __future__ import annotations

import secrets
from binascii import unhexlify
from dataclasses import dataclass

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import logout
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from compliance.mfa import policy
from compliance.mfa.enrolment import PENDING_KEY
from compliance.models import RecoveryCode, RecoveryDevice, recovery_code_hash
from portal.audit import audit_record
from portal.errors import Invalid, NotAllowed
from portal.models import AuditEvent
from portal.transactions import service

# Letters and digits that cannot be mistaken for one another.
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _token(raw: str) -> int | None:
    raw = "".join(raw.split())
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) == 6 else None


def _new_recovery_codes(user) -> list[str]:
    """A fresh set (the old one is replaced); returned once, stored only as hashes."""
    RecoveryDevice.objects.filter(user=user).delete()
    device = RecoveryDevice.objects.create(user=user, name="Recovery codes")
    codes = []
    for _ in range(settings.MFA_RECOVERY_CODES):
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    RecoveryCode.objects.bulk_create(
        RecoveryCode(device=device, code_hash=recovery_code_hash(code)) for code in codes
    )
    return codes


@service
def mfa_enrol(*, request, code: str) -> list[str]:
    """Confirm the pending secret with a code from the app; the session is verified at
    once and the recovery codes are returned to be shown a single time."""
    user = request.user
    key = request.session.get(PENDING_KEY)
    token = _token(code)
    if not key:
        raise Invalid("The enrolment expired. Scan the new QR code and enter its code.")
    totp = TOTP(unhexlify(key), step=30, t0=0, digits=6)
    if token is None or not totp.verify(token, tolerance=1):
        raise Invalid("That code does not match. Enter the 6 digits your app shows now.")
    TOTPDevice.objects.filter(user=user).delete()
    # The enrolment code is used: last_t stops it being replayed to sign in.
    device = TOTPDevice.objects.create(
        user=user, key=key, name="Authenticator app", confirmed=True, last_t=totp.t()
    )
    codes = _new_recovery_codes(user)
    audit_record(
        action="mfa.enrolled",
        user=user,
        obj=user,
        details={"device": device.persistent_id, "recovery_codes": len(codes)},
    )
    del request.session[PENDING_KEY]
    otp_login(request, device)
    request.session[policy.SESSION_KEY] = "device"
    return codes


@dataclass(frozen=True)
class Verification:
    ok: bool
    locked: bool = False
    method: str = ""
    recovery_left: int | None = None


def _locked(request, user) -> bool:
    return not AxesProxyHandler.is_allowed(request, {"username": user.get_username()})


@service(atomic=False)
def mfa_verify(*, request, code: str) -> Verification:
    """A TOTP code (not one already used) or an unused recovery code verifies the
    session. A wrong one counts as a failed sign-in toward the lockout; at the limit the
    session is signed out."""
    user = request.user
    credentials = {"username": user.get_username()}
    if _locked(request, user):
        logout(request)
        return Verification(ok=False, locked=True)
    cleaned = code.strip()
    device = None
    method = ""
    if _token(cleaned) is not None:
        for candidate in TOTPDevice.objects.filter(user=user, confirmed=True):
            if candidate.verify_token(_token(cleaned)):
                device, method = candidate, "totp"
                break
    elif cleaned:
        for candidate in RecoveryDevice.objects.filter(user=user, confirmed=True):
            if candidate.verify_token(cleaned):
                device, method = candidate, "recovery code"
                break
    if device is not None:
        left = device.remaining() if isinstance(device, RecoveryDevice) else None
        _verified(user=user, method=method, left=left)
        otp_login(request, device)
        AxesProxyHandler.reset_attempts(username=user.get_username())
        return Verification(ok=True, method=method, recovery_left=left)
    _failed(user=user)
    AxesProxyHandler.user_login_failed(sender=mfa_verify, credentials=credentials, request=request)
    if getattr(request, "axes_locked_out", False) or _locked(request, user):
        logout(request)
        return Verification(ok=False, locked=True)
    return Verification(ok=False)


@service
def _verified(*, user, method: str, left: int | None) -> None:
    details = {"method": method}
    if left is not None:
        details["recovery_codes_left"] = left
    audit_record(action="mfa.verified", user=user, obj=user, details=details)


@service
def _failed(*, user) -> None:
    audit_record(action="mfa.failed", user=user, obj=user, outcome=AuditEvent.Outcome.FAILURE)


@service
def mfa_recovery_regenerate(*, request) -> list[str]:
    user = request.user
    if not user.is_verified():
        raise NotAllowed(
            "Verify with your authenticator first.", user=user, action="mfa.recovery_codes"
        )
    codes = _new_recovery_codes(user)
    audit_record(action="mfa.recovery_codes_renewed", user=user, obj=user)
    return codes


@service
def mfa_reset(*, user, by) -> int:
    """An administrator removes a user's devices (a lost phone). Audited; the user enrols
    again at the next request if their roles require MFA."""
    if not (by.is_superuser or by.is_staff):
        raise NotAllowed("Only an administrator may reset MFA.", user=by, action="mfa.reset")
    removed = TOTPDevice.objects.filter(user=user).count()
    removed += RecoveryDevice.objects.filter(user=user).count()
    TOTPDevice.objects.filter(user=user).delete()
    RecoveryDevice.objects.filter(user=user).delete()
    audit_record(
        action="mfa.reset",
        user=by,
        obj=user,
        details={"user": user.get_username(), "devices_removed": removed},
    )
    return removed
