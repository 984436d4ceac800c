"""Test helpers shared by the suites: tiny random models, item import, a real Celery worker.

Plain functions (no fixtures) so each suite's conftest builds the fixtures it needs.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent


def build_tiny_backbone(out: Path, words: Sequence[str]) -> Path:
    """A 2-layer, 16-dim random BERT with a word-level vocab, saved in HF format (no download)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    letters = [c for c in "bcdefghijklmnopqrstuvwxyz0123456789" if c not in words]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *letters]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(out / "vocab.txt"))
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def import_items(project, records: list[dict], split: str = "pool", bench_name: str = "") -> None:
    """Import ``records`` (shared JSONL record dicts) through the real import service."""
    from annotations.services.imports import items_import

    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    items_import(project=project, stream=io.BytesIO(data), fmt="jsonl", split=split, bench_name=bench_name)


def wait_for_status(model, pk: int, statuses: Iterable[str], timeout: float = 180.0,
                    check: Callable | None = None):
    """Poll the row until its status is in ``statuses`` (or ``check(row)`` is true)."""
    statuses = set(statuses)
    deadline = time.monotonic() + timeout
    while True:
        obj = model.objects.get(pk=pk)
        if check(obj) if check else obj.status in statuses:
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"{model.__name__} {pk} still {obj.status} {obj.progress} after {timeout}s")
        time.sleep(0.2)


def test_db_url() -> str:
    """The URL of the database pytest-django set up, for processes started by a test."""
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


test_db_url.__test__ = False  # not a test, despite the name


def purge_queues(queues: Iterable[str]) -> None:
    """Drop leftover messages of earlier runs from this broker's queues."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    for name in queues:
        client.delete(name, *client.keys(f"{name}\x06\x16*"))
    client.close()


class Worker:
    """A real ``celery worker`` subprocess in its own process group."""

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


def start_worker(tmp: Path, backbone: Path, cache: Path, *, queues: Sequence[str], pool: str = "prefork",
                 name: str = "test", extra_env: dict | None = None, hostname: str | None = None,
                 beat: bool = False, purge: bool = True) -> Worker:
    """Start a worker on ``queues`` against the test DB and the real Redis broker; wait until ready.

    ``hostname`` fixes the worker's name (a restart under the same name); ``beat`` embeds
    Celery beat (its schedule file in ``tmp``).
    """
    from django.conf import settings

    if purge:
        purge_queues(queues)
    log = tmp / f"worker-{uuid.uuid4().hex[:8]}.log"
    env = {
        **os.environ,
        "DATABASE_URL": test_db_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SSL_ENGINE_BACKBONE": str(backbone),
        "SSL_ENGINE_DEVICE": "cpu",
        "UMBRA_ARTIFACT_DIR": str(tmp / "artifacts"),
        "UMBRA_CACHE_DIR": str(cache),
        "DJANGO_DEBUG": "0",
        "UMBRA_DEMO": "0",
        "OMP_NUM_THREADS": "1",
        "UMBRA_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    cmd = ["nice", "-n", "5", sys.executable, "-m", "celery", "-A", "moderation_app", "worker",
           "-Q", ",".join(queues), "--concurrency", "1", "--prefetch-multiplier", "1", "--pool", pool,
           "--loglevel", "INFO", "--hostname", hostname or f"{name}-{uuid.uuid4().hex[:6]}@%h",
           "--without-gossip", "--without-mingle"]
    if beat:
        cmd += ["--beat", "--schedule", str(tmp / f"beat-{uuid.uuid4().hex[:6]}")]
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
