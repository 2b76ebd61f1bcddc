"""The one way a refusal reaches a person: a page (or an htmx fragment) saying why.

Views catch ``PortalError`` from services and return ``refused(...)``; anything that
escapes a view is caught by ``RefusalMiddleware``, which also audits the 403s that views
raise themselves (``PermissionDenied``) and the hidden objects they answer with 404
(``portal.errors.Hidden``), so no refusal goes unrecorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from portal.errors import AuditInfo, Hidden, PortalError
from portal.transactions import audit_refusal

logger = logging.getLogger("portal.refusals")


@dataclass(frozen=True)
class Link:
    url: str
    label: str


_URL_SENTINEL = 987654321


def url_for_pk(viewname: str) -> Callable[[int], str]:
    """``reverse(viewname, kwargs={"pk": pk})`` for many pks, reversed once: the feed,
    the calendar and the change list link hundreds or thousands of objects."""
    head, tail = reverse(viewname, kwargs={"pk": _URL_SENTINEL}).split(str(_URL_SENTINEL))
    return lambda pk: f"{head}{pk}{tail}"


def back_to(obj, label: str = "") -> Link:
    """A "Back to …" link for an object with ``get_absolute_url``."""
    name = label or getattr(obj, "public_id", None) or getattr(obj, "label", None) or str(obj)
    return Link(url=obj.get_absolute_url(), label=f"Back to {name}")


def refused(
    request: HttpRequest, exc: PortalError, *, back: list[Link] | Link | None = None
) -> HttpResponse:
    """Render a refusal with its status; audit it if the service boundary did not."""
    audit_refusal(exc)
    links = [back] if isinstance(back, Link) else list(back or [])
    if getattr(request, "htmx", False):
        return render(request, "portal/_refused.html", {"error": exc.message}, status=exc.status)
    return render(
        request,
        "portal/refused.html",
        {"error": exc.message, "back_links": links},
        status=exc.status,
    )


class RefusalMiddleware:
    """Turns an escaped PortalError into the refusal page and audits view-level refusals."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, PortalError):
            return refused(request, exception)
        user = getattr(request, "user", None)
        if isinstance(exception, Hidden):
            audit_refusal(exception.audit, reason=f"{request.method} {request.path}")
            return None  # Django answers 404 as for anything missing
        if isinstance(exception, PermissionDenied) and user is not None:
            audit_refusal(
                AuditInfo(
                    user=user,
                    action="access.denied",
                    details={"method": request.method, "path": request.path[:300]},
                ),
                reason=str(exception) or "Forbidden",
            )
        return None
