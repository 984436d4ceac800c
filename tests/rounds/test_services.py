"""Round services: validation, one active round per project (also under concurrency), enqueue routing."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection, transaction
from rounds.conftest import import_items, purge_round_queues

from annotations.errors import ApplicationError, Conflict
from annotations.models import Item, TrainingRound
from annotations.services.rounds import training_round_cancel, training_round_start

ROOT = Path(__file__).resolve().parents[2]


def test_algorithm_choices_mirror_the_engine_config_registry():
    from ssl_engine.configs import ALGORITHM_NAMES

    assert set(TrainingRound.Algorithm.values) == set(ALGORITHM_NAMES)


@pytest.mark.slow
def test_algorithm_choices_mirror_the_torch_algorithm_registry():
    from ssl_engine.algorithms import ALGORITHMS

    assert set(TrainingRound.Algorithm.values) == set(ALGORITHMS)


def test_web_side_modules_never_import_torch():
    code = (
        "import django, os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'moderation_app.settings'); "
        "django.setup(); import annotations.urls, annotations.tasks, annotations.services.rounds, "
        "annotations.views.rounds, annotations.forms.rounds, annotations.selectors.rounds; "
        "from annotations.management.commands import start_round; "
        "from annotations.forms.rounds import RoundStartForm; "
        "RoundStartForm({'algorithm': 'multimatch', 'config': '{\"epochs\": 2}', 'seed': 0}).is_valid(); "
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.django_db
def test_start_validates_algorithm_config_and_labels(project, users):
    admin = users["admin"]
    with pytest.raises(ApplicationError, match="Unknown algorithm 'nope'"):
        training_round_start(project=project, user=admin, algorithm="nope")
    with pytest.raises(ApplicationError, match="'epochs'") as info:
        training_round_start(project=project, user=admin, algorithm="fixmatch", config={"epochs": 0})
    assert info.value.extra == {"field": "config", "config_field": "epochs"}
    with pytest.raises(ApplicationError, match="none yet for: unharmful, harmful"):
        training_round_start(project=project, user=admin, algorithm="fixmatch")
    import_items(project, [{"text": "bake a cake", "label": "unharmful"}], Item.Split.SEED)
    import_items(project, [{"text": "a bomb", "label": "harmful"}], Item.Split.TEST)  # eval labels don't count
    with pytest.raises(ApplicationError, match=r"none yet for: harmful\.$"):
        training_round_start(project=project, user=admin, algorithm="fixmatch")
    assert not TrainingRound.objects.exists()


@pytest.mark.django_db
def test_cancelling_a_cancelled_round_is_a_conflict(project, users, round_items_light):
    """(Who may cancel is the gate's rule: tests/rounds/test_views.py and the URL-conf matrix.)"""
    queued = TrainingRound.objects.create(project=project, algorithm="fixmatch")
    training_round_cancel(training_round=queued, user=users["admin"])
    with pytest.raises(Conflict, match="is already cancelled; nothing to cancel"):
        training_round_cancel(training_round=queued, user=users["admin"])


@pytest.mark.django_db
def test_running_round_cancel_only_requests_the_stop(project, users):
    running = TrainingRound.objects.create(project=project, algorithm="fixmatch", status="running")
    training_round_cancel(training_round=running, user=users["admin"])
    running.refresh_from_db()
    assert running.status == "running" and running.cancel_requested  # the worker stops it between steps


@pytest.mark.django_db(transaction=True)
def test_enqueue_after_commit_lands_on_the_training_queue(project, users, round_items_light):
    import redis
    from django.conf import settings

    purge_round_queues()
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with transaction.atomic():
        training_round = training_round_start(project=project, user=users["admin"], algorithm="fixmatch")
        assert client.llen("training") == 0  # nothing is sent before the commit
    assert client.llen("training") == 1
    message = json.loads(client.lpop("training"))
    assert message["headers"]["task"] == "annotations.training_round_run"
    args = json.loads(base64.b64decode(message["body"]))[0]
    assert args == [training_round.pk]
    client.close()


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_starts_create_one_round(project, users, round_items_light, monkeypatch):
    from annotations.services import rounds as rounds_service

    # Both callers pass the friendly pre-check; only the partial unique constraint decides.
    monkeypatch.setattr(rounds_service, "_active_round", lambda project: None)
    purge_round_queues()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def start() -> None:
        try:
            barrier.wait(timeout=10)
            training_round_start(project=project, user=users["admin"], algorithm="fixmatch")
            outcomes.append("created")
        except Conflict as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert outcomes.count("created") == 1 and len(outcomes) == 2
    assert any("only one round runs at a time" in o for o in outcomes)
    assert TrainingRound.objects.filter(project=project).count() == 1
    purge_round_queues()
