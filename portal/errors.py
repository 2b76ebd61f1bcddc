"""The one error hierarchy every service raises; views turn it into a clear 4xx.

``Refusal`` and its subclasses are refusals of a person's request (403). They cannot be
raised without saying who was refused what: the constructor demands the user and the
action, and the service boundary (``portal.transactions.service``) or, failing that, the
one view helper (``portal.http.refused``) writes the DENIED audit row once the refused
transaction has rolled back. Other errors may carry the same audit information when a
refusal of input is itself evidence (a scheduling refusal, for instance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import Http404


@dataclass
class AuditInfo:
    """What the DENIED row says: who, which action, on what, why."""

    user: Any
    action: str
    obj: Any = None
    role: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class PortalError(Exception):
    """Base: a refused operation. ``status`` is the HTTP status to answer."""

    status = 400

    def __init__(self, message: str, *, audit: AuditInfo | None = None):
        super().__init__(message)
        self.message = message
        self.audit = audit
        self.audited = False


class Invalid(PortalError):
    """Bad input a form could not catch (400)."""

    status = 400

    @classmethod
    def from_form(cls, form) -> Invalid:
        """A posted form that did not validate, its messages in one sentence."""
        return cls(" ".join(m for errors in form.errors.values() for m in errors))


class Conflict(PortalError):
    """The object changed since the form was loaded, or is in the wrong state (409)."""

    status = 409


class Unavailable(PortalError):
    """A system the portal works on could not be reached (a database target, 503)."""

    status = 503


class Refusal(PortalError):
    """The user may see the object but may not do this (403), always audited."""

    status = 403

    def __init__(
        self,
        message: str,
        *,
        user: Any,
        action: str,
        obj: Any = None,
        role: str = "",
        details: dict[str, Any] | None = None,
    ):
        super().__init__(
            message,
            audit=AuditInfo(
                user=user, action=action, obj=obj, role=role, details=dict(details or {})
            ),
        )


class NotAllowed(Refusal):
    """Refused by a permission rule."""


class SeparationOfDuties(NotAllowed):
    """Refused by a separation-of-duties rule."""


class Hidden(Http404):
    """An object the user may not see: answered like a missing one (404), but the
    attempt is audited, because asking for it is itself a refusal."""

    def __init__(self, message: str, *, user: Any, action: str, object_type: str, object_id):
        super().__init__(message)
        self.audit = AuditInfo(
            user=user,
            action=action,
            details={"object_type": object_type, "object_id": str(object_id)},
        )
