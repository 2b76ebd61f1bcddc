"""Background exports over the API: start one (the change register or, for Compliance,
the audit trail, with the pages' filters), poll it, download its file. The same
exporter contract and services as the Reports page; a job is its requester's alone."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from api.views.common import hidden, valid
from compliance import services
from compliance.exporters import EXPORTERS, FORMATS
from compliance.models import ExportJob, JobStatus
from portal.errors import Conflict


class ExportRequestSerializer(serializers.Serializer):
    exporter = serializers.ChoiceField(choices=sorted(EXPORTERS))
    format = serializers.ChoiceField(choices=sorted(FORMATS))
    filters = serializers.DictField(
        child=serializers.JSONField(),
        required=False,
        help_text='The page\'s filters, e.g. {"state": "approved", "tenant": 3}; a list '
        "for a filter taking several values.",
    )

    def validate_filters(self, value: dict) -> QueryDict:
        data = QueryDict(mutable=True)
        for key, raw in list(value.items())[:40]:
            values = raw if isinstance(raw, list) else [raw]
            if not all(isinstance(v, (str, int, bool)) and not isinstance(v, dict) for v in values):
                raise serializers.ValidationError(f"{key}: give a text, a number or a list.")
            data.setlist(str(key)[:100], [str(v)[:500] for v in values[:20]])
        return data


class ExportJobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "exporter",
            "format",
            "params",
            "status",
            "rows_total",
            "rows_done",
            "percent",
            "filename",
            "size",
            "sha256",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "download",
        ]
        read_only_fields = fields

    def get_download(self, job: ExportJob) -> str | None:
        if job.status != JobStatus.DONE:
            return None
        return self.context["request"].build_absolute_uri(f"/api/exports/{job.pk}/download/")


def get_job(request, pk: int) -> ExportJob:
    job = ExportJob.objects.filter(pk=pk, requested_by=request.user).first()
    if job is None:
        raise hidden(request, "export", "compliance.exportjob", pk, action="export.hidden")
    return job


class ExportListView(GenericAPIView):
    serializer_class = ExportJobSerializer
    scope = "read"  # taking data out is a read; the job row is bookkeeping

    @extend_schema(
        operation_id="exports_create",
        summary="Start a background export (poll it, then download its file)",
        request=ExportRequestSerializer,
        responses={202: ExportJobSerializer},
    )
    def post(self, request):
        data = valid(ExportRequestSerializer, request)
        job = services.export_job_create(
            by=request.user,
            identifier=data["exporter"],
            fmt=data["format"],
            data=data.get("filters") or QueryDict(),
        )
        return Response(
            ExportJobSerializer(job, context={"request": request}).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/exports/{job.pk}/"},
        )


class ExportDetailView(GenericAPIView):
    serializer_class = ExportJobSerializer

    @extend_schema(operation_id="exports_retrieve", summary="An export's progress")
    def get(self, request, pk: int):
        job = get_job(request, pk)
        return Response(ExportJobSerializer(job, context={"request": request}).data)


class _FileRenderer(BaseRenderer):
    """Lets a client ask for the file's own type; errors are still JSON problems."""

    charset = None
    format = "file"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


class CsvRenderer(_FileRenderer):
    media_type = "text/csv"


class XlsxRenderer(_FileRenderer):
    media_type = FORMATS["xlsx"]


class ExportDownloadView(GenericAPIView):
    renderer_classes = [JSONRenderer, CsvRenderer, XlsxRenderer]

    @extend_schema(
        operation_id="exports_download",
        summary="The export's file, once it is done (409 before)",
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY),
            (200, FORMATS["xlsx"]): OpenApiResponse(OpenApiTypes.BINARY),
            409: OpenApiResponse(description="The export is not done yet: poll it first."),
        },
    )
    def get(self, request, pk: int):
        job = get_job(request, pk)
        if job.status != JobStatus.DONE or not job.file:
            raise Conflict("This export is not ready yet; poll it until its status is DONE.")
        services.export_job_download_record(job=job, by=request.user)
        response = FileResponse(
            default_storage.open(job.file.name, "rb"), content_type=job.content_type
        )
        response["Content-Disposition"] = f'attachment; filename="{job.filename}"'
        response["Cache-Control"] = "no-store"
        return response
