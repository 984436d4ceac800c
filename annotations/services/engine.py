"""The app's one door to the engine's deployment settings (paths, threads, device)."""

from __future__ import annotations

from django.conf import settings


def engine_settings():
    """The engine's deployment settings from Django settings (never from a project's config)."""
    from ssl_engine.settings import EngineSettings

    return EngineSettings(cache_dir=settings.UMBRA_CACHE_DIR, num_threads=settings.UMBRA_NUM_THREADS,
                          scorer_runtime=settings.UMBRA_SCORER_RUNTIME)


def scorer_load(*, path: str):
    """A serving scorer for a saved model folder, on the configured device, threads and runtime (fp32 / int8)."""
    from ssl_engine.engine import load_scorer

    return load_scorer(path, device=settings.SSL_ENGINE_DEVICE or None, settings=engine_settings())
