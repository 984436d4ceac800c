from django.contrib import admin

from annotations import models


@admin.register(models.Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "task", "created_at")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(models.Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "project", "role")
    list_filter = ("project", "role")


@admin.register(models.Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "split", "human_label", "excluded", "source")
    list_filter = ("project", "split", "human_label", "excluded")
    search_fields = ("external_id",)
    raw_id_fields = ("claimed_by",)
    show_full_result_count = False


@admin.register(models.Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    """Read-only: the label history is append-only, for superusers too.

    Labels are added through the labeling and review pages (which keep each item's derived
    label in step); no row is changed or deleted, and since Django's admin checks the delete
    permission of related rows, neither can an item or project that has labels be deleted here.
    """

    list_display = ("id", "item_id", "annotator", "role", "kind", "label", "created_at")
    list_filter = ("kind", "role", "label")
    raw_id_fields = ("item", "prediction")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(models.TrainingRound)
class TrainingRoundAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "number", "algorithm", "status", "created_at", "finished_at")
    list_filter = ("project", "status", "algorithm")


@admin.register(models.ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "training_round", "is_active", "threshold", "created_at")


@admin.register(models.Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ("id", "item_id", "training_round_id", "p_harmful", "pseudo_label", "agreement", "review_priority")
    raw_id_fields = ("item", "training_round")
    show_full_result_count = False


@admin.register(models.WeakLabel)
class WeakLabelAdmin(admin.ModelAdmin):
    list_display = ("id", "item_id", "source", "iteration", "label")
    raw_id_fields = ("item", "job")


@admin.register(models.BackgroundJob)
class BackgroundJobAdmin(admin.ModelAdmin):
    list_display = ("id", "project", "kind", "number", "status", "created_at")


@admin.register(models.AugmentedVariant)
class AugmentedVariantAdmin(admin.ModelAdmin):
    list_display = ("id", "item_id", "kind", "method", "status", "curation_reason")
    list_filter = ("kind", "method", "status")
    raw_id_fields = ("item", "job", "reviewer")


@admin.register(models.ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "scope", "expires_at", "created_at", "revoked_at")
    readonly_fields = ("key_hash", "prefix")
