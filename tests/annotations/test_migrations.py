"""The job-system migrations move UU refinement rounds to refinement jobs and number rows, both ways."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BEFORE = [("annotations", "0004_prediction_agreement_types")]
AFTER = [("annotations", "0008_api_token_scope_expiry")]


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def _migrate_to_latest():
    """Leave the database at the newest migration, whatever later migrations exist, for the tests after this one."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_refinement_rounds_become_jobs_and_come_back():
    apps = _migrate(BEFORE)
    try:
        Project = apps.get_model("annotations", "Project")
        Item = apps.get_model("annotations", "Item")
        TrainingRound = apps.get_model("annotations", "TrainingRound")
        WeakLabel = apps.get_model("annotations", "WeakLabel")
        project = Project.objects.create(slug="mig", name="Migrated")
        item = Item.objects.create(project=project, text="t", content_hash="h")
        ssl = [
            TrainingRound.objects.create(project=project, algorithm="fixmatch", status="succeeded") for _ in range(2)
        ]
        uu = TrainingRound.objects.create(
            project=project,
            kind="uu_refine",
            algorithm="",
            status="succeeded",
            config={"source": "imported", "iterations": 2},
            seed=3,
            metrics={"uu": {"f1": 0.5, "iterations": [{"iteration": 0}]}},
        )
        WeakLabel.objects.create(item=item, source="refined", training_round=uu, iteration=1, label="harmful")

        apps = _migrate(AFTER)
        TrainingRound = apps.get_model("annotations", "TrainingRound")
        BackgroundJob = apps.get_model("annotations", "BackgroundJob")
        WeakLabel = apps.get_model("annotations", "WeakLabel")
        assert list(TrainingRound.objects.order_by("id").values_list("id", "number")) == [
            (ssl[0].pk, 1),
            (ssl[1].pk, 2),
        ]
        job = BackgroundJob.objects.get(kind="refine")
        assert (job.number, job.params["seed"], job.result["f1"]) == (1, 3, 0.5)
        assert WeakLabel.objects.get().job_id == job.pk

        apps = _migrate(BEFORE)
        TrainingRound = apps.get_model("annotations", "TrainingRound")
        WeakLabel = apps.get_model("annotations", "WeakLabel")
        back = TrainingRound.objects.get(kind="uu_refine")
        assert (
            back.metrics["uu"]["f1"] == 0.5 and back.seed == 3 and WeakLabel.objects.get().training_round_id == back.pk
        )
    finally:
        _migrate_to_latest()
