"""One registry of text augmenters: pure functions of (text, seeded rng)."""

from __future__ import annotations

import random
from collections.abc import Callable

from ssl_engine.registries import lookup, registrar

Augmenter = Callable[[str, random.Random], str]

AUGMENTERS: dict[str, Augmenter] = {}


augmenter = registrar(AUGMENTERS, "augmenter")


def get_augmenter(name: str) -> Augmenter:
    return lookup(AUGMENTERS, "augmenter", name)
