"""Fixtures for training-round tests: a tiny random BERT, round data, a real Celery worker.

The data, configs and worker helpers live in the test kit (the reliability suite uses them too).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from annotations.models import Item
from umbra_testkit import (
    LONG_ROUND_CONFIG,
    ROUND_QUEUES,
    ROUND_WORDS,
    TINY_ROUND_CONFIG,
    Worker,
    build_tiny_backbone,
    import_items,
    purge_queues,
    round_items_import,
    start_round_worker,
    wait_for_round,
)

__all__ = ["Worker", "import_items", "start_worker", "wait_for_round"]

TINY_CONFIG = TINY_ROUND_CONFIG
LONG_CONFIG = LONG_ROUND_CONFIG
start_worker = start_round_worker


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"), ROUND_WORDS)


@pytest.fixture
def round_items(project) -> dict:
    """Seed labels (both classes), an unlabeled pool, a test split and a benchmark split."""
    return round_items_import(project)


def purge_round_queues() -> None:
    purge_queues(ROUND_QUEUES)


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, tiny_backbone, engine_cache):
    """One real worker (prefork, concurrency 1, queues celery+training) for a test module."""
    worker = start_worker(tmp_path_factory.mktemp("worker"), tiny_backbone, engine_cache)
    yield worker
    worker.stop()


@pytest.fixture
def round_items_light(project) -> None:
    """The least a round needs to be startable: one human label of each class, a few pool items."""
    import_items(
        project,
        [{"text": "how to make a bomb", "label": "harmful"}, {"text": "bake a cake", "label": "unharmful"}],
        Item.Split.SEED,
    )
    import_items(project, [{"text": f"pool text {i}"} for i in range(3)], Item.Split.POOL)
