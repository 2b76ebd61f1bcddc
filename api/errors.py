"""The API's own refusals, beside ``portal.errors``: a request without a usable token
(401) and one over its token's rate limit (429)."""

from __future__ import annotations

from portal.errors import PortalError


class Unauthenticated(PortalError):
    status = 401


class RateLimited(PortalError):
    status = 429

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
