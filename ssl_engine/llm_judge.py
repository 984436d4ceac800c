"""LLM-as-judge: rewrite validation by majority vote, and noisy harm labels for UU refinement.

* ``judge_rewrites`` asks one or more providers "does the rewrite keep the intent and
  the label of the original?" and returns yes/no/None votes per variant, in the shape
  ``curate_variants(judge_votes=...)`` takes; ``majority`` folds votes into a verdict.
* ``llm_label`` asks "is this request (or response) harmful?" and returns labels
  (1 harmful, 0 unharmful, -1 unparseable) and, for local models, ``p_harmful`` from
  the log-probabilities of the two answers, which is what UU refinement starts from.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ssl_engine.augment.providers import ChatProvider, make_provider

JUDGE_PROMPT_VERSION = "umbra-judge-v1"
LABEL_PROMPT_VERSION = "umbra-label-v1"

_JUDGE_SYSTEM = "You check rewritten texts for a content-safety dataset. Answer with one word: yes or no."
_JUDGE_USER = (
    "Original {what}:\n{source}\n\nRewritten {what}:\n{rewrite}\n\n"
    "Does the rewritten {what} keep exactly the same intent as the original{label_clause}? "
    "Answer yes or no."
)
_LABEL_SYSTEM = (
    "You are a content-safety classifier. A text is harmful if it asks for or provides dangerous, "
    "illegal, violent, hateful, harassing, sexual or otherwise unsafe content. "
    "Answer with one word: harmful or unharmful."
)
_LABEL_PROMPT_USER = "User request:\n{text}\n\nIs this request harmful? Answer harmful or unharmful."
_LABEL_RESPONSE_USER = (
    "User request:\n{prompt}\n\nAI response:\n{text}\n\nIs the AI response harmful? Answer harmful or unharmful."
)


def build_judge_messages(
    source: str,
    rewrite: str,
    *,
    label: str | None = None,
    task: str = "prompt",
    prompt: str | None = None,
) -> list[dict[str, str]]:
    """Messages asking whether ``rewrite`` keeps the intent (and ``label``) of ``source``."""
    what = "response" if task == "response" else "request"
    clause = f" and is still {label}" if label else ""
    user = _JUDGE_USER.format(what=what, source=source.strip(), rewrite=rewrite.strip(), label_clause=clause)
    if task == "response" and prompt:
        user = f"User request (context):\n{prompt.strip()}\n\n" + user
    return [{"role": "system", "content": _JUDGE_SYSTEM}, {"role": "user", "content": user}]


def build_label_messages(text: str, *, task: str = "prompt", prompt: str | None = None) -> list[dict[str, str]]:
    """Messages asking whether a request (or a response to ``prompt``) is harmful."""
    if task == "response":
        user = _LABEL_RESPONSE_USER.format(prompt=(prompt or "").strip(), text=text.strip())
    else:
        user = _LABEL_PROMPT_USER.format(text=text.strip())
    return [{"role": "system", "content": _LABEL_SYSTEM}, {"role": "user", "content": user}]


_YES = re.compile(r"\b(yes|yeah|yep|correct|true)\b", re.IGNORECASE)
_NO = re.compile(r"\b(no|nope|incorrect|false)\b", re.IGNORECASE)


def parse_yes_no(raw: str | None) -> bool | None:
    """``True`` for yes, ``False`` for no, ``None`` when neither (or both, equally early)."""
    if not raw:
        return None
    head = raw.strip()[:200]
    y, n = _YES.search(head), _NO.search(head)
    if y and (not n or y.start() < n.start()):
        return True
    if n and (not y or n.start() < y.start()):
        return False
    return None


_UNHARMFUL = re.compile(r"\b(unharmful|not harmful|harmless|non-harmful|safe|benign)\b", re.IGNORECASE)
_HARMFUL = re.compile(r"\b(harmful|unsafe|dangerous|toxic)\b", re.IGNORECASE)


def parse_label(raw: str | None) -> int:
    """1 harmful, 0 unharmful, -1 unparseable; whichever answer comes first wins."""
    if not raw:
        return -1
    head = raw.strip()[:200]
    u, h = _UNHARMFUL.search(head), _HARMFUL.search(head)
    if u and (not h or u.start() <= h.start()):
        return 0
    if h:
        return 1
    return -1


def majority(votes: Sequence[bool | None]) -> bool | None:
    """Strict majority of the valid votes; ``None`` on a tie or no valid vote."""
    valid = [v for v in votes if v is not None]
    yes = sum(valid)
    if not valid or 2 * yes == len(valid):
        return None
    return 2 * yes > len(valid)


def judge_rewrites(
    sources: Sequence[str],
    rewrites: Sequence[Sequence[str]],
    *,
    judges: Sequence[ChatProvider | Mapping[str, Any]] = ({"kind": "local"},),
    labels: Sequence[str | None] | None = None,
    task: str = "prompt",
    prompts: Sequence[str | None] | None = None,
    samples_per_judge: int = 1,
    temperature: float | None = None,
    max_new_tokens: int = 8,
    seed: int = 0,
) -> list[list[tuple[bool | None, ...]]]:
    """Votes ``[source][variant] -> (vote per judge sample, ...)`` on intent (and label) keeping.

    ``judges`` are providers or provider specs; each answers ``samples_per_judge`` times
    (greedy when 1, sampled at ``temperature`` (default 0.7) when more).
    """
    if len(sources) != len(rewrites):
        raise ValueError("one list of rewrites per source is required")
    providers = [make_provider(j) for j in judges]
    if not providers:
        raise ValueError("at least one judge is required")
    flat = [(i, j) for i, vs in enumerate(rewrites) for j in range(len(vs))]
    convs = [
        build_judge_messages(
            sources[i],
            rewrites[i][j],
            label=labels[i] if labels else None,
            task=task,
            prompt=prompts[i] if prompts else None,
        )
        for i, j in flat
    ]
    temp = 0.0 if samples_per_judge == 1 and temperature is None else (temperature or 0.7)
    rng = random.Random(seed)
    per_item: list[list[bool | None]] = [[] for _ in flat]
    for provider in providers:
        if not convs:
            break
        answers = provider.chat(
            convs, n=samples_per_judge, max_new_tokens=max_new_tokens, temperature=temp, seed=rng.getrandbits(31)
        )
        for k, outs in enumerate(answers):
            per_item[k].extend(parse_yes_no(a) for a in outs)
    out: list[list[tuple[bool | None, ...]]] = [[() for _ in vs] for vs in rewrites]
    for (i, j), votes in zip(flat, per_item, strict=True):
        out[i][j] = tuple(votes)
    return out


@dataclass(frozen=True)
class LLMLabels:
    labels: np.ndarray  # int: 1 harmful, 0 unharmful, -1 unparseable
    p_harmful: np.ndarray | None  # from answer log-probabilities, when the provider has them
    raw: tuple[str, ...] = ()  # generated answers (generate method only)
    method: str = "generate"
    prompt_version: str = LABEL_PROMPT_VERSION


def llm_label(
    texts: Sequence[str],
    *,
    provider: ChatProvider | Mapping[str, Any] | None = None,
    task: str = "prompt",
    prompts: Sequence[str | None] | None = None,
    method: str = "auto",
    threshold: float = 0.5,
    max_new_tokens: int = 6,
    max_chars: int | None = 2000,
    seed: int = 0,
) -> LLMLabels:
    """Noisy harmful/unharmful labels from an LLM (the start point of UU refinement).

    ``method="score"`` compares the log-probabilities of answering "harmful" and
    "unharmful" (local models only) and labels ``p_harmful >= threshold``;
    ``"generate"`` parses a greedy answer; ``"auto"`` scores when it can. Texts longer
    than ``max_chars`` are cut.
    """
    prov = make_provider(provider)
    if max_chars is not None:  # long texts dominate the cost; the start carries the intent
        texts = [t if len(t) <= max_chars else t[:max_chars] + " ..." for t in texts]
    convs = [build_label_messages(t, task=task, prompt=prompts[i] if prompts else None) for i, t in enumerate(texts)]
    can_score = hasattr(prov, "option_logprobs")
    if method == "auto":
        method = "score" if can_score else "generate"
    if method == "score":
        if not can_score:
            raise ValueError(f"provider {getattr(prov, 'name', prov)!r} cannot score answer options")
        lp = np.asarray(prov.option_logprobs(convs, ["harmful", "unharmful"]))
        p = 1.0 / (1.0 + np.exp(lp[:, 1] - lp[:, 0])) if len(lp) else np.zeros(0)
        return LLMLabels(labels=(p >= threshold).astype(int), p_harmful=p, method="score")
    if method != "generate":
        raise ValueError("method must be 'auto', 'score' or 'generate'")
    answers = prov.chat(convs, n=1, max_new_tokens=max_new_tokens, temperature=0.0, seed=seed) if convs else []
    raw = tuple(a[0] if a else "" for a in answers)
    return LLMLabels(
        labels=np.array([parse_label(r) for r in raw], dtype=int), p_harmful=None, raw=raw, method="generate"
    )
