"""Where transactions begin, and where refusals are audited.

Every service function is decorated with ``@service``. Called from an entry point (a
view, a task, a command) it is the transaction: ``atomic(durable=True)``, so accidental
nesting fails loudly. Called from another service it joins that one's transaction
(``atomic()``), so services compose: a proposal that drafts a change, stores its
suggestion and attaches its procedure is one transaction, and a failure in its last
step leaves nothing behind. An entry point that runs several services as one unit
wraps them in ``entry()``.

A ``PortalError`` carrying audit information (every ``Refusal`` does) that leaves the
outermost boundary is written to the audit trail as DENIED after the refused
transaction has rolled back, in a transaction of its own, exactly once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from django.db import transaction

from portal.errors import AuditInfo, PortalError

P = ParamSpec("P")
R = TypeVar("R")


def in_service_transaction() -> bool:
    """Whether an atomic block other than a test case's wraps the current code."""
    blocks = transaction.get_connection().atomic_blocks
    return bool(blocks) and not blocks[-1]._from_testcase


def audit_refusal(exc: PortalError | AuditInfo, *, reason: str = "") -> None:
    """Write the DENIED row for a refusal once; safe to call again for the same one."""
    from portal.audit import audit_record
    from portal.models import AuditEvent

    if isinstance(exc, PortalError):
        if exc.audit is None or exc.audited:
            return
        info, reason = exc.audit, exc.message
        exc.audited = True
    else:
        info = exc
    details = {"reason": reason, **info.details}
    object_type = str(details.pop("object_type", "") or "")
    object_id = str(details.pop("object_id", "") or "")
    with transaction.atomic():
        audit_record(
            action=info.action,
            user=info.user,
            role=info.role,
            obj=info.obj,
            object_type=object_type,
            object_id=object_id,
            outcome=AuditEvent.Outcome.DENIED,
            details=details,
        )


@contextmanager
def entry() -> Iterator[None]:
    """One durable transaction around several services; audits a refusal after it."""
    try:
        with transaction.atomic(durable=True):
            yield
    except PortalError as exc:
        audit_refusal(exc)
        raise


def service(fn: Callable[P, R] | None = None, *, atomic: bool = True):
    """Make ``fn`` a service: its own durable transaction at an entry point, a part of
    the caller's transaction when nested; refusals audited at the outermost boundary.

    ``atomic=False`` is for the few services that manage their own transactions (a loop
    that commits item by item, a step that must not hold a transaction open)."""

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            outermost = not in_service_transaction()
            try:
                if not atomic:
                    return fn(*args, **kwargs)
                with transaction.atomic(durable=outermost):
                    return fn(*args, **kwargs)
            except PortalError as exc:
                if outermost:
                    audit_refusal(exc)
                raise

        wrapper.portal_service = True  # type: ignore[attr-defined]
        return wrapper

    return decorate(fn) if fn is not None else decorate
