from django.urls import path

from annotations.views import augment as augment_views
from annotations.views import dashboard as dashboard_views
from annotations.views import explorer as explorer_views
from annotations.views import labeling as labeling_views
from annotations.views import project_admin, projects
from annotations.views import review as review_views
from annotations.views import rounds as round_views
from annotations.views import tokens as token_views
from annotations.views import variants as variant_views

app_name = "annotations"

urlpatterns = [
    path("", projects.home, name="home"),
    path("projects/new/", project_admin.project_new, name="project_new"),
    path("projects/guidelines-preview/", project_admin.guidelines_preview, name="guidelines_preview"),
    path("p/<slug:slug>/", projects.project_dashboard, name="project_dashboard"),
    path("p/<slug:slug>/settings/", project_admin.project_settings, name="project_settings"),
    path("p/<slug:slug>/members/", project_admin.project_member_save, name="project_member_save"),
    path(
        "p/<slug:slug>/members/<int:user_id>/remove/", project_admin.project_member_delete, name="project_member_delete"
    ),
    path("p/<slug:slug>/exports/", project_admin.project_exports, name="project_exports"),
    path("p/<slug:slug>/exports/start/", project_admin.project_export_start, name="project_export_start"),
    path(
        "p/<slug:slug>/exports/<int:job_id>/download/",
        project_admin.project_export_download,
        name="project_export_download",
    ),
    path("p/<slug:slug>/guidelines/", projects.project_guidelines, name="project_guidelines"),
    path("p/<slug:slug>/import/", projects.item_import, name="item_import"),
    path("p/<slug:slug>/import/jobs/", projects.import_jobs, name="import_jobs"),
    path("p/<slug:slug>/seeds/suggest/", projects.seed_suggestion_start_view, name="seed_suggestion_start"),
    path("p/<slug:slug>/rounds/", round_views.round_list, name="round_list"),
    path("p/<slug:slug>/rounds/start/", round_views.round_start, name="round_start"),
    path("p/<slug:slug>/rounds/<int:round_id>/", round_views.round_detail, name="round_detail"),
    path("p/<slug:slug>/rounds/<int:round_id>/cancel/", round_views.round_cancel, name="round_cancel"),
    path(
        "p/<slug:slug>/models/<int:version_id>/activate/",
        round_views.model_version_activate_view,
        name="model_version_activate",
    ),
    path("p/<slug:slug>/label/", labeling_views.labeling_next, name="labeling_next"),
    path("p/<slug:slug>/label/skip/", labeling_views.labeling_skip, name="labeling_skip"),
    path("p/<slug:slug>/label/undo/", labeling_views.labeling_undo, name="labeling_undo"),
    path("p/<slug:slug>/label/recent/", labeling_views.labeling_recent, name="labeling_recent"),
    path("p/<slug:slug>/review/", review_views.review_queue_page, name="review_queue"),
    path("p/<slug:slug>/review/undo/", review_views.prediction_review_undo, name="prediction_review_undo"),
    path("p/<slug:slug>/review/bulk/", review_views.prediction_review_bulk, name="prediction_review_bulk"),
    path("p/<slug:slug>/review/<int:pk>/", review_views.prediction_review_action, name="prediction_review"),
    path("p/<slug:slug>/review/<int:pk>/similar/", review_views.prediction_similar, name="prediction_similar"),
    path("p/<slug:slug>/items/", explorer_views.item_list, name="item_list"),
    path("p/<slug:slug>/items/<int:item_id>/", explorer_views.item_detail, name="item_detail"),
    path("p/<slug:slug>/items/<int:item_id>/similar/", explorer_views.item_similar, name="item_similar"),
    path("p/<slug:slug>/variants/", variant_views.variant_list, name="variant_list"),
    path("p/<slug:slug>/variants/<int:pk>/", variant_views.variant_review_action, name="variant_review"),
    path("p/<slug:slug>/stats/", dashboard_views.dashboard_stats, name="dashboard_stats"),
    path("p/<slug:slug>/augment/", augment_views.augment_page, name="augment_page"),
    path("p/<slug:slug>/augment/start/", augment_views.augment_start, name="augment_start"),
    path("p/<slug:slug>/augment/adversarial/", augment_views.adversarial_start, name="adversarial_start"),
    path("p/<slug:slug>/augment/judge/", augment_views.judge_labels_start, name="judge_labels_start"),
    path("p/<slug:slug>/augment/jobs/<int:job_id>/", augment_views.augment_job_detail, name="augment_job_detail"),
    path(
        "p/<slug:slug>/augment/jobs/<int:job_id>/resume/", augment_views.augment_job_resume, name="augment_job_resume"
    ),
    path(
        "p/<slug:slug>/augment/jobs/<int:job_id>/cancel/", augment_views.augment_job_cancel, name="augment_job_cancel"
    ),
    path(
        "p/<slug:slug>/augment/jobs/<int:job_id>/evaluate/",
        augment_views.adversarial_evaluate,
        name="adversarial_evaluate",
    ),
    path("p/<slug:slug>/refine/", augment_views.refine_page, name="refine_page"),
    path("p/<slug:slug>/refine/start/", augment_views.refine_start, name="refine_start"),
    path("p/<slug:slug>/refine/<int:job_id>/", augment_views.refine_detail, name="refine_detail"),
    path("p/<slug:slug>/refine/<int:job_id>/cancel/", augment_views.refine_cancel, name="refine_cancel"),
    path("tokens/", token_views.token_list, name="token_list"),
    path("tokens/<int:token_id>/revoke/", token_views.token_revoke, name="token_revoke"),
    path("p/<slug:slug>/tokens/", token_views.project_token_list, name="project_token_list"),
]
