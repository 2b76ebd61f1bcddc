"""The OpenAPI schema and its browsable docs (Swagger UI and Redoc, served from the
drf-spectacular-sidecar package: no CDN). The docs use the signed-in session."""

from __future__ import annotations

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required
from django.utils.decorators import method_decorator
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from api.permissions import ApiAccess


class SchemaView(SpectacularAPIView):
    """The schema, for whoever may use the API (a token or the session)."""

    permission_classes = [ApiAccess]


@method_decorator(login_required, name="get")
class SwaggerView(SpectacularSwaggerSplitView):
    # The page's own markup has no inline style or script (the CSP forbids both); its
    # start-up script is served from this same URL (``?script``).
    template_name = "api/swagger_ui.html"


@method_decorator(login_required, name="get")
@method_decorator(
    # Redoc styles its page with <style> elements it writes and reads the schema in a
    # worker; scripts stay 'self' only.
    csp_update({"style-src": [SELF, UNSAFE_INLINE], "worker-src": [SELF, "blob:"]}),
    name="get",
)
class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"
