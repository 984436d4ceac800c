"""Shared fixtures: users in each role, a project, logged-in clients, a temp MEDIA/artifact root."""

from __future__ import annotations

import dataclasses

import pytest
from django.test import Client

from annotations.models import Project, Role
from annotations.services.projects import membership_set, project_create
from umbra_testkit import PASSWORD, build_tiny_serving_model


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Suites create users per test; PBKDF2 would dominate the runtime.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def engine_cache(tmp_path_factory):
    """A private cpu-fast state cache for the test session."""
    return tmp_path_factory.mktemp("ssl-cache")


@pytest.fixture
def engine_settings(settings, tiny_backbone, engine_cache, monkeypatch):
    """Point the engine (and curation embeddings) at the suite's tiny BERT, on CPU.

    ``tiny_backbone`` is defined by each suite's conftest (its own vocabulary).
    """
    settings.SSL_ENGINE_BACKBONE = str(tiny_backbone)
    settings.SSL_ENGINE_DEVICE = "cpu"
    settings.UMBRA_ENGINE = dataclasses.replace(settings.UMBRA_ENGINE, cache_dir=str(engine_cache))
    monkeypatch.setenv("UMBRA_CACHE_DIR", str(engine_cache))  # worker subprocesses read it at start
    return settings


@pytest.fixture(autouse=True)
def _tmp_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.UMBRA_ARTIFACT_DIR = tmp_path / "artifacts"


@pytest.fixture
def project(db) -> Project:
    project = project_create(
        slug="safety",
        name="Safety prompts",
        task=Project.Task.PROMPT,
        categories=["violence", "fraud", "hate"],
        guidelines="# Rules\nBe careful.",
    )
    # The suites' tiny rounds train on a handful of labels; the activation guard (issue 14.11) is
    # tested with its own minimum in tests/rounds/test_views.py.
    Project.objects.filter(pk=project.pk).update(min_labels_per_class=1)
    project.min_labels_per_class = 1
    return project


@pytest.fixture
def response_project(db) -> Project:
    return project_create(slug="responses", name="Safety responses", task=Project.Task.RESPONSE)


@pytest.fixture
def other_project(db) -> Project:
    return project_create(slug="other", name="Other team")


@pytest.fixture
def make_user(db, django_user_model):
    def make(username: str, role: str | None = None, project: Project | None = None, **extra):
        user = django_user_model.objects.create_user(username=username, password=PASSWORD, **extra)
        if role and project:
            membership_set(project=project, user=user, role=role)
        return user

    return make


@pytest.fixture
def users(make_user, project, other_project) -> dict:
    """One user per role in ``project`` plus an admin of another project."""
    return {
        "annotator": make_user("ann", Role.ANNOTATOR, project),
        "reviewer": make_user("rev", Role.REVIEWER, project),
        "admin": make_user("adm", Role.ADMIN, project),
        "outsider": make_user("out", Role.ADMIN, other_project),
    }


@pytest.fixture
def client_for(users):
    def make(role: str | None) -> Client:
        client = Client()
        if role is not None:
            client.force_login(users[role])
        return client

    return make


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny random model in the engine's serving format (API, security and reliability suites)."""
    return build_tiny_serving_model(str(tmp_path_factory.mktemp("tiny-model") / "model"))
