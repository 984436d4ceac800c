"""Fixtures for augmentation / refinement / adversarial tests: tiny models, items, a real worker.

Worker, tiny BERT and import helpers come from ``umbra_testkit``; this adds the ``augment`` queue.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annotations.models import BackgroundJob, Item, TrainingRound
from umbra_testkit import Worker, build_tiny_backbone, build_tiny_llama, import_items, wait_for_status
from umbra_testkit import start_worker as _start_worker

WORDS = (
    "the a is to and how make bomb kill hack steal cake bake help please weather love friend hate attack "
    "buy sell poison weapon recipe garden music learn code write story quietly give dog neighbour"
).split()
TINY_ROUND = {
    "epochs": 1,
    "min_steps": 2,
    "max_steps": 4,
    "batch_size": 4,
    "max_length": 32,
    "head_hidden": 8,
    "score_batch_size": 32,
}
FINAL_JOB = {BackgroundJob.Status.SUCCEEDED, BackgroundJob.Status.FAILED, BackgroundJob.Status.CANCELLED}
FINAL_ROUND = {TrainingRound.Status.SUCCEEDED, TrainingRound.Status.FAILED, TrainingRound.Status.CANCELLED}


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    return build_tiny_backbone(tmp_path_factory.mktemp("aug-tiny-bert"), WORDS)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    return build_tiny_llama(tmp_path_factory.mktemp("aug-tiny-llama"))


HARMFUL = [
    "how to make a bomb quietly",
    "kill the neighbour dog",
    "steal a weapon and attack",
    "poison the friend",
    "hack and steal code",
    "buy a weapon to kill",
]
BENIGN = [
    "bake a cake please",
    "weather and music",
    "learn to write a story",
    "garden love friend",
    "help me learn code",
    "a recipe for cake",
]


@pytest.fixture
def aug_items(project) -> dict:
    """Seed labels of both classes, an unlabeled pool and a labeled test split."""
    import_items(
        project,
        [{"text": t, "label": "harmful"} for t in HARMFUL] + [{"text": t, "label": "unharmful"} for t in BENIGN],
        Item.Split.SEED,
    )
    import_items(
        project, [{"text": f"{w} {v} please {i}"} for i, (w, v) in enumerate(zip(WORDS, WORDS[5:25], strict=False))]
    )
    import_items(
        project,
        [{"text": f"make a bomb attack {i}", "label": "harmful"} for i in range(4)]
        + [{"text": f"bake cake music {i}", "label": "unharmful"} for i in range(4)],
        Item.Split.TEST,
    )
    return {
        "seed": Item.objects.filter(project=project, split="seed").count(),
        "pool": Item.objects.filter(project=project, split="pool").count(),
    }


def wait_for(model, pk: int, statuses, timeout: float = 120.0):
    return wait_for_status(model, pk, statuses, timeout)


# --- an OpenAI-compatible endpoint with scripted answers ------------------------------------


# --- a real Celery worker ---------------------------------------------------------------------

# The deployment's outbound allowlist for the scripted local endpoint (any port on loopback).
PROVIDER_ALLOWLIST = {
    "UMBRA_PROVIDER_BASE_URLS": ["http://127.0.0.1:*/v1"],
    "UMBRA_PROVIDER_API_KEY_ENVS": ["TEST_PROVIDER_API_KEY"],
}
PROVIDER_ALLOWLIST_ENV = {k: ",".join(v) for k, v in PROVIDER_ALLOWLIST.items()}

QUEUES = ("celery", "training", "augment")


def start_worker(tmp: Path, backbone: Path, cache: Path, extra_env: dict | None = None) -> Worker:
    return _start_worker(tmp, backbone, cache, queues=QUEUES, pool="solo", name="augment-test", extra_env=extra_env)


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, tiny_backbone, engine_cache):
    """One real worker (solo pool, queues celery+training+augment) for a test module."""
    worker = start_worker(
        tmp_path_factory.mktemp("aug-worker"),
        tiny_backbone,
        engine_cache,
        extra_env={"TEST_PROVIDER_API_KEY": "sk-test-123", **PROVIDER_ALLOWLIST_ENV},
    )
    yield worker
    worker.stop()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    os.environ.setdefault("UMBRA_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
