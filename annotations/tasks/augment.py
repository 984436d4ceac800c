"""Augmentation, adversarial-mining, LLM-judge and UU-refinement tasks: thin wrappers over services.

Jobs resume instead of retrying: a redelivered message (acks_late + a killed worker)
takes over a job whose heartbeat is stale, and rows already stored are skipped.
"""

from celery import shared_task
from django.db import OperationalError

JOB_SOFT_TIME_LIMIT = 6 * 3600
JOB_TIME_LIMIT = 6 * 3600 + 300
# Every job task: late ack (a killed worker's message is redelivered and the job resumed), retried on
# a lost database connection, bounded in time.
JOB_TASK_OPTIONS = {
    "bind": True,
    "acks_late": True,
    "autoretry_for": (OperationalError,),
    "retry_backoff": True,
    "max_retries": 3,
    "soft_time_limit": JOB_SOFT_TIME_LIMIT,
    "time_limit": JOB_TIME_LIMIT,
}


@shared_task(name="annotations.augmentation_job_run", **JOB_TASK_OPTIONS)
def augmentation_job_run(self, job_id: int) -> str:
    """Run or resume an augmentation job (no-op if another worker holds it or it is finished)."""
    from annotations.services.augmentation import augmentation_job_execute

    return augmentation_job_execute(job_id=job_id, worker=self.request.hostname or "")


@shared_task(name="annotations.adversarial_job_run", **JOB_TASK_OPTIONS)
def adversarial_job_run(self, job_id: int) -> str:
    """Run an adversarial-mining job (or a re-scoring of its confirmed hard examples)."""
    from annotations.services.adversarial import adversarial_job_execute

    return adversarial_job_execute(job_id=job_id, worker=self.request.hostname or "")


@shared_task(name="annotations.judge_labels_run", **JOB_TASK_OPTIONS)
def judge_labels_run(self, job_id: int) -> str:
    """Label items with an LLM judge (weak labels for UU refinement)."""
    from annotations.services.refinement import judge_labels_job_execute

    return judge_labels_job_execute(job_id=job_id, worker=self.request.hostname or "")


# No autoretry: the job is claimed once; a redelivered message finds it claimed and does nothing.
@shared_task(
    bind=True,
    name="annotations.uu_refine_run",
    acks_late=True,
    soft_time_limit=JOB_SOFT_TIME_LIMIT,
    time_limit=JOB_TIME_LIMIT,
)
def uu_refine_run(self, job_id: int) -> str:
    """Run a queued UU label-refinement job."""
    from annotations.services.refinement import uu_refine_execute

    return uu_refine_execute(job_id=job_id, worker=self.request.hostname or "")


@shared_task(name="annotations.seed_suggestion_run", **JOB_TASK_OPTIONS)
def seed_suggestion_run(self, job_id: int) -> str:
    """Suggest seed items from the unlabeled pool (no-op if already claimed or finished)."""
    from annotations.services.jobs import job_execute

    return job_execute(runner_name="seeds", job_id=job_id, worker=self.request.hostname or "")
