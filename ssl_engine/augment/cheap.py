"""Cheap CPU augmenters for strong views: pure functions of (text, seeded rng)."""

from __future__ import annotations

import random
import re

from ssl_engine.augment.registry import augmenter

_WORD = re.compile(r"\S+")

# A small embedded synonym list: common words in chat prompts, including the
# vocabulary of harmful requests, so the intent survives the substitution.
_SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("kill", "murder", "slay"),
    ("hurt", "harm", "injure"),
    ("steal", "rob", "nick"),
    ("bomb", "explosive", "device"),
    ("gun", "firearm", "weapon"),
    ("drug", "narcotic", "substance"),
    ("hack", "break into", "crack"),
    ("sex", "intercourse"),
    ("sexy", "seductive", "provocative"),
    ("naked", "nude", "undressed"),
    ("story", "tale", "narrative"),
    ("write", "compose", "create"),
    ("make", "create", "produce"),
    ("tell", "inform", "explain to"),
    ("help", "assist", "aid"),
    ("show", "demonstrate", "display"),
    ("give", "provide", "offer"),
    ("want", "wish", "desire"),
    ("need", "require"),
    ("good", "great", "fine"),
    ("bad", "awful", "terrible"),
    ("big", "large", "huge"),
    ("small", "little", "tiny"),
    ("quick", "fast", "rapid"),
    ("easy", "simple", "straightforward"),
    ("hard", "difficult", "tough"),
    ("friend", "buddy", "pal"),
    ("person", "individual", "human"),
    ("people", "folks", "persons"),
    ("woman", "lady", "female"),
    ("man", "guy", "male"),
    ("girl", "young woman"),
    ("boy", "young man"),
    ("money", "cash", "funds"),
    ("job", "work", "occupation"),
    ("idea", "concept", "notion"),
    ("answer", "reply", "response"),
    ("question", "query"),
    ("list", "enumerate"),
    ("explain", "describe", "clarify"),
    ("find", "locate", "discover"),
    ("use", "utilize", "employ"),
    ("get", "obtain", "acquire"),
    ("buy", "purchase"),
    ("begin", "start", "commence"),
    ("end", "finish", "conclude"),
    ("stupid", "dumb", "idiotic"),
    ("hate", "despise", "loathe"),
    ("angry", "furious", "mad"),
    ("happy", "glad", "joyful"),
    ("sad", "unhappy", "miserable"),
    ("smart", "clever", "intelligent"),
    ("pretend", "act as", "roleplay as"),
    ("ignore", "disregard"),
    ("rules", "guidelines", "restrictions"),
    ("detailed", "thorough", "in-depth"),
    ("way", "method", "means"),
    ("how", "in what way"),
    ("very", "extremely", "really"),
    ("please", "kindly"),
)
SYNONYMS: dict[str, tuple[str, ...]] = {}
for _group in _SYNONYM_GROUPS:
    for _word in _group:
        if " " not in _word:
            SYNONYMS[_word] = tuple(w for w in _group if w != _word)


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


@augmenter("word_dropout")
def word_dropout(text: str, rng: random.Random, p: float = 0.15) -> str:
    """Drop each word with probability ``p`` (never all of them)."""
    words = _words(text)
    if len(words) < 2:
        return text
    kept = [w for w in words if rng.random() >= p]
    if not kept:
        kept = [words[rng.randrange(len(words))]]
    return " ".join(kept)


@augmenter("word_swap")
def word_swap(text: str, rng: random.Random, n_swaps: int | None = None) -> str:
    """Swap about 10 % of the words with a neighbour (at least one swap)."""
    words = _words(text)
    if len(words) < 2:
        return text
    n = n_swaps if n_swaps is not None else max(1, len(words) // 10)
    for _ in range(n):
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def _match_case(src: str, repl: str) -> str:
    if src.isupper() and len(src) > 1:
        return repl.upper()
    if src[:1].isupper():
        return repl[:1].upper() + repl[1:]
    return repl


@augmenter("synonym")
def synonym(text: str, rng: random.Random, p: float = 0.5) -> str:
    """Replace known words by an embedded synonym with probability ``p``; else drop ~10 % of words."""
    words = _words(text)
    out, changed = [], False
    for w in words:
        core = w.strip(".,!?;:\"'()").lower()
        alts = SYNONYMS.get(core)
        if alts and rng.random() < p:
            stripped = w.strip(".,!?;:\"'()")
            start = w.find(stripped) if stripped else 0
            repl = _match_case(stripped, alts[rng.randrange(len(alts))])
            out.append(w[:start] + repl + w[start + len(stripped) :])
            changed = True
        else:
            out.append(w)
    if not changed:
        return word_dropout(text, rng, p=0.1)
    return " ".join(out)


CHEAP_AUGMENTERS: tuple[str, ...] = ("word_dropout", "word_swap", "synonym")
"""The augmenters defined here (strong views computed on the fly; the round form offers these)."""
