"""The compliance settings (MFA, evidence signing, retention, exports, redaction), read
from the environment like the rest of ``portal.settings``, which takes them from here to
stay readable. A bad value raises ImproperlyConfigured at start-up."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from portal import redaction
from portal.env import env_int, env_list, env_str

MFA_ROLE_NAMES = (
    "REQUESTER",
    "ENGINEERING",
    "OPERATIONS",
    "SECURITY",
    "COMPLIANCE",
    "CTO",
    "HEAD_OF_SECURITY",
    "ADMIN",
)
# On for approvers, COMPLIANCE, OPERATIONS and admins in production.
PRODUCTION_MFA_ROLES = [
    "ENGINEERING",
    "OPERATIONS",
    "SECURITY",
    "COMPLIANCE",
    "CTO",
    "HEAD_OF_SECURITY",
    "ADMIN",
]


def _mfa_roles(production: bool) -> list[str]:
    """Roles that must verify a TOTP device on every request ("ADMIN": staff and
    superusers). Off outside production, so the demo and the tests sign in with a
    password alone (anyone may still enrol, and is then always asked for a code)."""
    roles = [
        r.upper()
        for r in env_list("MFA_REQUIRED_ROLES", PRODUCTION_MFA_ROLES if production else ["none"])
    ]
    if roles == ["NONE"]:
        return []
    for role in roles:
        if role not in MFA_ROLE_NAMES:
            raise ImproperlyConfigured(
                f"MFA_REQUIRED_ROLES: {role!r} is not one of {', '.join(MFA_ROLE_NAMES)} (or none)"
            )
    return roles


def _signing_key(production: bool, var_dir: Path) -> str:
    """Base64 of the Ed25519 seed signing evidence packs: a file in var/ outside
    production (like the secret key), the environment (a secret store) in production."""
    dev_file = var_dir / "dev-evidence-signing-key"
    if not production and not dev_file.exists():
        dev_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        dev_file.chmod(0o600)
    key = env_str("EVIDENCE_SIGNING_KEY", "" if production else dev_file.read_text().strip())
    try:
        ok = len(base64.b64decode(key, validate=True)) == 32
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise ImproperlyConfigured(
            "EVIDENCE_SIGNING_KEY must be the base64 of a 32-byte Ed25519 private key; "
            "generate one with `python -c 'import base64,os; "
            "print(base64.b64encode(os.urandom(32)).decode())'`"
        )
    return key


def _redaction_patterns() -> list[tuple[str, str]]:
    """The built-in patterns and an installation's own (REDACTION_EXTRA_PATTERNS: a JSON
    object of name -> regular expression)."""
    try:
        extra = json.loads(env_str("REDACTION_EXTRA_PATTERNS", "{}"))
        if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
            raise ValueError("it must be a JSON object of name -> regular expression")
        redaction.validate(extra.items())
    except ValueError as exc:
        raise ImproperlyConfigured(f"REDACTION_EXTRA_PATTERNS: {exc}") from None
    return [*redaction.DEFAULT_PATTERNS, *((str(k), v) for k, v in extra.items())]


def compliance_settings(*, production: bool, var_dir: Path) -> dict[str, Any]:
    issuer = env_str("MFA_ISSUER", "Change & Maintenance Portal")
    return {
        "MFA_REQUIRED_ROLES": _mfa_roles(production),
        "MFA_ISSUER": issuer,
        "OTP_TOTP_ISSUER": issuer,
        # Wrong codes count toward the axes lockout (5 in 15 minutes, like passwords);
        # django-otp's growing delay on top would refuse a right code typed just after.
        "OTP_TOTP_THROTTLE_FACTOR": 0,
        "MFA_RECOVERY_CODES": 10,
        # A correct password alone does not wipe earlier failures: with MFA the sign-in
        # succeeds only once the code is verified (compliance.mfa resets the count then,
        # or at the password for a user without MFA), so wrong codes count toward it.
        "AXES_RESET_ON_SUCCESS": False,
        # The code typed on the verification page is never kept in axes' attempt records.
        "AXES_SENSITIVE_PARAMETERS": ["otp_token"],
        "EVIDENCE_SIGNING_KEY": _signing_key(production, var_dir),
        # HIPAA 164.316(b)(2): kept six years from the last activity; deleting sooner is
        # refused and audited. Beyond it, `manage.py archive_records`.
        "RETENTION_YEARS": env_int("RETENTION_YEARS", 6, minimum=6),
        # Rows per server-side cursor chunk; a background export reports progress per chunk.
        "EXPORT_CHUNK_ROWS": env_int("EXPORT_CHUNK_ROWS", 2000, minimum=100),
        # Procedure and script output passes through these before it is stored, exported
        # or shown (portal/redaction.py).
        "REDACTION_PATTERNS": _redaction_patterns(),
    }
