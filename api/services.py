"""Writes of the API app: creating and revoking tokens, and recording each use of one
(the audit row naming the token's id, the rate limit's count)."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from api.errors import RateLimited, Unauthenticated
from api.models import ApiToken, Scope
from portal.audit import audit_record
from portal.errors import AuditInfo, Invalid, NotAllowed
from portal.models import AuditEvent
from portal.transactions import audit_refusal, service

PREFIX = "cmp"
RATE_WINDOW = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    key: str  # shown once, never stored


@service
def api_token_create(
    *, by, name: str, scopes: list[str], days: int, now: datetime | None = None
) -> NewToken:
    """A token for ``by``: its own rights, narrowed to ``scopes``, for ``days`` days."""
    now = now or timezone.now()
    if not getattr(by, "is_authenticated", False) or not by.is_active:
        raise NotAllowed("Sign in to create an API token.", user=by, action="api.token_refused")
    name = (name or "").strip()
    if not name:
        raise Invalid("Name the token after what will use it, e.g. “deploy pipeline”.")
    scopes = sorted(set(scopes or []))
    if not scopes or not set(scopes) <= set(Scope.values):
        raise Invalid("Choose at least one scope: read, write or decide.")
    longest = settings.API_TOKEN_MAX_DAYS
    if not isinstance(days, int) or not 1 <= days <= longest:
        raise Invalid(f"A token expires after 1 to {longest} days.")
    display_id = f"{PREFIX}_{secrets.token_hex(4)}"
    key = f"{display_id}_{secrets.token_urlsafe(24)}"
    token = ApiToken.objects.create(
        user=by,
        name=name[:100],
        display_id=display_id,
        key_hash=_hash(key),
        scopes=scopes,
        expires_at=now + timedelta(days=days),
    )
    audit_record(
        action="api.token_created",
        user=by,
        obj=token,
        details={"name": token.name, "scopes": scopes, "expires_at": token.expires_at.isoformat()},
    )
    return NewToken(token=token, key=key)


@service
def api_token_revoke(*, token: ApiToken, by) -> ApiToken:
    locked = ApiToken.objects.select_for_update().get(pk=token.pk)
    if locked.user_id != by.pk:
        raise NotAllowed(
            "Only its owner revokes a token.", user=by, action="api.token_revoke_refused"
        )
    if locked.revoked_at is not None:
        return locked
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    audit_record(action="api.token_revoked", user=by, obj=locked, details={"name": locked.name})
    return locked


@service
def _record_use(*, key: str, method: str, path: str, now: datetime) -> tuple[ApiToken | None, str]:
    """Lock the token's row, check it, count the request; (token, why refused or "")."""
    # Only the token's row: locking its user's too (FOR UPDATE reaches joined rows) made
    # a concurrent request of the same user deadlock, its audit row's key check on the
    # user waiting for us while we waited for the audit chain it held.
    token = (
        ApiToken.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(key_hash=_hash(key))
        .first()
    )
    if token is None:
        return None, "unknown"
    if token.revoked_at is not None:
        return token, "revoked"
    if token.expires_at <= now:
        return token, "expired"
    if not token.user.is_active:
        return token, "inactive"
    fields = ["window_count", "last_used_at"]
    if token.window_started_at is None or now - token.window_started_at >= RATE_WINDOW:
        token.window_started_at, token.window_count = now, 0
        token.window_refusal_audited = False
        fields += ["window_started_at", "window_refusal_audited"]
    if token.window_count >= settings.API_RATE_LIMIT_PER_MINUTE:
        if token.window_refusal_audited:
            token.save(update_fields=fields)
            return token, "rate_limited"
        token.window_refusal_audited = True
        token.save(update_fields=[*fields, "window_refusal_audited"])
        audit_record(
            action="api.token_rate_limited",
            user=token.user,
            obj=token,
            outcome=AuditEvent.Outcome.DENIED,
            details={
                "method": method,
                "path": path[:300],
                "limit_per_minute": settings.API_RATE_LIMIT_PER_MINUTE,
            },
        )
        return token, "rate_limited"
    token.window_count += 1
    token.last_used_at = now
    token.save(update_fields=fields)
    audit_record(
        action="api.token_used",
        user=token.user,
        obj=token,
        details={"method": method, "path": path[:300], "scopes": token.scopes},
    )
    return token, ""


REFUSALS = {
    "revoked": "This API token was revoked.",
    "expired": "This API token has expired; create a new one on your Preferences page.",
    "inactive": "The account this API token belongs to is disabled.",
}


@service(atomic=False)
def api_token_authenticate(
    *, key: str, method: str, path: str, now: datetime | None = None
) -> ApiToken:
    """Every use of a token: counted against its rate limit and audited by its id (never
    the token). A revoked or expired token is refused (audited); a token over its limit
    gets a 429 saying when to retry (the first refusal in each minute is audited)."""
    now = now or timezone.now()
    token, refusal = _record_use(key=key, method=method, path=path, now=now)
    if refusal == "unknown":
        raise Unauthenticated("The API token is not valid.")
    if refusal == "rate_limited":
        elapsed = (now - token.window_started_at).total_seconds()
        retry = max(1, math.ceil(RATE_WINDOW.total_seconds() - elapsed))
        raise RateLimited(
            f"Too many requests with token {token.display_id}: at most "
            f"{settings.API_RATE_LIMIT_PER_MINUTE} a minute. Retry in {retry} s.",
            retry_after=retry,
        )
    if refusal:
        audit_refusal(
            AuditInfo(
                user=token.user,
                action="api.token_refused",
                obj=token,
                details={"why": refusal, "method": method, "path": path[:300]},
            ),
            reason=REFUSALS[refusal],
        )
        raise Unauthenticated(REFUSALS[refusal])
    return token
