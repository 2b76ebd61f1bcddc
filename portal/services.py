"""Writes of the core app. Each is atomic and audited in the same transaction."""

from __future__ import annotations

from portal.audit import audit_record
from portal.transactions import service


@service
def session_expire(*, request, reason: str) -> None:
    audit_record(
        action="auth.session_expired",
        user=request.user,
        obj=request.user,
        details={"reason": reason},
    )


@service
def worker_ping_record(*, token: str) -> int:
    """Proves a worker ran a task end to end: an audit row the caller can look for."""
    event = audit_record(
        action="worker.ping",
        object_type="worker",
        object_id=token[:64],
        details={"token": token[:64]},
    )
    return event.sequence


@service
def preference_set_timezone(*, user, tzname: str) -> None:
    import zoneinfo

    from portal.models import UserPreference

    if tzname not in zoneinfo.available_timezones():
        raise ValueError(f"Unknown time zone {tzname!r}.")
    pref, _ = UserPreference.objects.select_for_update().get_or_create(user=user)
    old = pref.timezone
    pref.timezone = tzname
    pref.save(update_fields=["timezone"])
    audit_record(
        action="user.timezone_set", user=user, obj=user, details={"from": old, "to": tzname}
    )
