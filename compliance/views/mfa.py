"""MFA pages: status, enrolment with a QR code, verification at sign-in, recovery codes."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from compliance.mfa import enrolment, policy, services
from compliance.mfa.forms import CodeForm
from compliance.mfa.qr import qr_svg
from compliance.models import RecoveryDevice
from portal.errors import Invalid


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def _context(request: HttpRequest, **extra) -> dict:
    user = request.user
    recovery = RecoveryDevice.objects.filter(user=user).first()
    return {
        "required": policy.required(user),
        "required_roles": settings.MFA_REQUIRED_ROLES,
        "production": settings.PRODUCTION,
        "devices": list(TOTPDevice.objects.filter(user=user, confirmed=True)),
        "recovery_left": recovery.remaining() if recovery else None,
        "verified": user.is_verified(),
        "next": _next(request),
        **extra,
    }


@login_required
@never_cache
def mfa_status(request: HttpRequest) -> HttpResponse:
    return render(request, "compliance/mfa_status.html", _context(request))


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def mfa_enrol(request: HttpRequest) -> HttpResponse:
    user = request.user
    if policy.has_device(user) and not user.is_verified():
        # Enrolling anew (a replaced phone) needs the current device first.
        return redirect(f"{reverse('compliance:mfa_verify')}?{urlencode({'next': request.path})}")
    form = CodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            codes = services.mfa_enrol(request=request, code=form.cleaned_data["otp_token"])
        except Invalid as exc:
            form.add_error("otp_token", exc.message)
            status = 400
        else:
            return render(
                request,
                "compliance/mfa_recovery_codes.html",
                _context(request, codes=codes, enrolled=True),
            )
    elif request.method == "POST":
        status = 400
    key = enrolment.pending_key(request.session)
    device = enrolment.pending_device(user, key)
    secret = device.config_url.split("secret=")[1].split("&")[0]
    return render(
        request,
        "compliance/mfa_enrol.html",
        _context(request, form=form, qr=qr_svg(device.config_url), secret=secret),
        status=status,
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def mfa_verify(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.is_verified():
        return redirect(_next(request))
    if not policy.has_device(user):
        # Reset by an administrator since sign-in: enrol again, or go on if not required.
        policy.remember(request.session, user)
        if policy.required(user):
            return redirect(
                f"{reverse('compliance:mfa_enrol')}?{urlencode({'next': _next(request)})}"
            )
        return redirect(_next(request))
    form = CodeForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST" and form.is_valid():
        result = services.mfa_verify(request=request, code=form.cleaned_data["otp_token"])
        if result.locked:
            return render(request, "registration/locked_out.html", status=429)
        if result.ok:
            if result.recovery_left is not None:
                messages.warning(
                    request,
                    f"Signed in with a recovery code; {result.recovery_left} left. "
                    "Renew them under Two-factor if you are running low.",
                )
            return redirect(_next(request))
        form.add_error("otp_token", "That code is not valid (or was already used). Try again.")
        status = 400
    elif request.method == "POST":
        status = 400
    return render(
        request, "compliance/mfa_verify.html", _context(request, form=form), status=status
    )


@login_required
@require_POST
def mfa_recovery_codes(request: HttpRequest) -> HttpResponse:
    codes = services.mfa_recovery_regenerate(request=request)
    return render(request, "compliance/mfa_recovery_codes.html", _context(request, codes=codes))
