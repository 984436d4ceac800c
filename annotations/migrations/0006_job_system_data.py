"""Data of the job system: UU refinement rounds become refinement jobs; per-project numbers.

Reversible: refinement jobs go back to ``TrainingRound(kind="uu_refine")`` rows with their
weak labels; numbers are simply left in place.
"""

from django.db import migrations

ACTIVE = ("queued", "running")


def _number(rows, key) -> None:
    counters: dict = {}
    for row in rows:
        k = key(row)
        counters[k] = counters.get(k, 0) + 1
        row.number = counters[k]
        row.save(update_fields=["number"])


def forward(apps, schema_editor):
    TrainingRound = apps.get_model("annotations", "TrainingRound")
    BackgroundJob = apps.get_model("annotations", "BackgroundJob")
    WeakLabel = apps.get_model("annotations", "WeakLabel")
    ModelVersion = apps.get_model("annotations", "ModelVersion")

    for rnd in TrainingRound.objects.filter(kind="uu_refine").order_by("created_at", "id"):
        uu = dict((rnd.metrics or {}).get("uu") or {})
        job = BackgroundJob.objects.create(
            project_id=rnd.project_id, kind="refine", status=rnd.status, params={**(rnd.config or {}), "seed": rnd.seed},
            progress=rnd.progress or {}, result={**uu, "snapshot": rnd.snapshot or {}} if uu else {},
            error=rnd.error, created_by_id=rnd.started_by_id, started_at=rnd.started_at,
            finished_at=rnd.finished_at, heartbeat_at=rnd.heartbeat_at, cancel_requested=rnd.cancel_requested,
            worker=rnd.worker,
        )
        BackgroundJob.objects.filter(pk=job.pk).update(created_at=rnd.created_at)
        WeakLabel.objects.filter(training_round_id=rnd.pk).update(job_id=job.pk, training_round_id=None)
        rnd.delete()

    _number(TrainingRound.objects.order_by("project_id", "created_at", "id"), lambda r: r.project_id)
    _number(BackgroundJob.objects.order_by("project_id", "kind", "created_at", "id"), lambda j: (j.project_id, j.kind))
    _number(ModelVersion.objects.order_by("project_id", "created_at", "id"), lambda v: v.project_id)


def backward(apps, schema_editor):
    TrainingRound = apps.get_model("annotations", "TrainingRound")
    BackgroundJob = apps.get_model("annotations", "BackgroundJob")
    WeakLabel = apps.get_model("annotations", "WeakLabel")

    for job in BackgroundJob.objects.filter(kind="refine").order_by("created_at", "id"):
        params = dict(job.params or {})
        seed = int(params.pop("seed", 0) or 0)
        result = dict(job.result or {})
        snapshot = result.pop("snapshot", {})
        status, error = job.status, job.error
        if status in ACTIVE and TrainingRound.objects.filter(project_id=job.project_id, status__in=ACTIVE).exists():
            status, error = "failed", "Stopped when the job system migration was reversed."
        rnd = TrainingRound.objects.create(
            project_id=job.project_id, kind="uu_refine", algorithm="", config=params, seed=seed, status=status,
            started_by_id=job.created_by_id, started_at=job.started_at, finished_at=job.finished_at,
            heartbeat_at=job.heartbeat_at, cancel_requested=job.cancel_requested, progress=job.progress or {},
            error=error, snapshot=snapshot, metrics={"uu": result} if result else {}, worker=job.worker,
        )
        TrainingRound.objects.filter(pk=rnd.pk).update(created_at=job.created_at)
        WeakLabel.objects.filter(job_id=job.pk).update(training_round_id=rnd.pk, job_id=None)
        job.delete()


class Migration(migrations.Migration):

    dependencies = [
        ("annotations", "0005_job_system"),
    ]

    operations = [
        migrations.RunPython(forward, backward),
    ]
