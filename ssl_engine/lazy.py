"""A module proxy that imports on first attribute access.

The algorithm modules declare their configs (read by the web process to validate a round
and render its form) next to torch code; with ``from ssl_engine.lazy import torch`` the
registry imports without loading torch until a tensor operation actually runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Stands in for ``importlib.import_module(name)`` until an attribute is read."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


torch: Any = LazyModule("torch")
