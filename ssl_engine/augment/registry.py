"""One registry of text augmenters: pure functions of (text, seeded rng)."""

from __future__ import annotations

import random
from collections.abc import Callable

Augmenter = Callable[[str, random.Random], str]

AUGMENTERS: dict[str, Augmenter] = {}


def augmenter(name: str) -> Callable[[Augmenter], Augmenter]:
    """Register ``fn`` under ``name``; a second registration of a name is an error."""

    def deco(fn: Augmenter) -> Augmenter:
        if name in AUGMENTERS:
            raise ValueError(f"augmenter {name!r} already registered")
        AUGMENTERS[name] = fn
        return fn

    return deco


def get_augmenter(name: str) -> Augmenter:
    try:
        return AUGMENTERS[name]
    except KeyError:
        raise ValueError(f"unknown augmenter {name!r}; known: {sorted(AUGMENTERS)}") from None
