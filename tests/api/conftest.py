"""API fixtures: token clients per role, a tiny random model saved through the engine, a served version."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotations.models import ModelVersion, TrainingRound
from annotations.services.tokens import api_token_create


@pytest.fixture
def make_model_version(project, tiny_model_dir):
    def make(*, proj=None, active: bool = True, threshold: float = 0.5, path: str | None = None) -> ModelVersion:
        proj = proj or project
        now = timezone.now()
        rnd = TrainingRound.objects.create(
            project=proj,
            algorithm="multimatch",
            status=TrainingRound.Status.SUCCEEDED,
            started_at=now,
            finished_at=now,
            metrics={"test": {"f1": 0.5}},
        )
        if active:
            ModelVersion.objects.filter(project=proj, is_active=True).update(is_active=False)
        number = ModelVersion.objects.filter(project=proj).count() + 1  # <slug>-v<n>, per project
        return ModelVersion.objects.create(
            project=proj,
            training_round=rnd,
            path=path or tiny_model_dir,
            threshold=threshold,
            is_active=active,
            number=number,
        )

    return make


@pytest.fixture
def token_for(users):
    """A live API token key for a role's user (created by that user)."""

    def make(role: str) -> str:
        user = users[role]
        return api_token_create(user=user, name=f"{role} script", created_by=user).key

    return make


@pytest.fixture
def api_for(users, token_for):
    """An APIClient for a role, authenticated by session (``via="session"``) or by token."""

    def make(role: str | None, via: str = "token") -> APIClient:
        client = APIClient()
        if role is None:
            return client
        if via == "session":
            client.force_login(users[role])
        else:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(role)}")
        return client

    return make


@pytest.fixture(autouse=True)
def _fresh_scorer_cache():
    from annotations.services.moderation import scorer_cache_clear

    scorer_cache_clear()
    yield
    scorer_cache_clear()


@pytest.fixture(autouse=True)
def _locmem_cache(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "umbra-api-tests"}
    }
    from django.core.cache import cache

    cache.clear()
