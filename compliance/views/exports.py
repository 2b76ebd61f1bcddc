"""Downloads (streamed) and background export jobs; one exporter contract behind both."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from compliance import selectors, services
from compliance.exporters import exporter_for
from compliance.models import ExportJob, JobStatus
from portal.errors import Conflict, Hidden, PortalError
from portal.http import Link, refused


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
@require_GET
def export_download(request: HttpRequest, identifier: str, fmt: str) -> HttpResponse:
    """The change register (everyone, as on /changes/) or the audit trail (Compliance),
    streamed row by row."""
    try:
        exporter = exporter_for(identifier=identifier, user=request.user, data=request.GET)
        export = exporter.render(fmt)
        services.export_download_record(
            exporter=exporter, fmt=fmt, by=request.user, data=request.GET
        )
    except PortalError as exc:
        back = Link("/reports/" if identifier == "audit" else "/changes/", "Back")
        return refused(request, exc, back=back)
    response = StreamingHttpResponse(export.stream, content_type=export.content_type)
    return _attachment(response, export.filename)


def _job_for(request: HttpRequest, pk: int) -> ExportJob:
    """A job is its requester's alone: anyone else gets the 404 of a missing one."""
    job = ExportJob.objects.filter(pk=pk, requested_by=request.user).first()
    if job is None:
        raise Hidden(
            "No such export.",
            user=request.user,
            action="export.hidden",
            object_type="compliance.exportjob",
            object_id=pk,
        )
    return job


@login_required
@require_POST
def export_job_create(request: HttpRequest) -> HttpResponse:
    # The filters come in the form (the register) or in the query string (the audit
    # trail's current filters); the form wins.
    data = request.POST.copy()
    for key in request.GET:
        if key not in data:
            data.setlist(key, request.GET.getlist(key))
    try:
        job = services.export_job_create(
            by=request.user,
            identifier=data.get("exporter", ""),
            fmt=data.get("format", ""),
            data=data,
        )
    except PortalError as exc:
        return refused(request, exc, back=Link("/reports/", "Back to Reports"))
    if request.htmx:
        return render(request, "compliance/_export_job.html", {"job": job})
    return redirect(job.get_absolute_url())


@login_required
@require_GET
@never_cache
def export_job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_for(request, pk)
    template = "compliance/_export_job.html" if request.htmx else "compliance/export_job.html"
    return render(request, template, {"job": job, "jobs": selectors.my_export_jobs(request.user)})


@login_required
@require_GET
def export_job_download(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_for(request, pk)
    if job.status != JobStatus.DONE or not job.file:
        return refused(
            request,
            Conflict("This export is not ready yet."),
            back=Link(job.get_absolute_url(), "Back to the export"),
        )
    services.export_job_download_record(job=job, by=request.user)
    handle = default_storage.open(job.file.name, "rb")
    response = FileResponse(handle, content_type=job.content_type)
    return _attachment(response, job.filename)
