"""Serving: the active model version, loaded once per process, answering OpenAI-shaped moderations.

The scorer is cached per process, keyed by (model version id, path). A request looks up
the project's active version (one small query), so activating another version is picked
up by every worker on its next request without a restart; the old scorer is dropped.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from annotations.errors import ApplicationError, FieldError, Unavailable
from annotations.models import ModelVersion, Project

# OpenAI's moderation categories (omni-moderation); kept so strict clients can parse replies.
OPENAI_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
HARMFUL_KEY = "harmful"


class ModelUnavailable(Unavailable):
    """No model can serve the request (none active, or its files are missing): 503."""


@dataclass(frozen=True)
class ModerationInput:
    """One text to judge; ``prompt`` is set for the response task."""

    text: str
    prompt: str | None = None


_lock = threading.Lock()
# (model version id, path) -> (project id, scorer); most recently used last.
_scorers: OrderedDict[tuple[int, str], tuple[int, Any]] = OrderedDict()


def _cache_size() -> int:
    return max(1, int(getattr(settings, "UMBRA_MODERATION_CACHED_MODELS", 4)))


def scorer_for(*, model_version: ModelVersion):
    """The process-wide scorer of ``model_version``, loading it on first use.

    Loading a version drops the other cached versions of the same project (an activation
    replaces the served model, and its memory is freed rather than kept), and the cache
    holds at most ``UMBRA_MODERATION_CACHED_MODELS`` projects' models.
    """
    key = (model_version.pk, model_version.path)
    with _lock:
        entry = _scorers.get(key)
        if entry is not None:
            _scorers.move_to_end(key)
            return entry[1]
        from annotations.services.engine import scorer_load

        try:
            scorer = scorer_load(path=model_version.path)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelUnavailable(f"Model {model_version.name} could not be loaded: {exc}") from exc
        for old in [k for k, (pid, _) in _scorers.items() if pid == model_version.project_id]:
            del _scorers[old]
        _scorers[key] = (model_version.project_id, scorer)
        while len(_scorers) > _cache_size():
            _scorers.popitem(last=False)
        return scorer


def scorer_cache_clear() -> None:
    """Forget every loaded scorer (tests, or after deleting model files)."""
    with _lock:
        _scorers.clear()


def scorer_cache_keys() -> list[tuple[int, str]]:
    with _lock:
        return list(_scorers)


def model_name_parse(model: str) -> tuple[str, int]:
    """``<slug>-v<n>`` -> (slug, n); a FieldError for anything else."""
    slug, sep, num = model.rpartition("-v")
    if not sep or not num.isdigit():
        raise FieldError(f"Unknown model {model!r}; expected 'latest' or '<project-slug>-v<n>'.", field="model")
    return slug, int(num)


def model_version_resolve(*, project: Project | None, model: str | None) -> ModelVersion:
    """The model version named by ``model`` (``<slug>-v<n>``, numbered per project) or the active one of ``project``.

    No role check: callers that act for a user (the API) gate on the role before calling
    (``annotations.api.views.moderation``); the ``moderate`` command runs as the operator.
    """
    if model and model != "latest":
        slug, num = model_name_parse(model)
        mv = ModelVersion.objects.select_related("project").filter(number=num, project__slug=slug).first()
        if mv is None:
            raise FieldError(f"Unknown model {model!r}.", field="model")
        if project is not None and mv.project_id != project.pk:
            raise FieldError(f"Model {model!r} belongs to another project.", field="model")
        return mv
    if project is None:
        raise FieldError("No project given.", field="project")
    mv = ModelVersion.objects.select_related("project").filter(project=project, is_active=True).first()
    return model_version_or_unavailable(mv, project=project)


def model_version_or_unavailable(mv: ModelVersion | None, *, project: Project) -> ModelVersion:
    """``mv``, or the 503 for a project without an active model version."""
    if mv is None:
        raise ModelUnavailable(f"Project {project.slug!r} has no active model version; activate one first.")
    return mv


def moderation_create(
    *, model_version: ModelVersion, inputs: list[ModerationInput], batch_size: int | None = None
) -> dict[str, Any]:
    """Score ``inputs`` with ``model_version`` and answer in the OpenAI moderation response shape."""
    if not inputs:
        raise ApplicationError("Input is empty.")
    scorer = scorer_for(model_version=model_version)
    texts = [i.text for i in inputs]
    prompts = [i.prompt for i in inputs] if any(i.prompt for i in inputs) else None
    bs = batch_size or int(getattr(settings, "UMBRA_MODERATION_BATCH_SIZE", 32))
    scored = scorer.score(texts, prompts=prompts, batch_size=bs)
    threshold = float(model_version.threshold)
    results = []
    for p_harmful, _heads in scored:
        flagged = p_harmful >= threshold
        categories = {c: False for c in OPENAI_CATEGORIES}
        scores = {c: 0.0 for c in OPENAI_CATEGORIES}
        applied = {c: [] for c in OPENAI_CATEGORIES}
        categories[HARMFUL_KEY] = flagged
        scores[HARMFUL_KEY] = round(float(p_harmful), 6)
        applied[HARMFUL_KEY] = ["text"]
        results.append(
            {
                "flagged": flagged,
                "categories": categories,
                "category_scores": scores,
                "category_applied_input_types": applied,
            }
        )
    return {"id": f"modr-{uuid.uuid4().hex}", "model": model_version.name, "results": results}
