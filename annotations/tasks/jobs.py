"""The stale-job sweep, for every kind of job: a beat task, and a run at each worker's start."""

from celery import shared_task
from celery.signals import worker_ready


@shared_task(name="annotations.jobs_sweep_stale", soft_time_limit=50, time_limit=60)
def jobs_sweep_stale() -> int:
    """End running jobs whose worker is gone (beat: every UMBRA_JOB_SWEEP_INTERVAL seconds)."""
    from annotations.services.jobs import jobs_sweep_stale as sweep

    return sweep()


@worker_ready.connect
def sweep_at_worker_start(sender=None, **kwargs) -> None:
    """A starting worker ends the jobs its previous life left running, and every stale one."""
    from annotations.services.jobs import jobs_sweep_at_worker_start

    jobs_sweep_at_worker_start(worker=getattr(sender, "hostname", "") or "")
