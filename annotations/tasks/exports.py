from celery import shared_task


# No autoretry: the job row is claimed once; a failed export is recorded and can be restarted.
@shared_task(bind=True, name="annotations.export_job_run", acks_late=True, soft_time_limit=3600, time_limit=3700)
def export_job_run(self, job_id: int) -> str:
    """Write a label or model export (no-op if already claimed or finished)."""
    from annotations.services.label_exports import export_job_execute

    return export_job_execute(job_id=job_id, worker=self.request.hostname or "")
