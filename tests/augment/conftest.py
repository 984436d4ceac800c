"""Fixtures for augmentation / refinement / adversarial tests: tiny models, items, a real worker.

The worker pattern is the one of ``tests/rounds/conftest.py`` with the ``augment`` queue added.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from django.conf import settings as dj_settings

from annotations.models import BackgroundJob, Item, Project, TrainingRound

ROOT = Path(__file__).resolve().parents[2]
WORDS = ("the a is to and how make bomb kill hack steal cake bake help please weather love friend hate attack "
         "buy sell poison weapon recipe garden music learn code write story quietly give dog neighbour").split()
TINY_ROUND = {"epochs": 1, "min_steps": 2, "max_steps": 4, "batch_size": 4, "max_length": 32, "head_hidden": 8,
              "score_batch_size": 32}
FINAL_JOB = {BackgroundJob.Status.SUCCEEDED, BackgroundJob.Status.FAILED, BackgroundJob.Status.CANCELLED}
FINAL_ROUND = {TrainingRound.Status.SUCCEEDED, TrainingRound.Status.FAILED, TrainingRound.Status.CANCELLED}


def build_tiny_backbone(out: Path) -> Path:
    """A 2-layer, 16-dim random BERT with a word-level vocab (no download)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    letters = [c for c in "bcdefghijklmnopqrstuvwxyz0123456789" if c not in WORDS]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *letters]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(out / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_llama(path: Path) -> str:
    """A randomly initialised 1-layer Llama with a byte-level BPE tokenizer and a chat template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    corpus = ["How do I make a bomb at home? Rewrite the request. system user assistant"] * 20
    tk.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="<|im_end|>",
                                  bos_token="<|im_start|>")
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tok.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    return build_tiny_backbone(tmp_path_factory.mktemp("aug-tiny-bert"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    return build_tiny_llama(tmp_path_factory.mktemp("aug-tiny-llama"))


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("aug-ssl-cache")


@pytest.fixture
def engine_settings(settings, tiny_backbone, engine_cache, monkeypatch):
    """Engine and curation embeddings on the tiny BERT, on CPU, with a private state cache."""
    settings.SSL_ENGINE_BACKBONE = str(tiny_backbone)
    settings.SSL_ENGINE_DEVICE = "cpu"
    monkeypatch.setenv("UMBRA_CACHE_DIR", str(engine_cache))
    return settings


def import_items(project: Project, records: list[dict], split: str = Item.Split.POOL) -> None:
    from annotations.services.imports import items_import

    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    items_import(project=project, stream=io.BytesIO(data), fmt="jsonl", split=split, bench_name="")


HARMFUL = ["how to make a bomb quietly", "kill the neighbour dog", "steal a weapon and attack", "poison the friend",
           "hack and steal code", "buy a weapon to kill"]
BENIGN = ["bake a cake please", "weather and music", "learn to write a story", "garden love friend",
          "help me learn code", "a recipe for cake"]


@pytest.fixture
def aug_items(project) -> dict:
    """Seed labels of both classes, an unlabeled pool and a labeled test split."""
    import_items(project, [{"text": t, "label": "harmful"} for t in HARMFUL]
                 + [{"text": t, "label": "unharmful"} for t in BENIGN], Item.Split.SEED)
    import_items(project, [{"text": f"{w} {v} please {i}"} for i, (w, v) in enumerate(zip(WORDS, WORDS[5:25]))])
    import_items(project, [{"text": f"make a bomb attack {i}", "label": "harmful"} for i in range(4)]
                 + [{"text": f"bake cake music {i}", "label": "unharmful"} for i in range(4)], Item.Split.TEST)
    return {"seed": Item.objects.filter(project=project, split="seed").count(),
            "pool": Item.objects.filter(project=project, split="pool").count()}


def wait_for(model, pk: int, statuses, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        obj = model.objects.get(pk=pk)
        if obj.status in statuses:
            return obj
        if time.monotonic() > deadline:
            raise AssertionError(f"{model.__name__} {pk} still {obj.status} {obj.progress} after {timeout}s")
        time.sleep(0.2)


# --- an OpenAI-compatible endpoint with scripted answers ------------------------------------


class ScriptedChat:
    """A local /v1/chat/completions server: ``answer(messages, n) -> list[str]`` or an int status."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.requests: list[dict] = []
        self.auth: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.auth.append(self.headers.get("Authorization"))
                out = outer.answer(body["messages"], int(body.get("n", 1)))
                if isinstance(out, int):
                    self.send_response(out)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    return
                data = json.dumps({"choices": [{"message": {"content": c}} for c in out]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- a real Celery worker ---------------------------------------------------------------------

QUEUES = ("celery", "training", "augment")


def _db_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def purge_queues() -> None:
    import redis

    client = redis.Redis.from_url(dj_settings.CELERY_BROKER_URL)
    for name in QUEUES:
        client.delete(name, *client.keys(f"{name}\x06\x16*"))
    client.close()


class Worker:
    def __init__(self, proc: subprocess.Popen, log: Path) -> None:
        self.proc, self.log = proc, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


def start_worker(tmp: Path, backbone: Path, cache: Path, extra_env: dict | None = None) -> Worker:
    purge_queues()
    log = tmp / f"worker-{uuid.uuid4().hex[:8]}.log"
    env = {**os.environ, "DATABASE_URL": _db_url(), "CELERY_BROKER_URL": dj_settings.CELERY_BROKER_URL,
           "SSL_ENGINE_BACKBONE": str(backbone), "SSL_ENGINE_DEVICE": "cpu",
           "UMBRA_ARTIFACT_DIR": str(tmp / "artifacts"), "UMBRA_CACHE_DIR": str(cache), "DJANGO_DEBUG": "0",
           "UMBRA_DEMO": "0", "OMP_NUM_THREADS": "1", "UMBRA_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           **(extra_env or {})}
    cmd = ["nice", "-n", "5", sys.executable, "-m", "celery", "-A", "moderation_app", "worker", "-Q", ",".join(QUEUES),
           "--concurrency", "1", "--prefetch-multiplier", "1", "--pool", "solo", "--loglevel", "INFO",
           "--hostname", f"augment-test-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle"]
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
    """One real worker (solo pool, queues celery+training+augment) for a test module."""
    worker = start_worker(tmp_path_factory.mktemp("aug-worker"), tiny_backbone, engine_cache,
                          extra_env={"UMBRA_TEST_API_KEY": "sk-test-123"})
    yield worker
    worker.stop()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    os.environ.setdefault("UMBRA_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
