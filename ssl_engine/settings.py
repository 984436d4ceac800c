"""Deployment settings of the engine, read once at an entry point (never from a round's config).

Paths and thread counts belong to whoever runs the engine (the worker's Django settings, the
CLI's environment), not to a project admin: a round's config cannot name a directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

SCORER_RUNTIMES = ("fp32", "int8")


@dataclass(frozen=True)
class EngineSettings:
    cache_dir: str = ""  # cpu-fast cache of frozen lower-layer states; "" = ~/.cache/umbra_ssl
    num_threads: int = 0  # torch intra-op threads; 0 = torch's default
    llm_cache_dir: str = ""  # local LLMs converted from GGUF; "" = ~/.cache/umbra/llm
    scorer_runtime: str = "fp32"  # serving: "fp32", or "int8" (dynamic int8 Linear layers, CPU only)

    def __post_init__(self) -> None:
        if self.scorer_runtime not in SCORER_RUNTIMES:
            raise ValueError(f"unknown scorer runtime {self.scorer_runtime!r}; expected one of {SCORER_RUNTIMES}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineSettings:
        """``UMBRA_CACHE_DIR``, ``UMBRA_NUM_THREADS``, ``UMBRA_LLM_CACHE``, ``UMBRA_SCORER_RUNTIME``: the only
        place the engine reads the environment (the CLI, benchmarks and defaults come through here)."""
        env = os.environ if environ is None else environ
        threads = env.get("UMBRA_NUM_THREADS", "").strip()
        return cls(
            cache_dir=env.get("UMBRA_CACHE_DIR", ""),
            num_threads=int(threads) if threads else 0,
            llm_cache_dir=env.get("UMBRA_LLM_CACHE", ""),
            scorer_runtime=env.get("UMBRA_SCORER_RUNTIME", "").strip() or "fp32",
        )

    @property
    def cache_root(self) -> str:
        return self.cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "umbra_ssl")

    @property
    def llm_cache_root(self) -> str:
        return self.llm_cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "umbra", "llm")

    def apply_threads(self) -> None:
        """Set torch's intra-op threads when configured (1 is best on a shared 2-core machine)."""
        if self.num_threads:
            import torch

            torch.set_num_threads(self.num_threads)
