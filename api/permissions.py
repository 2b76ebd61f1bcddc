"""What a request may reach before the services decide: an authenticated user, and for a
token the scope the endpoint needs. Everything about the objects themselves (tenant
visibility, roles, separation of duties, state) is the services' and access modules'."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from api.models import ApiToken
from portal.errors import NotAllowed


def required_scope(request, view) -> str:
    """The view names it (``scope``, or ``scopes`` by method); reads need "read"."""
    scopes = getattr(view, "scopes", None) or {}
    if request.method in scopes:
        return scopes[request.method]
    if getattr(view, "scope", None):
        return view.scope
    return "read" if request.method in ("GET", "HEAD", "OPTIONS") else "write"


class ApiAccess(BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        token = request.auth
        if isinstance(token, ApiToken):
            needed = required_scope(request, view)
            if needed not in token.scopes:
                raise NotAllowed(
                    f"Token {token.display_id} lacks the “{needed}” scope this request needs.",
                    user=user,
                    action="api.scope_refused",
                    obj=token,
                    details={"method": request.method, "path": request.path[:300]},
                )
        return True
