"""Celery tasks: short wrappers that take ids and call services (imported for autodiscovery)."""

from annotations.tasks.augment import (  # noqa: F401
    adversarial_job_run,
    augmentation_job_run,
    judge_labels_run,
    seed_suggestion_run,
    uu_refine_run,
)
from annotations.tasks.exports import export_job_run  # noqa: F401
from annotations.tasks.imports import import_job_run  # noqa: F401
from annotations.tasks.jobs import jobs_sweep_stale  # noqa: F401
from annotations.tasks.rounds import training_round_run  # noqa: F401
