from __future__ import annotations

import zoneinfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from portal import dashboard, health, registry, selectors, services
from portal.middleware import TimezoneMiddleware
from portal.models import Notification, UserPreference


@login_required
def dashboard_view(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/dashboard.html", dashboard.dashboard_context(request))


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, report = health.health_report()
    return JsonResponse(report, status=200 if healthy else 503)


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    # Browsers ask for it on every first visit; "no content" beats a logged 404.
    response = HttpResponse(status=204)
    response["Cache-Control"] = "public, max-age=86400"
    return response


@login_required
def notifications_view(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "portal/notifications.html",
        {"notifications": selectors.notifications_for(request.user, limit=100)},
    )


@login_required
@require_POST
def notifications_mark_read(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        Notification.objects.filter(recipient=request.user, read_at__isnull=True).update(
            read_at=timezone.now()
        )
    return redirect("portal:notifications")


@login_required
def preferences_view(request: HttpRequest) -> HttpResponse:
    """The viewer's time zone: times are stored in UTC and shown in it."""
    zones = sorted(zoneinfo.available_timezones())
    current = getattr(UserPreference.objects.filter(user=request.user).first(), "timezone", "UTC")
    status = 200
    if request.method == "POST":
        tzname = request.POST.get("timezone", "")
        try:
            services.preference_set_timezone(user=request.user, tzname=tzname)
        except ValueError:
            messages.error(request, "Choose a time zone from the list.")
            status = 400
        else:
            request.session[TimezoneMiddleware.SESSION_KEY] = tzname
            messages.success(request, f"Times are now shown in {tzname}.")
            return redirect("portal:preferences")
    return render(
        request,
        "portal/preferences.html",
        {"zones": zones, "current": current, "panels": registry.preferences_panels(request)},
        status=status,
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The friendly 404 (``handler404``). It repeats a view's own sentence ("No such
    window.", the same whether the object is missing or hidden) but never a resolver's
    internals or a model's name from ``get_object_or_404``."""
    message = ""
    if isinstance(exception, Http404) and not isinstance(exception, Resolver404):
        text = exception.args[0] if exception.args else ""
        if isinstance(text, str) and "matches the given query" not in text:
            message = text
    return render(request, "404.html", {"message": message}, status=404)
