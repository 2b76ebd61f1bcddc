"""MFA on every request, not only at sign-in: a session that has not verified a device
reaches only the MFA pages (and sign-out) while the user's roles require MFA or the user
enrolled. It also tells the retention guard who is asking, for its audit row."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from compliance import retention
from compliance.mfa import policy


@cache
def _exempt_prefixes() -> tuple[str, ...]:
    return (
        "/" + settings.STATIC_URL.lstrip("/"),
        reverse("login"),
        reverse("logout"),
        reverse("compliance:mfa_verify"),
        reverse("compliance:mfa_enrol"),
        reverse("healthz"),
        "/favicon.ico",
        reverse("compliance:signing_key"),
    )


class MfaRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        authenticated = user is not None and user.is_authenticated
        token = retention.bind_actor(user if authenticated else None)
        try:
            if authenticated and not request.path.startswith(_exempt_prefixes()):
                step = policy.next_step(request)
                if step is not None:
                    return self._redirect(request, step)
            return self.get_response(request)
        finally:
            retention.unbind_actor(token)

    @staticmethod
    def _redirect(request, step: str) -> HttpResponse:
        name = "compliance:mfa_verify" if step == policy.VERIFY else "compliance:mfa_enrol"
        target = f"{reverse(name)}?{urlencode({'next': request.get_full_path()})}"
        if request.headers.get("HX-Request"):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return redirect(target)
