"""Backtranslation (en -> pivot -> en) with MarianMT / OPUS-MT, as a registered generator.

Each pivot language gives one variant per text. Model ids or local paths are
configurable per pivot; nothing is downloaded by this module itself, so offline the
paths must point at local copies (``HF_HUB_OFFLINE=1`` makes a missing model a clear
error). Long texts (responses) are split into sentence chunks that fit the model's
input and joined back. Any seq2seq model loadable with ``AutoModelForSeq2SeqLM`` and
``AutoTokenizer`` works, Marian being the default.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from ssl_engine.augment.curation import normalize_text
from ssl_engine.augment.generators import GeneratedVariants, Rejection, generator

BACKTRANSLATION_VERSION = "umbra-bt-v1"

DEFAULT_PIVOT_MODELS: dict[str, tuple[str, str]] = {
    lang: (f"Helsinki-NLP/opus-mt-en-{lang}", f"Helsinki-NLP/opus-mt-{lang}-en") for lang in ("de", "fr", "ru", "ro")
}

_MODELS: dict[tuple[str, str], Any] = {}
_MODELS_LOCK = threading.Lock()

_SENT = re.compile(r"(?<=[.!?])\s+|\n+")


def split_chunks(text: str, max_chars: int = 400) -> list[str]:
    """Split into sentence groups of at most ``max_chars`` (a sentence longer stays whole)."""
    sentences = [s for s in _SENT.split(text.strip()) if s and s.strip()]
    chunks: list[str] = []
    cur = ""
    for s in sentences:
        s = s.strip()
        if cur and len(cur) + 1 + len(s) > max_chars:
            chunks.append(cur)
            cur = s
        else:
            cur = f"{cur} {s}".strip()
    if cur:
        chunks.append(cur)
    return chunks


def _load(path: str, device: str):
    with _MODELS_LOCK:
        key = (path, device)
        if key not in _MODELS:
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            try:
                tok = AutoTokenizer.from_pretrained(path)
                model = AutoModelForSeq2SeqLM.from_pretrained(path).to(device).eval()
            except OSError as exc:
                raise RuntimeError(
                    f"cannot load translation model {path!r}: {exc}. Offline, point the backtranslation "
                    "'models' config at local copies of the OPUS-MT models."
                ) from exc
            _MODELS[key] = (tok, model)
        return _MODELS[key]


def translate(
    texts: Sequence[str],
    model: str,
    *,
    batch_size: int = 16,
    num_beams: int = 4,
    sample: bool = False,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_length: int = 256,
    device: str = "cpu",
    seed: int = 0,
) -> list[str]:
    """Translate ``texts`` with one seq2seq model (sorted by length for less padding)."""
    import torch

    tok, mdl = _load(model, device)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[str] = [""] * len(texts)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        enc = tok(
            [texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True, max_length=max_length
        ).to(device)
        kwargs: dict[str, Any] = {"max_new_tokens": max_length}
        if sample:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, num_beams=1)
        else:
            kwargs.update(do_sample=False, num_beams=num_beams)
        with torch.random.fork_rng(devices=[] if device == "cpu" else None):
            torch.manual_seed(seed + s)
            with torch.inference_mode():
                gen = mdl.generate(**enc, **kwargs)
        for i, t in zip(idx, tok.batch_decode(gen, skip_special_tokens=True), strict=True):
            out[i] = t.strip()
    return out


def backtranslate(
    texts: Sequence[str],
    *,
    pivots: Sequence[str] = ("de", "fr", "ru", "ro"),
    models: Mapping[str, Sequence[str]] | None = None,
    batch_size: int = 16,
    num_beams: int = 4,
    sample: bool = False,
    temperature: float = 0.8,
    max_length: int = 256,
    chunk_chars: int = 400,
    device: str = "cpu",
    rng: random.Random | None = None,
) -> list[GeneratedVariants]:
    """One backtranslated variant per pivot for every text; echoes and empties are rejected."""
    rng = rng or random.Random(0)
    table = {**DEFAULT_PIVOT_MODELS, **{k: tuple(v) for k, v in (models or {}).items()}}
    missing = [p for p in pivots if p not in table]
    if missing:
        raise ValueError(f"no translation models configured for pivots {missing}")
    # Chunk every text once; translate all chunks of all texts in one pass per model.
    chunks = [split_chunks(t, chunk_chars) if t and t.strip() else [] for t in texts]
    flat = [c for cs in chunks for c in cs]
    variants: list[list[str]] = [[] for _ in texts]
    rejected: list[list[Rejection]] = [[] for _ in texts]
    for pivot in pivots:
        fwd, back = table[pivot]
        opts = dict(
            batch_size=batch_size,
            num_beams=num_beams,
            sample=sample,
            temperature=temperature,
            max_length=max_length,
            device=device,
        )
        there = translate(flat, fwd, seed=rng.getrandbits(31), **opts) if flat else []
        again = translate(there, back, seed=rng.getrandbits(31), **opts) if flat else []
        k = 0
        for i, cs in enumerate(chunks):
            if not cs:
                rejected[i].append(Rejection("", f"empty_source ({pivot})"))
                continue
            text = " ".join(a for a in again[k : k + len(cs)] if a).strip()
            k += len(cs)
            norm = normalize_text(text)
            if not norm:
                rejected[i].append(Rejection(text, f"empty ({pivot})"))
            elif norm == normalize_text(texts[i]):
                rejected[i].append(Rejection(text, f"echo ({pivot})"))
            elif any(normalize_text(v) == norm for v in variants[i]):
                rejected[i].append(Rejection(text, f"duplicate ({pivot})"))
            else:
                variants[i].append(text)
    meta = {"generator": "backtranslation", "version": BACKTRANSLATION_VERSION, "pivots": tuple(pivots)}
    return [
        GeneratedVariants(source=t, variants=tuple(v), rejected=tuple(r), meta=meta)
        for t, v, r in zip(texts, variants, rejected, strict=True)
    ]


_BT_KEYS = {
    "pivots",
    "models",
    "batch_size",
    "num_beams",
    "sample",
    "temperature",
    "max_length",
    "chunk_chars",
    "device",
}


@generator("backtranslation")
def backtranslation(
    texts: Sequence[str],
    prompts: Sequence[str | None] | None,
    config: Mapping[str, Any],
    rng: random.Random,
) -> list[GeneratedVariants]:
    """Backtranslation through each configured pivot (registered generator).

    Config: ``pivots`` (default de, fr, ru, ro), ``models`` ({pivot: (en->pivot,
    pivot->en)} ids or paths), ``num_beams`` or ``sample``/``temperature``,
    ``batch_size``, ``max_length``, ``chunk_chars``, ``device``. For the response task
    only the response is translated; ``prompts`` are ignored.
    """
    unknown = set(config) - _BT_KEYS
    if unknown:
        raise ValueError(f"unknown backtranslation config keys: {sorted(unknown)}")
    return backtranslate(texts, rng=rng, **dict(config))
