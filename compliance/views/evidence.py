"""The evidence pack of one change, for whoever may see the change (404 otherwise)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from changes import access as change_access
from changes.models import ChangeRequest
from compliance import services
from compliance.evidence.pack import build_pack
from portal.errors import Hidden


@login_required
@require_GET
def evidence_pack(request: HttpRequest, pk: int) -> HttpResponse:
    change = ChangeRequest.objects.filter(pk=pk).first()
    if change is None or not change_access.can_view_change(request.user, change):
        raise Hidden(
            "No such change.",
            user=request.user,
            action="evidence.hidden",
            object_type="changes.changerequest",
            object_id=pk,
        )
    filename, spool, manifest = build_pack(change, by=request.user)
    services.evidence_pack_record(change=change, by=request.user, manifest=manifest)
    response = FileResponse(
        spool, content_type="application/zip", as_attachment=True, filename=filename
    )
    response["Cache-Control"] = "no-store"
    return response
