"""Exports as background jobs (admins): start, poll, download the file."""

from __future__ import annotations

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.api.serializers import JobSerializer
from annotations.api.views.common import NewestCursorPagination, ProjectScopedMixin
from annotations.models import BackgroundJob, Role
from annotations.selectors.jobs import jobs_for
from annotations.services.label_exports import EXPORT_KINDS, PROVENANCES


class ExportJobViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Export jobs of a project with their status and, once finished, a download link (admins)."""

    serializer_class = JobSerializer
    pagination_class = NewestCursorPagination
    min_role = Role.ADMIN
    queryset = BackgroundJob.objects.none()

    def get_queryset(self):
        return jobs_for(project=self.project, kinds=[BackgroundJob.Kind.EXPORT])


class ExportStartApi(ProjectScopedMixin, APIView):
    """Start an export job: labels as JSONL, labels as a Hugging Face dataset (.tar.gz), or the active model."""

    min_role = Role.ADMIN

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=EXPORT_KINDS)
        include = serializers.ListField(
            child=serializers.ChoiceField(choices=PROVENANCES),
            required=False,
            default=list(PROVENANCES),
            allow_empty=False,
        )

    @extend_schema(request=InputSerializer, responses={202: JobSerializer})
    def post(self, request, slug: str):
        from annotations.services.label_exports import export_job_start

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = export_job_start(
            project=self.project,
            user=request.user,
            kind=data.validated_data["kind"],
            include=tuple(data.validated_data["include"]),
        )
        return Response(JobSerializer(job, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class ExportDownloadApi(ProjectScopedMixin, APIView):
    """Stream a finished export's file (admins)."""

    min_role = Role.ADMIN

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, slug: str, job_id: int):
        from annotations.services.label_exports import export_file_for

        job = get_object_or_404(BackgroundJob, pk=job_id, project=self.project, kind=BackgroundJob.Kind.EXPORT)
        path, filename = export_file_for(job=job)
        content_type = "application/x-ndjson" if filename.endswith(".jsonl") else "application/gzip"
        return FileResponse(open(path, "rb"), as_attachment=True, filename=filename, content_type=content_type)
