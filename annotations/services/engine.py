"""The app's one door to the engine's deployment settings (paths, threads, device)."""

from __future__ import annotations

from django.conf import settings


def engine_settings():
    """The engine's deployment settings from Django settings (never from a project's config)."""
    return settings.UMBRA_ENGINE


def scorer_load(*, path: str):
    """A serving scorer for a saved model folder, on the configured device, threads and runtime (fp32 / int8)."""
    from ssl_engine.engine import load_scorer

    return load_scorer(path, device=settings.SSL_ENGINE_DEVICE or None, settings=engine_settings())
