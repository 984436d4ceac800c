"""Predictions of succeeded rounds and augmented variants, with their review actions (reviewers)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from annotations.api.serializers import AnnotationSerializer, PredictionSerializer, VariantSerializer
from annotations.api.views.common import PriorityCursorPagination, ProjectScopedMixin, query_params
from annotations.models import AugmentedVariant, Label, Prediction, Role, TrainingRound
from annotations.selectors.predictions import prediction_in_project, predictions_for
from annotations.selectors.rounds import round_get
from annotations.selectors.variants import VariantFilters, variant_queue


class PredictionFilter(serializers.Serializer):
    agreement = serializers.ChoiceField(
        choices=Prediction.Agreement.choices, required=False, allow_blank=True, default=None, allow_null=True
    )
    min_priority = serializers.FloatField(required=False)
    pseudo_label = serializers.ChoiceField(choices=Label.choices, required=False)


@extend_schema_view(list=extend_schema(parameters=[PredictionFilter]))
class PredictionViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Predictions of one succeeded round, highest review priority first (reviewers).

    Annotators do not see model outputs, so their own labels are not anchored by them.
    """

    serializer_class = PredictionSerializer
    pagination_class = PriorityCursorPagination
    min_role = Role.REVIEWER
    queryset = Prediction.objects.none()

    def get_queryset(self):
        training_round = round_get(
            project=self.project, round_id=self.kwargs["round_id"], status=TrainingRound.Status.SUCCEEDED
        )
        if training_round is None:
            raise Http404("No succeeded round with this id in the project.")
        if self.action == "list":
            params = query_params(PredictionFilter, self.request)
            if "agreement" in self.request.query_params and "agreement" not in params:
                params["agreement"] = ""  # ?agreement= selects single-head predictions
            return predictions_for(training_round=training_round, **params)
        return predictions_for(training_round=training_round)


class PredictionReviewApi(ProjectScopedMixin, APIView):
    """Approve, correct (flip) or reject a pseudo-label (reviewers)."""

    min_role = Role.REVIEWER

    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["approve", "correct", "reject"])
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
        client_token = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)

    @extend_schema(request=InputSerializer, responses={201: AnnotationSerializer})
    def post(self, request, slug: str, prediction_id: int):
        from annotations.services.labels import prediction_review

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prediction = prediction_in_project(project=self.project, prediction_id=prediction_id)
        if prediction is None:
            raise Http404("No reviewable prediction with this id in the project.")
        annotation = prediction_review(prediction=prediction, user=request.user, role=self.role, **data.validated_data)
        return Response(AnnotationSerializer(annotation).data, status=201)


class VariantFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=AugmentedVariant.Status.choices, required=False)
    kind = serializers.ChoiceField(choices=AugmentedVariant.Kind.choices, required=False)
    loss_flagged = serializers.BooleanField(required=False, help_text="Only variants a round's loss check flagged.")


@extend_schema_view(list=extend_schema(parameters=[VariantFilter]))
class VariantViewSet(ProjectScopedMixin, viewsets.ReadOnlyModelViewSet):
    """Augmented and adversarial variants, highest review priority first (reviewers)."""

    serializer_class = VariantSerializer
    pagination_class = PriorityCursorPagination
    min_role = Role.REVIEWER
    queryset = AugmentedVariant.objects.none()

    def get_queryset(self):
        if self.action == "list":
            f = query_params(VariantFilter, self.request)
            return variant_queue(
                project=self.project,
                filters=VariantFilters(
                    status=f.get("status", ""), kind=f.get("kind", ""), loss_flagged=f.get("loss_flagged", False)
                ),
            )
        return variant_queue(project=self.project, filters=VariantFilters(status=""))


class _VariantReviewApi(ProjectScopedMixin, APIView):
    min_role = Role.REVIEWER
    action_name = ""

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)

    def post(self, request, slug: str, variant_id: int):
        from annotations.services.variants import variant_review

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        variant = get_object_or_404(AugmentedVariant, pk=variant_id, item__project=self.project)
        variant = (
            variant_review(
                variant=variant, user=request.user, action=self.action_name, reason=data.validated_data["reason"]
            )
            or variant
        )
        variant.refresh_from_db()
        return Response(VariantSerializer(variant).data)


@extend_schema(request=_VariantReviewApi.InputSerializer, responses={200: VariantSerializer})
class VariantApproveApi(_VariantReviewApi):
    """Approve a variant for training (reviewers)."""

    action_name = "approve"


@extend_schema(request=_VariantReviewApi.InputSerializer, responses={200: VariantSerializer})
class VariantRejectApi(_VariantReviewApi):
    """Reject a variant, with an optional reason code (reviewers)."""

    action_name = "reject"
