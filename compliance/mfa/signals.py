"""At sign-in: remember whether the user has a device, and end the failure count of a
user who signs in without MFA (with MFA, the count ends once the code is verified)."""

from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from compliance.mfa import policy


@receiver(user_logged_in, dispatch_uid="compliance_mfa_login")
def _logged_in(sender, request, user, **kwargs) -> None:
    if request is None or not hasattr(request, "session"):
        return
    policy.remember(request.session, user)
    if request.session[policy.SESSION_KEY] == "none" and not policy.required(user):
        AxesProxyHandler.reset_attempts(username=user.get_username())
