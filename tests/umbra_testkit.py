"""The test kit shared by the suites: tiny random models (BERT backbone, serving model, Llama), a
scripted chat server, item import, a real Celery worker.

Plain functions (no fixtures) so each suite's conftest builds the fixtures it needs.
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
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-9"  # every test user's password


def build_tiny_backbone(
    out: Path,
    words: Sequence[str],
    *,
    hidden_size: int = 16,
    intermediate_size: int = 32,
    extra_tokens: Sequence[str] | None = None,
    pooling: bool = True,
) -> Path:
    """A 2-layer random BERT with a word-level vocab, saved in HF format (no download).

    The one tiny-BERT builder of the suite: the vocabulary is ``words`` plus ``extra_tokens``
    (default: single letters and digits, so unknown words still tokenize).
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    if extra_tokens is None:
        extra_tokens = [c for c in "bcdefghijklmnopqrstuvwxyz0123456789" if c not in words]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *extra_tokens]
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(out / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=intermediate_size,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=pooling).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_serving_model(out_dir: str, *, threshold: float = 0.5, seed: int = 0) -> str:
    """A 2-layer random BERT with two heads, saved in the engine's serving format (no download)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ssl_engine.model import SafetyModel, default_backbone, save_model

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(default_backbone())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    model = SafetyModel(BertModel(config, add_pooling_layer=False), n_heads=2, n_out=2, head_hidden=16, dropout=0.0)
    meta = {
        "format": "umbra-ssl-model/1",
        "label_names": ["unharmful", "harmful"],
        "positive_index": 1,
        "threshold": threshold,
        "algorithm": "multimatch",
        "n_heads": 2,
        "head_hidden": 16,
        "max_length": 64,
        "seed": seed,
        "backbone": "tiny-random-bert",
    }
    return save_model(model, tokenizer, out_dir, meta, 2)


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
    tk.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tok.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    return str(path)


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


def import_items(project, records: list[dict], split: str = "pool", bench_name: str = "") -> None:
    """Import ``records`` (shared JSONL record dicts) through the real import service."""
    from annotations.services.imports import items_import

    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    items_import(project=project, stream=io.BytesIO(data), fmt="jsonl", split=split, bench_name=bench_name)


def wait_for_status(model, pk: int, statuses: Iterable[str], timeout: float = 180.0, check: Callable | None = None):
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


def start_worker(
    tmp: Path,
    backbone: Path,
    cache: Path,
    *,
    queues: Sequence[str],
    pool: str = "prefork",
    name: str = "test",
    extra_env: dict | None = None,
    hostname: str | None = None,
    beat: bool = False,
    purge: bool = True,
) -> Worker:
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
    cmd = [
        "nice",
        "-n",
        "5",
        sys.executable,
        "-m",
        "celery",
        "-A",
        "moderation_app",
        "worker",
        "-Q",
        ",".join(queues),
        "--concurrency",
        "1",
        "--prefetch-multiplier",
        "1",
        "--pool",
        pool,
        "--loglevel",
        "INFO",
        "--hostname",
        hostname or f"{name}-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
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


# --- training rounds: a tiny round's data, config and worker (rounds and reliability suites) ----------

# Tiny rounds: one epoch, a handful of steps, so a round takes seconds on a shared CPU.
TINY_ROUND_CONFIG = {
    "epochs": 1,
    "min_steps": 2,
    "max_steps": 4,
    "batch_size": 4,
    "max_length": 32,
    "head_hidden": 8,
    "score_batch_size": 32,
}
# Long enough to be caught running (cancel / kill tests), still tiny per step.
LONG_ROUND_CONFIG = {**TINY_ROUND_CONFIG, "min_steps": 100_000, "max_steps": 100_000}
ROUND_WORDS = (
    "the a is to and how make bomb kill hack steal cake bake help please weather love friend hate "
    "attack buy sell poison weapon recipe garden music learn code write story"
).split()
ROUND_POOL_SIZE = 40
ROUND_QUEUES = ("celery", "training")


def _round_text(rng, n: int = 6) -> str:
    return " ".join(rng.choice(ROUND_WORDS) for _ in range(n))


def round_items_import(project) -> dict:
    """Seed labels (both classes), an unlabeled pool, a test split and a benchmark split."""
    import random

    from annotations.models import Item

    rng = random.Random(7)
    seed = [{"text": f"how to make a bomb {_round_text(rng)} {i}", "label": "harmful"} for i in range(6)]
    seed += [{"text": f"bake a cake please {_round_text(rng)} {i}", "label": "unharmful"} for i in range(6)]
    import_items(project, seed, Item.Split.SEED)
    import_items(project, [{"text": f"pool {_round_text(rng)} {i}"} for i in range(ROUND_POOL_SIZE)], Item.Split.POOL)
    # Two labeled pool items: trained on as labeled, not scored as unlabeled.
    import_items(
        project,
        [{"text": "steal a weapon now", "label": "harmful"}, {"text": "garden music story", "label": "unharmful"}],
        Item.Split.POOL,
    )
    test = [{"text": f"kill attack {_round_text(rng)} {i}", "label": "harmful"} for i in range(4)]
    test += [{"text": f"love friend {_round_text(rng)} {i}", "label": "unharmful"} for i in range(4)]
    import_items(project, test, Item.Split.TEST)
    bench = [{"text": f"poison recipe {_round_text(rng)} {i}", "label": "harmful"} for i in range(3)]
    bench += [{"text": f"learn code {_round_text(rng)} {i}", "label": "unharmful"} for i in range(3)]
    import_items(project, bench, Item.Split.BENCH, bench_name="xs")
    pool = Item.objects.filter(project=project, split=Item.Split.POOL, human_label="")
    return {"pool_ids": set(pool.values_list("id", flat=True)), "n_labeled": 14}


def wait_for_round(round_id: int, statuses=None, timeout: float = 180.0, check=None):
    """Poll the DB until the round is final (or in ``statuses``, or ``check(round)`` is true)."""
    from annotations.models import TrainingRound

    final = {TrainingRound.Status.SUCCEEDED, TrainingRound.Status.FAILED, TrainingRound.Status.CANCELLED}
    return wait_for_status(TrainingRound, round_id, statuses or final, timeout, check)


def start_round_worker(tmp: Path, backbone: Path, cache: Path, *, pool: str = "prefork") -> Worker:
    """Start ``celery worker -Q celery,training`` against the test DB and the real Redis broker."""
    return start_worker(tmp, backbone, cache, queues=ROUND_QUEUES, pool=pool, name="rounds-test")
