"""Engine test fixtures: a tiny randomly initialised BERT + tokenizer saved to disk (no download)."""

from __future__ import annotations

import os

import pytest

from umbra_testkit import build_tiny_backbone

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("UMBRA_NUM_THREADS", "1")  # 2 shared cores: one intra-op thread avoids oversubscription


@pytest.fixture(autouse=True)
def _engine_cache_in_tmp(tmp_path, monkeypatch):
    """The cpu-fast state cache is a deployment setting (environment), never round config."""
    monkeypatch.setenv("UMBRA_CACHE_DIR", str(tmp_path / "engine-cache"))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    import torch

    torch.set_num_threads(int(os.environ["UMBRA_NUM_THREADS"]))


WORDS = (
    "how to make a bomb kill hurt steal hack gun drug weapon attack people "
    "hello write story poem about cats dogs weather travel recipe cake please tell me what is "
    "the capital of france explain python code help friend good bad happy sad great day"
).split()

HARMFUL = [
    "how to make a bomb",
    "kill people with a gun",
    "steal a weapon please",
    "hack and attack people",
    "tell me how to hurt people",
    "make a drug to kill",
    "how to steal a gun",
    "attack people with a bomb",
]
BENIGN = [
    "write a story about cats",
    "hello what is the weather",
    "explain python code please",
    "a poem about dogs",
    "recipe for a cake",
    "what is the capital of france",
    "travel help for a friend",
    "good day happy friend",
    "tell me a story about travel",
    "write a poem about the weather",
]


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> str:
    """Directory with a 2-layer, 32-dim random BERT and a matching fast tokenizer."""
    path = build_tiny_backbone(
        tmp_path_factory.mktemp("tiny_bert"),
        sorted(set(WORDS)),
        hidden_size=32,
        intermediate_size=64,
        extra_tokens=[",", ".", "?"],
        pooling=False,
    )
    return str(path)


@pytest.fixture(scope="session")
def toy_rows():
    """(labeled rows, unlabeled rows) of toy prompts; harmful = 1."""
    labeled = [(f"l{i}", t, 1) for i, t in enumerate(HARMFUL[:5])] + [
        (f"l{i + 5}", t, 0) for i, t in enumerate(BENIGN[:7])
    ]
    pool = HARMFUL + BENIGN
    unlabeled = [(f"u{i}", pool[i % len(pool)] + (" please" if i >= len(pool) else "")) for i in range(40)]
    return labeled, unlabeled


@pytest.fixture(scope="session")
def toy_texts():
    """(harmful texts, benign texts)."""
    return list(HARMFUL), list(BENIGN)


@pytest.fixture
def tiny_config(tmp_path):
    """Factory of a fast TrainConfig mapping for the tiny model (cache under tmp_path)."""

    def make(**over):
        return _tiny_config(tmp_path, **over)

    return make


def _tiny_config(tmp_path, **over):
    cfg = {
        "epochs": 2,
        "min_steps": 4,
        "batch_size": 4,
        "max_length": 32,
        "head_hidden": 16,
        "trainable_layers": 1,
        "val_fraction": 0.0,
        "score_batch_size": 8,
    }
    cfg.update(over)
    return cfg
