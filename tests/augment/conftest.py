"""Fixtures for augmentation / refinement / adversarial tests: tiny models, items, a real worker.

Worker, tiny BERT and import helpers come from ``umbra_testkit``; this adds the ``augment`` queue.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from umbra_testkit import Worker, build_tiny_backbone, import_items, wait_for_status
from umbra_testkit import start_worker as _start_worker

from annotations.models import BackgroundJob, Item, TrainingRound
WORDS = ("the a is to and how make bomb kill hack steal cake bake help please weather love friend hate attack "
         "buy sell poison weapon recipe garden music learn code write story quietly give dog neighbour").split()
TINY_ROUND = {"epochs": 1, "min_steps": 2, "max_steps": 4, "batch_size": 4, "max_length": 32, "head_hidden": 8,
              "score_batch_size": 32}
FINAL_JOB = {BackgroundJob.Status.SUCCEEDED, BackgroundJob.Status.FAILED, BackgroundJob.Status.CANCELLED}
FINAL_ROUND = {TrainingRound.Status.SUCCEEDED, TrainingRound.Status.FAILED, TrainingRound.Status.CANCELLED}


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
    return build_tiny_backbone(tmp_path_factory.mktemp("aug-tiny-bert"), WORDS)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    return build_tiny_llama(tmp_path_factory.mktemp("aug-tiny-llama"))


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
    return wait_for_status(model, pk, statuses, timeout)


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

# The deployment's outbound allowlist for the scripted local endpoint (any port on loopback).
PROVIDER_ALLOWLIST = {"UMBRA_PROVIDER_BASE_URLS": ["http://127.0.0.1:*/v1"],
                      "UMBRA_PROVIDER_API_KEY_ENVS": ["TEST_PROVIDER_API_KEY"]}
PROVIDER_ALLOWLIST_ENV = {k: ",".join(v) for k, v in PROVIDER_ALLOWLIST.items()}

QUEUES = ("celery", "training", "augment")


def start_worker(tmp: Path, backbone: Path, cache: Path, extra_env: dict | None = None) -> Worker:
    return _start_worker(tmp, backbone, cache, queues=QUEUES, pool="solo", name="augment-test", extra_env=extra_env)


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker, tmp_path_factory, tiny_backbone, engine_cache):
    """One real worker (solo pool, queues celery+training+augment) for a test module."""
    worker = start_worker(tmp_path_factory.mktemp("aug-worker"), tiny_backbone, engine_cache,
                          extra_env={"TEST_PROVIDER_API_KEY": "sk-test-123", **PROVIDER_ALLOWLIST_ENV})
    yield worker
    worker.stop()


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    os.environ.setdefault("UMBRA_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
