from __future__ import annotations

import ipaddress
import logging
import re
import sys
import time
import uuid
import zoneinfo
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import resolve_url
from django.utils import timezone

from portal import context

logger = logging.getLogger(__name__)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def client_ip(request) -> str | None:
    """The client address: REMOTE_ADDR, or the hop PROXY_COUNT proxies before us."""
    candidate = request.META.get("REMOTE_ADDR", "")
    proxies = settings.AXES_IPWARE_PROXY_COUNT
    if proxies:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class RequestIdMiddleware:
    """Gives every request an id (kept from a sane X-Request-ID) for logs and audit rows."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        token = context.bind(
            context.RequestContext(request_id=request.request_id, ip_address=client_ip(request))
        )
        try:
            response = self.get_response(request)
        finally:
            context.unbind(token)
        response["X-Request-ID"] = request.request_id
        return response


class SessionTimeoutMiddleware:
    """Automatic logoff (HIPAA 164.312(a)(2)(iii)), enforced on the server.

    The session store keeps a session for the absolute limit; this checks both limits
    on every request, so a replayed cookie of an expired session never works, and the
    user is told why they were signed out and the logoff is audited.
    """

    AUTH_AT = "portal_auth_at"
    SEEN_AT = "portal_seen_at"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = timezone.now()
            auth_at = _read(request.session.get(self.AUTH_AT))
            seen_at = _read(request.session.get(self.SEEN_AT))
            reason = None
            if auth_at is None or now - auth_at > settings.SESSION_ABSOLUTE_TIMEOUT:
                reason = "Your session reached its maximum length. Please sign in again."
            elif seen_at is None or now - seen_at > settings.SESSION_IDLE_TIMEOUT:
                minutes = int(settings.SESSION_IDLE_TIMEOUT.total_seconds() // 60)
                reason = f"You were signed out after {minutes} minutes without activity."
            if reason:
                # Imported here: logging loads this module before the apps are ready.
                from django.contrib.auth.views import redirect_to_login

                from portal.services import session_expire

                session_expire(request=request, reason=reason)
                logout(request)
                messages.info(request, reason)
                login_url = resolve_url(settings.LOGIN_URL)
                if request.headers.get("HX-Request"):
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = login_url
                    return response
                return redirect_to_login(request.get_full_path(), login_url)
            request.session[self.SEEN_AT] = now.isoformat()
        return self.get_response(request)


def _read(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class TimezoneMiddleware:
    """Shows times in the viewer's zone (their preference), stored in UTC throughout."""

    SESSION_KEY = "portal_tz"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        tzname = None
        if request.user.is_authenticated:
            tzname = request.session.get(self.SESSION_KEY)
            if tzname is None:
                from portal.models import UserPreference

                pref = UserPreference.objects.filter(user=request.user).first()
                tzname = pref.timezone if pref else "UTC"
                request.session[self.SESSION_KEY] = tzname
        try:
            timezone.activate(zoneinfo.ZoneInfo(tzname or "UTC"))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(zoneinfo.ZoneInfo("UTC"))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


# --- the portal's own database is lost (restart, failover, a locked SQLite file) ---------

_DATABASE_ERROR = "_portal_database_error"


def database_lost(exc: BaseException | None) -> bool:
    """An error saying the database did not answer, not that the query was wrong."""
    from django.db import InterfaceError, OperationalError

    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    # SQLite files its schema errors (an unmigrated database) as OperationalError too;
    # those are bugs to see, not an outage to wait out.
    return not str(exc).startswith(("no such table", "no such column"))


def _note_database_error(sender, request=None, **kwargs) -> None:
    # Django turns an exception into a 500 response at the layer that raised it, so
    # the middleware around every layer sees only the response; this signal, sent while
    # the exception is being handled, is where its kind can still be told.
    exc = sys.exc_info()[1]
    if request is not None and database_lost(exc):
        setattr(request, _DATABASE_ERROR, f"{type(exc).__name__}: {exc}".strip()[:300])


class DatabaseUnavailableMiddleware:
    """Answers a lost database with a friendly 503 and Retry-After, never a traceback.

    A read (GET/HEAD) is tried once more after a short pause on fresh connections: a
    database restart or failover usually takes well under a second. A write is not
    retried: its transaction was rolled back (or, when only the session save after it
    failed, committed), and the page says to check before submitting again.
    """

    def __init__(self, get_response):
        from django.core.signals import got_request_exception

        self.get_response = get_response
        got_request_exception.connect(_note_database_error, dispatch_uid="portal_db_lost")

    def __call__(self, request):
        response = self.get_response(request)
        if not self._lost(request, response):
            return response
        if request.method in ("GET", "HEAD"):
            logger.warning("database unavailable (%s); reading once more", self._error(request))
            delattr(request, _DATABASE_ERROR)
            self._fresh_connections()
            time.sleep(settings.DATABASE_READ_RETRY_DELAY_MS / 1000)
            response = self.get_response(request)
            if not self._lost(request, response):
                return response
        logger.error("database unavailable (%s); answered 503", self._error(request))
        if settings.DEBUG:
            return response  # asked for tracebacks: keep Django's debug page
        return self.unavailable_response(request)

    @staticmethod
    def _lost(request, response) -> bool:
        return hasattr(request, _DATABASE_ERROR) and response.status_code >= 500

    @staticmethod
    def _error(request) -> str:
        return getattr(request, _DATABASE_ERROR, "")

    @staticmethod
    def _fresh_connections() -> None:
        from django.db import close_old_connections

        # Drops every connection that errored and no longer answers (CONN_HEALTH_CHECKS
        # does the same at the start of each request).
        close_old_connections()

    @staticmethod
    def unavailable_response(request) -> HttpResponse:
        from django.template.loader import render_to_string

        retry_after = settings.DATABASE_UNAVAILABLE_RETRY_AFTER
        # Rendered without the request: its context processors and user need the database.
        body = render_to_string(
            "503.html",
            {"retry_after": retry_after, "was_write": request.method not in ("GET", "HEAD")},
        )
        response = HttpResponse(body, status=503)
        response["Retry-After"] = str(retry_after)
        response["Cache-Control"] = "no-store"
        return response
