from celery import shared_task


# No autoretry: the job is claimed once, and a failed import has already rolled back.
@shared_task(name="annotations.import_job_run", acks_late=True, soft_time_limit=3600, time_limit=3700)
def import_job_run(job_id: int) -> None:
    """Run an uploaded-file import job (no-op if already claimed or finished)."""
    from annotations.services.jobs import import_job_execute

    import_job_execute(job_id=job_id)
