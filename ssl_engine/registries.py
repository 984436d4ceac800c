"""The one pattern behind every engine registry: register by name (duplicates are an error), look up by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def registrar(table: dict[str, T], kind: str) -> Callable[[str], Callable[[T], T]]:
    """A decorator factory adding objects to ``table``; a second registration of a name raises."""

    def register(name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in table:
                raise ValueError(f"{kind} {name!r} already registered")
            table[name] = obj
            return obj

        return deco

    return register


def lookup(table: dict[str, T], kind: str, name: str) -> T:
    """``table[name]``, or a ValueError that lists the known names."""
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; known: {sorted(table)}") from None
