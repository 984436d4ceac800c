"""Training rounds (status, metrics; start, cancel) and model versions (list, activate)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.api.serializers import ModelVersionSerializer, TrainingRoundSerializer
from annotations.api.views.common import NewestCursorPagination, ProjectScopedMixin, query_params
from annotations.models import ModelVersion, Role, TrainingRound
from annotations.selectors.rounds import model_versions_for, rounds_for


class RoundFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=TrainingRound.Status.choices, required=False)


@extend_schema_view(list=extend_schema(parameters=[RoundFilter]))
class TrainingRoundViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Training rounds of a project, newest first, with status, progress and metrics."""

    serializer_class = TrainingRoundSerializer
    pagination_class = NewestCursorPagination
    queryset = TrainingRound.objects.none()

    def get_queryset(self):
        if self.action == "list":
            return rounds_for(project=self.project, limit=None, **query_params(RoundFilter, self.request))
        return rounds_for(project=self.project, limit=None)


class TrainingRoundStartApi(ProjectScopedMixin, APIView):
    """Queue a training round (admins); the worker runs it."""

    min_role = Role.ADMIN

    class InputSerializer(serializers.Serializer):
        algorithm = serializers.ChoiceField(choices=TrainingRound.Algorithm.choices)
        config = serializers.DictField(required=False, default=dict)
        seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**31 - 1)

    @extend_schema(request=InputSerializer, responses={201: TrainingRoundSerializer, 409: None, 503: None})
    def post(self, request, slug: str):
        from annotations.services.rounds import training_round_start

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        training_round = training_round_start(project=self.project, user=request.user, **data.validated_data)
        return Response(TrainingRoundSerializer(training_round).data, status=status.HTTP_201_CREATED)


class TrainingRoundCancelApi(ProjectScopedMixin, APIView):
    """Ask a queued or running round to stop (admins)."""

    min_role = Role.ADMIN

    @extend_schema(request=None, responses={200: TrainingRoundSerializer})
    def post(self, request, slug: str, round_id: int):
        from annotations.services.rounds import training_round_cancel

        training_round = get_object_or_404(TrainingRound, pk=round_id, project=self.project)
        training_round = training_round_cancel(training_round=training_round, user=request.user) or training_round
        training_round.refresh_from_db()
        return Response(TrainingRoundSerializer(training_round).data)


class ModelVersionViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Model versions of a project (one per succeeded round); ``is_active`` marks the served one."""

    serializer_class = ModelVersionSerializer
    pagination_class = NewestCursorPagination
    queryset = ModelVersion.objects.none()

    def get_queryset(self):
        return model_versions_for(project=self.project)


class ModelVersionActivateApi(ProjectScopedMixin, APIView):
    """Serve this model version for the project (admins). A model without an evaluation set, or trained
    on fewer human labels per class than the project's minimum, needs ``{"confirm": true}`` (409
    ``needs_confirmation`` otherwise, with the reasons)."""

    min_role = Role.ADMIN

    @extend_schema(request=None, responses={200: ModelVersionSerializer})
    def post(self, request, slug: str, version_id: int):
        from annotations.services.rounds import model_version_activate

        model_version = get_object_or_404(ModelVersion, pk=version_id, project=self.project)
        confirm = str(request.data.get("confirm", "")).lower() in ("1", "true") if hasattr(request, "data") else False
        model_version_activate(model_version=model_version, user=request.user, confirm=confirm)
        model_version.refresh_from_db()
        return Response(ModelVersionSerializer(model_version).data)
