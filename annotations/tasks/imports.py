from celery import shared_task


# No autoretry: the job is claimed once, and a failed import has already rolled back.
@shared_task(bind=True, name="annotations.import_job_run", acks_late=True, soft_time_limit=3600, time_limit=3700)
def import_job_run(self, job_id: int) -> str:
    """Run an uploaded-file import job (no-op if already claimed or finished)."""
    from annotations.services.imports import import_job_execute

    return import_job_execute(job_id=job_id, worker=self.request.hostname or "")
