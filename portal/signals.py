"""Authentication events are audited (HIPAA 164.312(b)). Django's auth signals are
the only hook for these, so this is the one place signals do a write."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from portal.audit import audit_record
from portal.middleware import SessionTimeoutMiddleware
from portal.models import AuditEvent


@receiver(user_logged_in, dispatch_uid="portal_audit_login")
def _logged_in(sender, request, user, **kwargs) -> None:
    now = timezone.now().isoformat()
    if request is not None and hasattr(request, "session"):
        request.session[SessionTimeoutMiddleware.AUTH_AT] = now
        request.session[SessionTimeoutMiddleware.SEEN_AT] = now
    with transaction.atomic():
        audit_record(action="auth.login", user=user, obj=user)


@receiver(user_login_failed, dispatch_uid="portal_audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the username is recorded; the attempted password never is.
    username = str((credentials or {}).get("username", ""))[:150]
    with transaction.atomic():
        audit_record(
            action="auth.login_failed",
            username=username,
            object_type="user",
            object_id=username[:64],
            outcome=AuditEvent.Outcome.FAILURE,
        )


@receiver(user_locked_out, dispatch_uid="portal_audit_lockout")
def _locked_out(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    with transaction.atomic():
        audit_record(
            action="auth.lockout",
            username=str(username or "")[:150],
            object_type="user",
            object_id=str(username or "")[:64],
            outcome=AuditEvent.Outcome.DENIED,
            details={"ip_address": ip_address},
        )


@receiver(user_logged_out, dispatch_uid="portal_audit_logout")
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is None:
        return
    with transaction.atomic():
        audit_record(action="auth.logout", user=user, obj=user)
