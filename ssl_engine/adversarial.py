"""Adversarial hard-example mining against the current classifier.

Two directions (ALGORITHMS.md, "Curation and hard examples"):

* ``"evade"``: harmful items are rewritten to slip past the classifier with the same
  intent; candidates scored below the threshold are hard negatives-that-are-positive
  ("fooled" the classifier) and should be labeled harmful in the next round.
* ``"alarm"``: benign items are rewritten to look alarming while staying benign;
  candidates scored at or above the threshold are false-positive probes.

Everything is passed in: ``generate`` (texts -> variants per text, e.g.
``rewriter(provider, mode="evade")``), ``score`` (texts -> p_harmful) and an optional
``validate`` (source, candidate -> bool, e.g. an LLM judge) that guards against reward
hacking (a candidate that no longer carries the label). Across iterations, sources
that did not yet fool the classifier are attacked again from their most successful
candidate. Pure: plain dataclasses out, nothing stored.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TextGenerator = Callable[[Sequence[str]], Sequence[Sequence[str]]]
Scorer = Callable[[Sequence[str]], Sequence[float]]
Validator = Callable[[str, str], bool]

DIRECTIONS = ("evade", "alarm")


@dataclass(frozen=True)
class HardExample:
    source_index: int
    source: str
    text: str
    score: float  # p_harmful of the candidate
    source_score: float  # p_harmful of the original source
    iteration: int
    direction: str  # "evade" (a missed harmful item) | "alarm" (a false-positive probe)
    label: int  # the label the candidate keeps: 1 for evade, 0 for alarm


@dataclass(frozen=True)
class MiningStats:
    iteration: int
    sources: int  # sources attacked in this iteration
    candidates: int  # distinct new candidates scored
    fooled: int  # candidates past the threshold in the wanted direction
    sources_fooled: int  # sources with at least one fooled candidate
    rejected_by_validator: int  # fooled candidates the validator said lost the label
    fooled_rate: float  # fooled / candidates
    mean_score: float  # mean candidate p_harmful


@dataclass
class MiningResult:
    hard_examples: list[HardExample]
    stats: list[MiningStats]
    already_wrong: list[int] = field(default_factory=list)  # sources misclassified before any rewrite
    source_scores: list[float] = field(default_factory=list)


def _fooled(score: float, threshold: float, direction: str) -> bool:
    return score < threshold if direction == "evade" else score >= threshold


def mine_hard_examples(
    items: Sequence[str],
    *,
    generate: TextGenerator,
    score: Scorer,
    threshold: float = 0.5,
    direction: str = "evade",
    iterations: int = 1,
    validate: Validator | None = None,
    max_per_source: int | None = None,
) -> MiningResult:
    """Rewrite ``items`` to fool ``score`` and keep the candidates that do.

    Args:
        items: harmful texts for ``"evade"``, benign texts for ``"alarm"``.
        generate: texts -> candidate rewrites per text.
        score: texts -> p_harmful per text.
        threshold: the classifier's decision threshold.
        iterations: attack rounds; unfooled sources are attacked again from their
            best candidate so far (gains converged after about one round in the paper).
        validate: (source, candidate) -> keeps the label; failing candidates are not kept.
        max_per_source: keep at most this many hard examples per source (most extreme first).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    items = list(items)
    src_scores = [float(s) for s in score(items)] if items else []
    if len(src_scores) != len(items):
        raise ValueError("score() must return one value per text")
    already_wrong = [i for i, s in enumerate(src_scores) if _fooled(s, threshold, direction)]
    active = [i for i in range(len(items)) if i not in set(already_wrong)]
    current = {i: items[i] for i in active}  # text each source is attacked from
    best = {i: src_scores[i] for i in active}
    seen: set[str] = set(items)
    found: dict[int, list[HardExample]] = {}
    stats: list[MiningStats] = []
    for it in range(1, iterations + 1):
        if not active:
            break
        outs = generate([current[i] for i in active])
        if len(outs) != len(active):
            raise ValueError("generate() must return one list of candidates per text")
        cand: list[tuple[int, str]] = []
        for i, vs in zip(active, outs, strict=True):
            for v in vs:
                v = v.strip()
                if v and v not in seen:
                    seen.add(v)
                    cand.append((i, v))
        scores = [float(s) for s in score([c for _, c in cand])] if cand else []
        if len(scores) != len(cand):
            raise ValueError("score() must return one value per text")
        fooled = rejected = 0
        fooled_sources: set[int] = set()
        for (i, v), s in zip(cand, scores, strict=True):
            more_extreme = s < best[i] if direction == "evade" else s > best[i]
            if _fooled(s, threshold, direction):
                if validate is not None and not validate(items[i], v):
                    rejected += 1
                    continue
                fooled += 1
                fooled_sources.add(i)
                found.setdefault(i, []).append(
                    HardExample(i, items[i], v, s, src_scores[i], it, direction, 1 if direction == "evade" else 0)
                )
            elif more_extreme:
                best[i], current[i] = s, v
        stats.append(
            MiningStats(
                iteration=it,
                sources=len(active),
                candidates=len(cand),
                fooled=fooled,
                sources_fooled=len(fooled_sources),
                rejected_by_validator=rejected,
                fooled_rate=fooled / len(cand) if cand else 0.0,
                mean_score=sum(scores) / len(scores) if scores else float("nan"),
            )
        )
        active = [i for i in active if i not in fooled_sources]
    hard: list[HardExample] = []
    for i in sorted(found):
        exs = sorted(found[i], key=lambda h: h.score, reverse=direction == "alarm")
        hard.extend(exs[:max_per_source] if max_per_source else exs)
    return MiningResult(hard_examples=hard, stats=stats, already_wrong=already_wrong, source_scores=src_scores)


def rewriter(
    provider: Any = None,
    *,
    mode: str = "evade",
    task: str = "prompt",
    prompts: Sequence[str | None] | None = None,
    n_variants: int = 3,
    seed: int = 0,
    **options: Any,
) -> TextGenerator:
    """An LLM-backed ``generate`` for ``mine_hard_examples`` (``mode`` "evade" or "alarm").

    ``provider`` is a provider object or spec (default: offline SmolLM2). Each call
    draws a fresh seed from one seeded rng, so a mining run is reproducible.
    For the response task ``prompts`` must align with the texts of the first call.
    """
    from ssl_engine.augment.llm import rewrite_texts
    from ssl_engine.augment.providers import make_provider

    prov = make_provider(provider)
    rng = random.Random(seed)

    def generate(texts: Sequence[str]) -> list[list[str]]:
        res = rewrite_texts(
            texts, provider=prov, prompts=prompts if prompts is not None and len(prompts) == len(texts) else None,
            task=task, mode=mode, n_variants=n_variants, rng=random.Random(rng.getrandbits(31)), **options,
        )  # fmt: skip
        return [list(r.variants) for r in res]

    return generate


def judge_validator(
    judges: Sequence[Mapping[str, Any] | Any] = ({"kind": "local"},),
    *,
    label: str = "harmful",
    task: str = "prompt",
    samples_per_judge: int = 1,
) -> Validator:
    """A ``validate`` callable: an LLM-judge majority says the candidate keeps ``label``."""
    from ssl_engine.llm_judge import judge_rewrites, majority

    def validate(source: str, candidate: str) -> bool:
        votes = judge_rewrites(
            [source], [[candidate]], judges=judges, labels=[label], task=task, samples_per_judge=samples_per_judge
        )
        return majority(votes[0][0]) is True

    return validate
