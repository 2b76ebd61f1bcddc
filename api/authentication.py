"""How the API knows who is asking: a bearer token (pipelines, scripts) or the signed-in
session (the browsable docs), whose unsafe requests need the CSRF token as pages do."""

from __future__ import annotations

from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)

from api import services
from api.errors import Unauthenticated


class ApiTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer cmp_…``. A request with no Authorization header falls
    through to the session; one with a bad token is refused, never treated as anonymous."""

    keyword = "bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        if parts[0].lower() != self.keyword.encode():
            raise Unauthenticated("Send the token as “Authorization: Bearer <token>”.")
        if len(parts) != 2:
            raise Unauthenticated("The Authorization header must be “Bearer <token>”.")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise Unauthenticated("The API token is not valid.") from None
        if len(key) > 200:
            raise Unauthenticated("The API token is not valid.")
        token = services.api_token_authenticate(
            key=key, method=request.method, path=request.get_full_path()
        )
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class PortalSessionAuthentication(SessionAuthentication):
    """The signed-in browser session, with Django's CSRF check on unsafe methods."""
