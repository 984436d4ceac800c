"""One job system for all background work: training rounds, imports, exports, augmentation, mining, judging, refinement.

Shape (NetBox's ``JobRunner``, keeping what Umbra did better): a job is a row of a
``Job`` model (``TrainingRound`` or ``BackgroundJob``); one ``JobRunner`` subclass per
kind implements only ``run()`` (and, where needed, ``commit()`` and ``cleanup()``);
everything else lives here and is the same for every kind:

- ``job_create`` numbers the job within its project (and kind) and saves it;
- ``job_enqueue`` sends its message after the commit; with the broker down it marks the
  job failed with the reason, runs the runner's cleanup and raises ``Unavailable`` (JSON
  503 from the API, a page message from the HTML views);
- ``job_claim`` flips queued -> running in one conditional UPDATE with a fresh claim
  token (optionally taking over a running job whose heartbeat is stale), so a second
  delivery of the same message does nothing;
- ``JobProgress`` writes throttled progress (with an ETA) and the heartbeat, and stops the
  work (``JobCancelled`` / ``JobLost``) when an admin cancelled or the claim was lost; a
  heartbeat thread keeps the row alive while the work runs without progress writes
  (e.g. an import inside one transaction);
- ``job_execute`` claims, runs, and finishes (succeeded, in one transaction with the
  runner's ``commit``), fails (with the error text) or cancels;
- ``job_cancel`` / ``job_resume`` are the admins' actions;
- ``jobs_sweep_stale`` fails every running job whose heartbeat is older than
  ``UMBRA_JOB_HEARTBEAT_TIMEOUT`` (Celery beat runs it every ``UMBRA_JOB_SWEEP_INTERVAL``
  seconds and each worker runs it when it starts, failing at once the jobs its previous
  life left running).
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connections, transaction
from django.db.models import Max, Q
from django.utils import timezone

from annotations.errors import ApplicationError, Conflict, Unavailable
from annotations.models import BackgroundJob, Job, JobStatus, Project, TrainingRound

logger = logging.getLogger(__name__)

# Modules that define runners (imported on first lookup, so the registry is complete).
RUNNER_MODULES = (
    "annotations.services.rounds",
    "annotations.services.refinement",
    "annotations.services.augmentation",
    "annotations.services.adversarial",
    "annotations.services.imports",
    "annotations.services.label_exports",
    "annotations.services.seeds",
)
JOB_MODELS: tuple[type[Job], ...] = (TrainingRound, BackgroundJob)


class JobLost(Exception):
    """The job is no longer running under this claim (taken over, swept as stale)."""


class JobCancelled(Exception):
    """An admin asked the running job to stop."""


# --- runners -------------------------------------------------------------------------------


class JobRunner:
    """One kind of background work. Subclasses set the class attributes and implement ``run()``.

    ``run()`` does the work, writing progress through ``self.progress``, and returns the
    fields to store when the job succeeds (``{"result": {...}}``, or a round's metrics).
    ``commit(job)`` writes what must appear together with the status flip (in the same
    transaction); ``cleanup(job, status)`` removes what a job that did not succeed leaves
    behind (an upload, a half-written model folder).
    """

    name: ClassVar[str]
    model: ClassVar[type[Job]] = BackgroundJob
    task: ClassVar[str]  # the Celery task that runs it (routed by name, see CELERY_TASK_ROUTES)
    queue: ClassVar[str] = "celery"
    takeover: ClassVar[bool] = False  # may a delivery take over a running job whose heartbeat is stale?
    resumable: ClassVar[bool] = False  # may an admin re-queue it after a failure (finished work is skipped)?

    def __init__(self, job: Job, progress: JobProgress, **options: Any) -> None:
        self.job = job
        self.progress = progress
        self.options = options  # replacements for tests and benchmarks (a scripted generator, an embedder)

    def run(self) -> dict[str, Any]:
        raise NotImplementedError

    def commit(self, job: Job) -> None:
        """Writes that must become visible with ``succeeded`` (called inside its transaction)."""

    def stopped_fields(self) -> dict[str, Any]:
        """Fields to keep when the job fails or is cancelled part-way (e.g. counts so far)."""
        return {}

    @classmethod
    def cleanup(cls, job: Job, status: str) -> None:
        """Remove what a job that ended ``status`` (failed, cancelled, lost) left behind."""


RUNNERS: dict[str, type[JobRunner]] = {}


def runner(cls: type[JobRunner]) -> type[JobRunner]:
    """Class decorator: register a runner under its ``name`` (duplicates are an error)."""
    if cls.name in RUNNERS:
        raise ValueError(f"job runner {cls.name!r} already registered")
    RUNNERS[cls.name] = cls
    return cls


def _load_runners() -> None:
    for module in RUNNER_MODULES:
        importlib.import_module(module)


def runner_get(*, name: str) -> type[JobRunner]:
    """The runner registered as ``name``."""
    if name not in RUNNERS:
        _load_runners()
    try:
        return RUNNERS[name]
    except KeyError:
        raise ValueError(f"no job runner {name!r}; known: {sorted(RUNNERS)}") from None


def runner_for(*, job: Job) -> type[JobRunner]:
    """The runner of a job row: rounds are ``round``, other jobs their ``kind``."""
    return runner_get(name="round" if isinstance(job, TrainingRound) else job.kind)


def job_queue(*, job: Job) -> str:
    """The Celery queue the job's message goes to."""
    return runner_for(job=job).queue


# --- create and enqueue (web side) ------------------------------------------------------------


def _next_number(model: type[Job], *, project: Project, kind: str | None) -> int:
    # The project row lock serialises numbering (and the "one active job" checks made after it).
    Project.objects.select_for_update().filter(pk=project.pk).first()
    rows = model.objects.filter(project=project)
    if kind is not None:
        rows = rows.filter(kind=kind)
    return (rows.aggregate(n=Max("number"))["n"] or 0) + 1


def job_create(*, model: type[Job], project: Project, conflict: str = "", **fields) -> Job:
    """Number and save a new queued job (call inside the caller's transaction).

    ``conflict`` is the message of the ``Conflict`` raised when a database constraint
    refuses a second active job (one round, or one refinement, per project).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("job_create must run inside a transaction (the enqueue follows its commit)")
    number = _next_number(model, project=project, kind=fields.get("kind"))
    job = model(project=project, number=number, **fields)
    job.full_clean(exclude=["project", "started_by", "created_by"], validate_constraints=False)
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError as exc:
        if conflict:
            raise Conflict(conflict) from exc
        raise
    return job


def job_enqueue(*, job: Job) -> None:
    """Send the job's message once the current transaction commits (see ``_send``)."""
    runner_cls = runner_for(job=job)
    model, job_id = type(job), job.pk
    transaction.on_commit(lambda: _send(runner_cls, model, job_id))


def _send(runner_cls: type[JobRunner], model: type[Job], job_id: int) -> None:
    """Publish the job's message; with the broker down, fail the job and raise ``Unavailable``.

    Runs after the commit, so the row exists: left ``queued`` it would never run (and a
    queued round would block every later start).
    """
    from kombu.exceptions import OperationalError as BrokerError

    from moderation_app.celery import app

    try:
        app.send_task(runner_cls.task, args=[job_id])
    except (BrokerError, OSError) as exc:
        job = model.objects.get(pk=job_id)
        error = (
            f"Could not reach the task queue (Redis) to start {job.label}: {exc}. "
            "Nothing was started; try again when the task queue is back."
        )
        model.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.FAILED, finished_at=timezone.now(), error=error, progress={"phase": "failed"}
        )
        runner_cls.cleanup(job, JobStatus.FAILED)
        logger.error("%s: broker unreachable at enqueue: %s", job.label, exc)
        raise Unavailable(error) from exc


# --- claim, progress, heartbeat (worker side) ---------------------------------------------------


def heartbeat_timeout() -> int:
    """Seconds without a heartbeat after which a running job counts as dead."""
    return int(settings.UMBRA_JOB_HEARTBEAT_TIMEOUT)


def job_claim(*, model: type[Job], job_id: int, worker: str = "", takeover: bool = False) -> Job | None:
    """queued -> running in one conditional UPDATE with a fresh claim token; None if not claimable.

    With ``takeover``, a running job whose heartbeat is older than the timeout is claimed
    too (its old worker loses the claim and stops at its next write).
    """
    now = timezone.now()
    claimable = Q(status=JobStatus.QUEUED, cancel_requested=False)
    if takeover:
        stale = now - timedelta(seconds=heartbeat_timeout())
        claimable |= Q(status=JobStatus.RUNNING, cancel_requested=False, heartbeat_at__lt=stale)
    token = uuid.uuid4().hex
    claimed = (
        model.objects.filter(pk=job_id)
        .filter(claimable)
        .update(
            status=JobStatus.RUNNING,
            started_at=now,
            heartbeat_at=now,
            claim=token,
            worker=worker[:200],
            progress={"phase": "starting"},
        )
    )
    if not claimed:
        return None
    return model.objects.select_related("project").get(pk=job_id)


class JobProgress:
    """Throttled progress + heartbeat writes for one claimed job.

    ``update()`` writes at most once per ``min_interval`` seconds (``UMBRA_JOB_PROGRESS_INTERVAL``
    by default; ``force`` writes now) and adds ``eta_seconds`` when the progress has
    ``done``/``step`` and ``total``. It raises ``JobCancelled`` when an admin asked to stop and
    ``JobLost`` when the claim is gone.
    """

    def __init__(self, job: Job, *, min_interval: float | None = None) -> None:
        self.model, self.job_id, self.claim = type(job), job.pk, job.claim
        self.min_interval = float(settings.UMBRA_JOB_PROGRESS_INTERVAL if min_interval is None else min_interval)
        self.started = time.monotonic()
        self._last: float | None = None
        self.writes = 0

    def _rows(self):
        return self.model.objects.filter(pk=self.job_id, status=JobStatus.RUNNING, claim=self.claim)

    def _eta(self, progress: dict[str, Any]) -> int | None:
        done = progress.get("done", progress.get("step"))
        total = progress.get("total")
        if not isinstance(done, (int, float)) or not isinstance(total, (int, float)) or done <= 0 or total <= done:
            return None
        elapsed = time.monotonic() - self.started
        return int(round(elapsed / done * (total - done)))

    def update(self, *, force: bool = False, **progress: Any) -> bool:
        """Store ``progress`` (and the heartbeat); returns whether it wrote."""
        now = time.monotonic()
        if not force and self._last is not None and now - self._last < self.min_interval:
            return False
        self._last = now
        self.writes += 1
        eta = self._eta(progress)
        if eta is not None:
            progress["eta_seconds"] = eta
        if self._rows().filter(cancel_requested=False).update(progress=progress, heartbeat_at=timezone.now()):
            return True
        if self._rows().filter(cancel_requested=True).exists():
            raise JobCancelled(f"job {self.job_id}: cancel requested")
        raise JobLost(f"{self.model.__name__} {self.job_id} is no longer running under this claim")

    def beat(self) -> bool:
        """Write the heartbeat alone; False when the claim is gone."""
        return bool(self._rows().update(heartbeat_at=timezone.now()))


class _Heartbeat(threading.Thread):
    """Writes the heartbeat every ``interval`` seconds on its own connection while the work runs."""

    def __init__(self, progress: JobProgress, interval: float) -> None:
        super().__init__(name=f"umbra-heartbeat-{progress.job_id}", daemon=True)
        self.progress, self.interval = progress, interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(self.interval):
                try:
                    self.progress.beat()
                except Exception:  # noqa: BLE001 - a missed beat is retried; the sweep has the final word
                    logger.warning("heartbeat of job %s failed", self.progress.job_id, exc_info=True)
                    close_old_connections()
        finally:
            connections.close_all()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def progress_chunk(*, batch_size: int, total: int) -> int:
    """Items per unit of work: the batch size, smaller for short jobs so progress moves item by item."""
    return max(1, min(batch_size, total // 20 or 1))


def _heartbeat_interval() -> float:
    return max(0.5, min(30.0, heartbeat_timeout() / 4))


# --- execute ---------------------------------------------------------------------------------


def error_text(exc: BaseException, *, resumable: bool = False) -> str:
    """The error a user sees for an exception that ended a job."""
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        hint = "; press Resume to continue where it stopped" if resumable else ""
        return f"The job ran past its time limit and was stopped{hint}."
    if isinstance(exc, ApplicationError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def _end(job: Job, status: str, **fields) -> bool:
    """running -> ``status`` under this claim; False when the claim was lost meanwhile."""
    progress = dict(fields.pop("progress", None) or {})
    if not progress:
        current = type(job).objects.filter(pk=job.pk).values_list("progress", flat=True).first() or {}
        progress = {**current, "phase": status}
    return bool(
        type(job)
        .objects.filter(pk=job.pk, status=JobStatus.RUNNING, claim=job.claim)
        .update(status=status, finished_at=timezone.now(), progress=progress, **fields)
    )


def job_fail(*, job: Job, error: str, **fields) -> bool:
    """running -> failed with ``error`` (this claim only)."""
    return _end(job, JobStatus.FAILED, error=error[:10000], **fields)


def _finish(*, job: Job, work: JobRunner, fields: dict[str, Any]) -> str:
    """Flip to succeeded together with the runner's commit, or to cancelled if an admin asked."""
    model = type(job)
    with transaction.atomic():
        locked = model.objects.select_for_update().select_related("project").get(pk=job.pk)
        if locked.status != JobStatus.RUNNING or locked.claim != job.claim:
            raise JobLost(f"{locked.label} is {locked.status}")
        now = timezone.now()
        if locked.cancel_requested:
            model.objects.filter(pk=job.pk).update(
                status=JobStatus.CANCELLED, finished_at=now, progress={"phase": JobStatus.CANCELLED}
            )
            return JobStatus.CANCELLED
        work.commit(locked)
        fields.setdefault("progress", {"phase": "done"})
        model.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, finished_at=now, heartbeat_at=now, **fields)
    return JobStatus.SUCCEEDED


def job_execute(*, runner_name: str, job_id: int, worker: str = "", **options: Any) -> str:
    """Claim and run one job on this worker; returns its final status, "skipped" or "lost".

    A job that was not claimable (already claimed, finished or cancelled) is skipped, so
    a redelivered message does nothing. Every claimed job ends succeeded, failed or
    cancelled (or "lost" when another worker took it over), never left running.
    """
    runner_cls = runner_get(name=runner_name)
    job = job_claim(model=runner_cls.model, job_id=job_id, worker=worker, takeover=runner_cls.takeover)
    if job is None:
        logger.info("%s %s not claimable (claimed elsewhere, finished or cancelled)", runner_name, job_id)
        return "skipped"
    progress = JobProgress(job)
    heartbeat = _Heartbeat(progress, _heartbeat_interval())
    heartbeat.start()
    work = runner_cls(job, progress, **options)
    status: str
    try:
        try:
            fields = work.run() or {}
        finally:
            heartbeat.stop()
        status = _finish(job=job, work=work, fields=dict(fields))
    except JobCancelled:
        status = JobStatus.CANCELLED if _end(job, JobStatus.CANCELLED, **work.stopped_fields()) else "lost"
    except JobLost as exc:
        logger.warning("%s; its result is discarded", exc)
        status = "lost"
    except Exception as exc:  # noqa: BLE001 - whatever ended the work, the job ends failed with its text
        if isinstance(exc, ApplicationError):
            logger.warning("%s failed: %s", job.label, exc.message)
        else:
            logger.exception("%s failed", job.label)
        job_fail(job=job, error=error_text(exc, resumable=runner_cls.resumable), **work.stopped_fields())
        status = JobStatus.FAILED
    if status != JobStatus.SUCCEEDED:
        runner_cls.cleanup(job, status)
    return status


# --- admins' actions --------------------------------------------------------------------------


def job_cancel(*, job: Job, user) -> Job:
    """Cancel a queued job at once, or ask a running one to stop at its next progress write (admins).

    A running job whose heartbeat is already stale (its worker is gone) is cancelled at once.
    """
    now = timezone.now()
    rows = type(job).objects.filter(pk=job.pk)
    stale = now - timedelta(seconds=heartbeat_timeout())
    stopped = {
        "status": JobStatus.CANCELLED,
        "cancel_requested": True,
        "finished_at": now,
        "progress": {"phase": JobStatus.CANCELLED},
    }
    if not (
        rows.filter(status=JobStatus.QUEUED).update(**stopped)
        or rows.filter(status=JobStatus.RUNNING, heartbeat_at__lt=stale).update(**stopped)
        or rows.filter(status=JobStatus.RUNNING).update(cancel_requested=True)
    ):
        job.refresh_from_db()
        raise Conflict(f"{job.label} is already {job.status}; nothing to cancel.")
    job.refresh_from_db()
    return job


@transaction.atomic
def job_resume(*, job: Job, user) -> Job:
    """Re-queue a failed, cancelled or stale running job (admins); work already stored is skipped."""
    runner_cls = runner_for(job=job)
    if not runner_cls.resumable:
        raise Conflict(f"{job.label} cannot be resumed; start a new one.")
    stale = timezone.now() - timedelta(seconds=heartbeat_timeout())
    rows = (
        type(job)
        .objects.filter(pk=job.pk)
        .filter(
            Q(status__in=[JobStatus.FAILED, JobStatus.CANCELLED]) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
        )
    )
    try:
        with transaction.atomic():
            resumed = rows.update(
                status=JobStatus.QUEUED,
                error="",
                finished_at=None,
                cancel_requested=False,
                claim="",
                progress={"phase": "queued"},
            )
    except IntegrityError as exc:
        raise Conflict(
            f"Another {job.kind_label.lower()} of this project is queued or running; "
            f"wait for it before resuming {job.label}."
        ) from exc
    if not resumed:
        job.refresh_from_db()
        raise Conflict(f"{job.label} is {job.status} and still alive or finished; nothing to resume.")
    job.refresh_from_db()
    job_enqueue(job=job)
    return job


# --- the sweep ----------------------------------------------------------------------------------


def jobs_sweep_stale(*, timeout_seconds: int | None = None, restarted_worker: str = "") -> int:
    """End every running job whose worker is gone; returns how many.

    A running job is dead when its heartbeat is older than the timeout, or (at a worker's
    start) when it was claimed by this very worker name, whose previous process is gone.
    It ends ``failed`` ("Worker lost ..."), or ``cancelled`` if an admin had asked to stop it.
    """
    timeout = int(timeout_seconds if timeout_seconds is not None else heartbeat_timeout())
    now = timezone.now()
    cutoff = now - timedelta(seconds=timeout)
    dead = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    if restarted_worker:
        dead |= Q(worker=restarted_worker)
    swept = 0
    for model in JOB_MODELS:
        for job in model.objects.filter(status=JobStatus.RUNNING).filter(dead).select_related("project"):
            swept += _sweep_one(
                job, timeout=timeout, restarted=bool(restarted_worker) and job.worker == restarted_worker
            )
    if swept:
        logger.warning("marked %d job(s) whose worker is gone as failed or cancelled", swept)
    return swept


def _sweep_one(job: Job, *, timeout: int, restarted: bool) -> int:
    runner_cls = runner_for(job=job)
    if job.cancel_requested:
        status, error = JobStatus.CANCELLED, ""
    else:
        why = (
            "its worker restarted"
            if restarted
            else f"no heartbeat for more than {timeout} s (the worker died or was killed)"
        )
        hint = " Press Resume to continue where it stopped." if runner_cls.resumable else ""
        status, error = JobStatus.FAILED, f"Worker lost: {why}; marked failed by the stale-job sweep.{hint}"
    ended = (
        type(job)
        .objects.filter(pk=job.pk, status=JobStatus.RUNNING, claim=job.claim)
        .update(
            status=status, finished_at=timezone.now(), error=error, progress={**(job.progress or {}), "phase": status}
        )
    )
    if ended:
        runner_cls.cleanup(job, status)
    return ended


def jobs_sweep_at_worker_start(*, worker: str) -> int:
    """The sweep a worker runs when it starts (never raises: a worker must start even if it fails)."""
    try:
        return jobs_sweep_stale(restarted_worker=worker)
    except Exception:  # noqa: BLE001 - logged; beat runs the sweep again
        logger.exception("stale-job sweep at worker start failed")
        return 0


def runner_task_names() -> dict[str, str]:
    """Task name -> runner name (the routing test checks each task's queue)."""
    _load_runners()
    return {cls.task: cls.name for cls in RUNNERS.values()}
