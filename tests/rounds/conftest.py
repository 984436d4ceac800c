"""Fixtures for training-round tests: a tiny random BERT, round data, a real Celery worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from umbra_testkit import Worker, build_tiny_backbone, import_items, purge_queues, wait_for_status
from umbra_testkit import start_worker as _start_worker

from annotations.models import Item, TrainingRound

__all__ = ["Worker", "import_items"]

# Tiny rounds: one epoch, a handful of steps, so a round takes seconds on a shared CPU.
TINY_CONFIG = {"epochs": 1, "min_steps": 2, "max_steps": 4, "batch_size": 4, "max_length": 32, "head_hidden": 8,
               "score_batch_size": 32}
# Long enough to be caught running (cancel / kill tests), still tiny per step.
LONG_CONFIG = {**TINY_CONFIG, "min_steps": 100_000, "max_steps": 100_000}

WORDS = ("the a is to and how make bomb kill hack steal cake bake help please weather love friend hate attack "
         "buy sell poison weapon recipe garden music learn code write story").split()
POOL_SIZE = 40
FINAL = {TrainingRound.Status.SUCCEEDED, TrainingRound.Status.FAILED, TrainingRound.Status.CANCELLED}


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"), WORDS)


def _text(rng, n: int = 6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


@pytest.fixture
def round_items(project) -> dict:
    """Seed labels (both classes), an unlabeled pool, a test split and a benchmark split."""
    import random

    rng = random.Random(7)
    seed = [{"text": f"how to make a bomb {_text(rng)} {i}", "label": "harmful"} for i in range(6)]
    seed += [{"text": f"bake a cake please {_text(rng)} {i}", "label": "unharmful"} for i in range(6)]
    import_items(project, seed, Item.Split.SEED)
    import_items(project, [{"text": f"pool {_text(rng)} {i}"} for i in range(POOL_SIZE)], Item.Split.POOL)
    # Two labeled pool items: trained on as labeled, not scored as unlabeled.
    import_items(project, [{"text": "steal a weapon now", "label": "harmful"},
                           {"text": "garden music story", "label": "unharmful"}], Item.Split.POOL)
    test = [{"text": f"kill attack {_text(rng)} {i}", "label": "harmful"} for i in range(4)]
    test += [{"text": f"love friend {_text(rng)} {i}", "label": "unharmful"} for i in range(4)]
    import_items(project, test, Item.Split.TEST)
    bench = [{"text": f"poison recipe {_text(rng)} {i}", "label": "harmful"} for i in range(3)]
    bench += [{"text": f"learn code {_text(rng)} {i}", "label": "unharmful"} for i in range(3)]
    import_items(project, bench, Item.Split.BENCH, bench_name="xs")
    pool = Item.objects.filter(project=project, split=Item.Split.POOL, human_label="")
    pool_ids = set(pool.values_list("id", flat=True))
    return {"pool_ids": pool_ids, "n_labeled": 14}


def wait_for_round(round_id: int, statuses=FINAL, timeout: float = 180.0, check=None) -> TrainingRound:
    """Poll the DB until the round reaches one of ``statuses`` (or ``check(round)`` is true)."""
    return wait_for_status(TrainingRound, round_id, statuses, timeout, check)


# --- a real Celery worker ------------------------------------------------------


ROUND_QUEUES = ("celery", "training")


def purge_round_queues() -> None:
    purge_queues(ROUND_QUEUES)


def start_worker(tmp: Path, backbone: Path, cache: Path, *, pool: str = "prefork") -> Worker:
    """Start ``celery worker -Q celery,training`` against the test DB and the real Redis broker."""
    return _start_worker(tmp, backbone, cache, queues=ROUND_QUEUES, pool=pool, name="rounds-test")


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, tiny_backbone, engine_cache):
    """One real worker (prefork, concurrency 1, queues celery+training) for a test module."""
    worker = start_worker(tmp_path_factory.mktemp("worker"), tiny_backbone, engine_cache)
    yield worker
    worker.stop()


@pytest.fixture
def round_items_light(project) -> None:
    """The least a round needs to be startable: one human label of each class, a few pool items."""
    import_items(project, [{"text": "how to make a bomb", "label": "harmful"},
                           {"text": "bake a cake", "label": "unharmful"}], Item.Split.SEED)
    import_items(project, [{"text": f"pool text {i}"} for i in range(3)], Item.Split.POOL)
