"""REST API routes (``/api/``); names follow router conventions (``<resource>-list`` / ``-detail``)."""

from django.urls import path

from annotations.api.views import exports, projects, review, rounds, tokens

app_name = "annotations-api"

LIST = {"get": "list"}
DETAIL = {"get": "retrieve"}
P = "projects/<slug:slug>/"

urlpatterns = [
    path("projects/", projects.ProjectViewSet.as_view(LIST), name="projects-list"),
    path(P, projects.ProjectViewSet.as_view(DETAIL), name="projects-detail"),
    path(P + "items/", projects.ItemViewSet.as_view(LIST), name="items-list"),
    path(P + "items/<int:pk>/", projects.ItemViewSet.as_view(DETAIL), name="items-detail"),
    path(P + "items/<int:item_id>/annotations/", projects.AnnotationCreateApi.as_view(), name="annotation-create"),
    path(P + "annotations/undo/", projects.AnnotationUndoApi.as_view(), name="annotation-undo"),
    path(P + "seed-suggestions/start/", projects.SeedSuggestionStartApi.as_view(), name="seed-suggestion-start"),
    path(P + "rounds/", rounds.TrainingRoundViewSet.as_view(LIST), name="training-rounds-list"),
    path(P + "rounds/start/", rounds.TrainingRoundStartApi.as_view(), name="training-round-start"),
    path(P + "rounds/<int:pk>/", rounds.TrainingRoundViewSet.as_view(DETAIL), name="training-rounds-detail"),
    path(P + "rounds/<int:round_id>/cancel/", rounds.TrainingRoundCancelApi.as_view(), name="training-round-cancel"),
    path(P + "rounds/<int:round_id>/predictions/", review.PredictionViewSet.as_view(LIST), name="predictions-list"),
    path(
        P + "rounds/<int:round_id>/predictions/<int:pk>/",
        review.PredictionViewSet.as_view(DETAIL),
        name="predictions-detail",
    ),
    path(P + "predictions/<int:prediction_id>/review/", review.PredictionReviewApi.as_view(), name="prediction-review"),
    path(P + "variants/", review.VariantViewSet.as_view(LIST), name="variants-list"),
    path(P + "variants/<int:pk>/", review.VariantViewSet.as_view(DETAIL), name="variants-detail"),
    path(P + "variants/<int:variant_id>/approve/", review.VariantApproveApi.as_view(), name="variant-approve"),
    path(P + "variants/<int:variant_id>/reject/", review.VariantRejectApi.as_view(), name="variant-reject"),
    path(P + "model-versions/", rounds.ModelVersionViewSet.as_view(LIST), name="model-versions-list"),
    path(P + "model-versions/<int:pk>/", rounds.ModelVersionViewSet.as_view(DETAIL), name="model-versions-detail"),
    path(
        P + "model-versions/<int:version_id>/activate/",
        rounds.ModelVersionActivateApi.as_view(),
        name="model-version-activate",
    ),
    path(P + "exports/", exports.ExportJobViewSet.as_view(LIST), name="exports-list"),
    path(P + "exports/start/", exports.ExportStartApi.as_view(), name="export-start"),
    path(P + "exports/<int:pk>/", exports.ExportJobViewSet.as_view(DETAIL), name="exports-detail"),
    path(P + "exports/<int:job_id>/download/", exports.ExportDownloadApi.as_view(), name="export-download"),
    path("tokens/", tokens.ApiTokenViewSet.as_view(LIST), name="tokens-list"),
    path("tokens/create/", tokens.ApiTokenCreateApi.as_view(), name="token-create"),
    path("tokens/<int:pk>/", tokens.ApiTokenViewSet.as_view(DETAIL), name="tokens-detail"),
    path("tokens/<int:token_id>/revoke/", tokens.ApiTokenRevokeApi.as_view(), name="token-revoke"),
]
