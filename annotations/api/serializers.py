"""Output shapes shared by several API views (read-only: serializers never save models)."""

from __future__ import annotations

from rest_framework import serializers

from annotations.models import (
    Annotation,
    ApiToken,
    AugmentedVariant,
    BackgroundJob,
    Item,
    ModelVersion,
    Prediction,
    Project,
    TrainingRound,
)


class ProjectSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["slug", "name", "task", "categories", "annotations_per_item", "created_at", "role"]
        read_only_fields = fields

    def get_role(self, obj) -> str | None:
        from annotations.permissions import role_in

        request = self.context.get("request")
        return role_in(request.user, obj) if request else None


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = [
            "id",
            "text",
            "prompt",
            "split",
            "bench_name",
            "source",
            "external_id",
            "human_label",
            "human_category",
            "excluded",
            "annotation_count",
            "created_at",
        ]
        read_only_fields = fields


class AnnotationSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", read_only=True)

    class Meta:
        model = Annotation
        fields = [
            "id",
            "item",
            "annotator",
            "role",
            "kind",
            "label",
            "category",
            "note",
            "prediction",
            "client_token",
            "created_at",
        ]
        read_only_fields = fields


class PredictionSerializer(serializers.ModelSerializer):
    item = ItemSerializer(read_only=True)
    round = serializers.IntegerField(source="training_round_id", read_only=True)
    head_probs = serializers.ListField(child=serializers.FloatField(), read_only=True)
    margin_history = serializers.ListField(child=serializers.FloatField(), read_only=True)

    class Meta:
        model = Prediction
        fields = [
            "id",
            "round",
            "item",
            "p_harmful",
            "head_probs",
            "pseudo_label",
            "used",
            "weight",
            "agreement",
            "margin_history",
            "review_priority",
            "review_reason",
        ]
        read_only_fields = fields


class VariantSerializer(serializers.ModelSerializer):
    item_id = serializers.IntegerField(read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", read_only=True, default=None)

    class Meta:
        model = AugmentedVariant
        fields = [
            "id",
            "item_id",
            "kind",
            "method",
            "provider",
            "model_name",
            "prompt_version",
            "variant_index",
            "text",
            "status",
            "curation_reason",
            "curation",
            "model_score",
            "review_priority",
            "reviewer",
            "reviewed_at",
            "reject_reason",
            "created_at",
        ]
        read_only_fields = fields


class TrainingRoundSerializer(serializers.ModelSerializer):
    started_by = serializers.CharField(source="started_by.username", read_only=True, default=None)
    model_version = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    number = serializers.IntegerField(read_only=True, help_text="The round's number within its project (1, 2, …).")

    class Meta:
        model = TrainingRound
        fields = [
            "id",
            "number",
            "algorithm",
            "config",
            "seed",
            "status",
            "started_by",
            "created_at",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "cancel_requested",
            "progress",
            "error",
            "n_labeled",
            "n_unlabeled",
            "metrics",
            "duration_seconds",
            "model_version",
        ]
        read_only_fields = fields

    def get_model_version(self, obj) -> int | None:
        mv = getattr(obj, "model_version", None) if hasattr(obj, "model_version") else None
        return mv.pk if mv else None


class ModelVersionSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True, help_text="<project-slug>-v<n>: a project's first model is -v1.")
    number = serializers.IntegerField(read_only=True)
    round = serializers.IntegerField(source="training_round_id", read_only=True)

    class Meta:
        model = ModelVersion
        fields = ["id", "number", "name", "round", "threshold", "metrics", "is_active", "created_at"]
        read_only_fields = fields


class ApiTokenSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "user",
            "created_by",
            "scope",
            "expires_at",
            "created_at",
            "last_used_at",
            "revoked_at",
            "is_active",
        ]
        read_only_fields = fields

    def get_is_active(self, obj) -> bool:
        return obj.revoked_at is None and not obj.is_expired()


class JobSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    number = serializers.IntegerField(read_only=True, help_text="The job's number within its project and kind.")

    class Meta:
        model = BackgroundJob
        fields = [
            "id",
            "number",
            "kind",
            "status",
            "params",
            "progress",
            "result",
            "error",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, obj) -> str | None:
        if obj.status != BackgroundJob.Status.SUCCEEDED or not obj.result.get("file"):
            return None
        from django.urls import reverse

        url = reverse("annotations-api:export-download", kwargs={"slug": obj.project.slug, "job_id": obj.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url
