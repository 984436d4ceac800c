"""One registry of batched variant generators (LLM rewrites, backtranslation).

A generator is a function ``(texts, prompts, config, rng) -> list[GeneratedVariants]``:
it takes a batch of source texts (plus, for the response task, the user prompts that
go with them), a plain config mapping and a seeded ``random.Random``, and returns one
``GeneratedVariants`` per source, in order. Unlike the cheap per-text augmenters in
``ssl_engine.augment.registry``, generators are expensive and batched; the app runs
them in a job and stores the accepted variants as ``strong_views``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssl_engine.registries import lookup, registrar


@dataclass(frozen=True)
class Rejection:
    """One raw model output that was not kept, and why."""

    raw: str
    reason: str  # "empty" | "echo" | "refusal" | "duplicate" | "provider_error: ..." | ...


@dataclass(frozen=True)
class GeneratedVariants:
    """Variants produced for one source text."""

    source: str
    variants: tuple[str, ...]
    rejected: tuple[Rejection, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)  # generator, prompt_version, ...


Generator = Callable[
    [Sequence[str], Sequence[str | None] | None, Mapping[str, Any], random.Random],
    list[GeneratedVariants],
]

GENERATORS: dict[str, Generator] = {}


generator = registrar(GENERATORS, "generator")


def get_generator(name: str) -> Generator:
    return lookup(GENERATORS, "generator", name)


def generate_variants(
    texts: Sequence[str],
    *,
    generator: str,
    prompts: Sequence[str | None] | None = None,
    config: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> list[GeneratedVariants]:
    """Run the registered generator ``generator`` on ``texts`` with a seeded rng."""
    if prompts is not None and len(prompts) != len(texts):
        raise ValueError(f"got {len(texts)} texts but {len(prompts)} prompts")
    fn = get_generator(generator)
    return fn(list(texts), None if prompts is None else list(prompts), dict(config or {}), random.Random(seed))
