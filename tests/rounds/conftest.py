"""Fixtures for training-round tests: a tiny random BERT, round data, a real Celery worker."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from django.conf import settings as dj_settings

from annotations.models import Item, Project, TrainingRound

ROOT = Path(__file__).resolve().parents[2]

# Tiny rounds: one epoch, a handful of steps, so a round takes seconds on a shared CPU.
TINY_CONFIG = {"epochs": 1, "min_steps": 2, "max_steps": 4, "batch_size": 4, "max_length": 32, "head_hidden": 8,
               "score_batch_size": 32}
# Long enough to be caught running (cancel / kill tests), still tiny per step.
LONG_CONFIG = {**TINY_CONFIG, "min_steps": 100_000, "max_steps": 100_000}

WORDS = ("the a is to and how make bomb kill hack steal cake bake help please weather love friend hate attack "
         "buy sell poison weapon recipe garden music learn code write story").split()
POOL_SIZE = 40
FINAL = {TrainingRound.Status.SUCCEEDED, TrainingRound.Status.FAILED, TrainingRound.Status.CANCELLED}


def build_tiny_backbone(out: Path) -> Path:
    """A 2-layer, 16-dim random BERT with a word-level vocab, saved in HF format (no download)."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    letters = [c for c in "bcdefghijklmnopqrstuvwxyz0123456789" if c not in WORDS]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(out / "vocab.txt"))
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ssl-cache")


@pytest.fixture
def engine_settings(settings, tiny_backbone, engine_cache, monkeypatch):
    """Point the engine at the tiny model on CPU with a private state cache."""
    settings.SSL_ENGINE_BACKBONE = str(tiny_backbone)
    settings.SSL_ENGINE_DEVICE = "cpu"
    monkeypatch.setenv("UMBRA_CACHE_DIR", str(engine_cache))
    return settings


def _text(rng, n: int = 6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def import_items(project: Project, records: list[dict], split: str = Item.Split.POOL, bench_name: str = "") -> None:
    from annotations.services.imports import items_import

    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    items_import(project=project, stream=io.BytesIO(data), fmt="jsonl", split=split, bench_name=bench_name)


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
    deadline = time.monotonic() + timeout
    while True:
        training_round = TrainingRound.objects.get(pk=round_id)
        if (check(training_round) if check else training_round.status in statuses):
            return training_round
        if time.monotonic() > deadline:
            raise AssertionError(f"round {round_id} still {training_round.status} {training_round.progress} "
                                 f"after {timeout}s")
        time.sleep(0.2)


# --- a real Celery worker ------------------------------------------------------


def _db_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def purge_round_queues() -> None:
    """Drop leftover messages of earlier runs from this broker's celery/training queues."""
    import redis

    client = redis.Redis.from_url(dj_settings.CELERY_BROKER_URL)
    for name in ("celery", "training"):
        keys = [name, *client.keys(f"{name}\x06\x16*")]
        client.delete(*keys)
    client.close()


class Worker:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc, self.log = proc, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole worker (no warm shutdown, no acks)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


def start_worker(tmp: Path, backbone: Path, cache: Path, *, pool: str = "prefork") -> Worker:
    """Start ``celery worker -Q celery,training`` against the test DB and the real Redis broker."""
    purge_round_queues()
    log = tmp / f"worker-{uuid.uuid4().hex[:8]}.log"
    env = {
        **os.environ,
        "DATABASE_URL": _db_url(),
        "CELERY_BROKER_URL": dj_settings.CELERY_BROKER_URL,
        "SSL_ENGINE_BACKBONE": str(backbone),
        "SSL_ENGINE_DEVICE": "cpu",
        "UMBRA_ARTIFACT_DIR": str(tmp / "artifacts"),
        "UMBRA_CACHE_DIR": str(cache),
        "DJANGO_DEBUG": "0",
        "UMBRA_DEMO": "0",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    cmd = ["nice", "-n", "5", sys.executable, "-m", "celery", "-A", "moderation_app", "worker",
           "-Q", "celery,training", "--concurrency", "1", "--prefetch-multiplier", "1", "--pool", pool,
           "--loglevel", "INFO", "--hostname", f"rounds-test-{uuid.uuid4().hex[:6]}@%h",
           "--without-gossip", "--without-mingle"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    worker = Worker(proc, log)
    deadline = time.monotonic() + 120
    while "ready." not in worker.output():
        if proc.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise RuntimeError(f"celery worker did not start:\n{worker.output()[-4000:]}")
        time.sleep(0.3)
    return worker


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


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The shared ``users`` fixture creates four users per test; PBKDF2 would dominate the runtime.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
