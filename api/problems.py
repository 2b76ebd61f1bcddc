"""Every API error as an RFC 9457 problem details object (``application/problem+json``).

The services' refusals (``portal.errors``) keep their status and their sentence, and are
audited exactly as a page's are: a ``Refusal`` that left its service was written there,
one raised here is written now, a hidden object's 404 and a view's own 403 are written
as the middleware writes them for pages. DRF's own errors (bad input, authentication,
method, media type) get the same shape, with the fields' messages under ``errors``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from api.errors import RateLimited
from portal.errors import AuditInfo, Hidden, PortalError
from portal.transactions import audit_refusal

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "urn:portal:problem:"
TITLES = {
    400: ("invalid", "The request is not valid"),
    401: ("not-authenticated", "Authentication is needed"),
    403: ("not-allowed", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict with the current state"),
    415: ("unsupported-media-type", "Unsupported media type"),
    423: ("gate-closed", "The deployment gate is closed"),
    429: ("rate-limited", "Too many requests"),
    503: ("unavailable", "A system the portal works on is unavailable"),
}


def problem(
    status_code: int,
    detail: str,
    *,
    request=None,
    kind: str = "",
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    slug, title = TITLES.get(status_code, ("error", "Error"))
    body: dict[str, Any] = {
        "type": TYPE_BASE + (kind or slug),
        "title": title,
        "status": status_code,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.path
    body.update(extra or {})
    return Response(body, status=status_code, headers=headers, content_type=CONTENT_TYPE)


def _portal_kind(exc: PortalError) -> str:
    name = type(exc).__name__
    return {
        "SeparationOfDuties": "separation-of-duties",
        "Conflict": "conflict",
        "RateLimited": "rate-limited",
        "Unauthenticated": "not-authenticated",
    }.get(name, "")


def _flatten(detail) -> dict[str, list[str]] | list[str] | str:
    if isinstance(detail, dict):
        return {str(k): _flatten(v) for k, v in detail.items()}
    if isinstance(detail, list):
        flat = [_flatten(v) for v in detail]
        return flat if any(isinstance(v, (dict, list)) for v in flat) else [str(v) for v in flat]
    return str(detail)


def _first_message(errors) -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            message = _first_message(value)
            return message if key == "non_field_errors" else f"{key}: {message}"
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return str(errors)


def exception_handler(exc, context) -> Response | None:
    request = context.get("request")
    if isinstance(exc, PortalError):
        audit_refusal(exc)
        headers = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return problem(
            exc.status, exc.message, request=request, kind=_portal_kind(exc), headers=headers
        )
    if isinstance(exc, Hidden):
        audit_refusal(exc.audit, reason=f"{request.method} {request.path}" if request else "")
        return problem(404, str(exc), request=request)
    if isinstance(exc, Http404):
        return problem(404, str(exc) or "Not found.", request=request)
    if isinstance(exc, (DjangoPermissionDenied, exceptions.PermissionDenied)):
        user = getattr(request, "user", None)
        message = str(exc) or "You may not do this."
        if getattr(exc, "detail", None):
            message = str(exc.detail)
        if user is not None and user.is_authenticated:
            audit_refusal(
                AuditInfo(
                    user=user,
                    action="access.denied",
                    details={"method": request.method, "path": request.path[:300]},
                ),
                reason=message,
            )
        return problem(403, message, request=request)
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        return problem(
            400,
            _first_message(errors) or "The request is not valid.",
            request=request,
            extra={"errors": errors if isinstance(errors, dict) else {"non_field_errors": errors}},
        )
    if isinstance(exc, exceptions.APIException):
        headers = {}
        code = exc.status_code
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            code = status.HTTP_401_UNAUTHORIZED
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        if isinstance(exc, exceptions.Throttled) and exc.wait:
            headers["Retry-After"] = str(int(exc.wait))
        detail = exc.detail if isinstance(exc.detail, str) else _first_message(_flatten(exc.detail))
        return problem(code, str(detail), request=request, headers=headers)
    return None
