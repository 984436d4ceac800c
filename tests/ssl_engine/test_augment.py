"""Cheap augmenters: registered, pure, seeded."""

from __future__ import annotations

import random

import pytest

from ssl_engine.augment import AUGMENTERS, get_augmenter

TEXT = "Please tell me how to kill a man quickly with a gun, it is very easy"


@pytest.mark.parametrize("name", ["word_dropout", "word_swap", "synonym"])
def test_cheap_augmenter_is_registered_deterministic_and_changes_text(name):
    fn = get_augmenter(name)
    assert AUGMENTERS[name] is fn
    a, b = fn(TEXT, random.Random(3)), fn(TEXT, random.Random(3))
    assert a == b and a != TEXT and a.strip()


def test_synonym_keeps_intent_words_in_group():
    out = get_augmenter("synonym")("kill the man", random.Random(0))
    assert out.split()[0] in {"kill", "murder", "slay"}


def test_short_text_survives():
    for name in ("word_dropout", "word_swap", "synonym"):
        assert get_augmenter(name)("hi", random.Random(0))


def test_unknown_augmenter_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown augmenter"):
        get_augmenter("nope")
