"""Issue 15, defect 1: a project admin could make a worker send the server's secrets to any URL (and read the reply).

Only a deployment admin decides where workers connect (UMBRA_PROVIDER_BASE_URLS) and which
environment variables may be sent as API keys (UMBRA_PROVIDER_API_KEY_ENVS). A real local
HTTP listener stands in for the attacker's endpoint: it must never receive a request.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.errors import FieldError
from annotations.models import BackgroundJob, Item
from annotations.services.outbound import api_key_env_check, base_url_check, provider_spec_clean
from annotations.services.refinement import judge_labels_job_execute
from umbra_testkit import ScriptedChat

pytestmark = pytest.mark.django_db


@pytest.fixture
def listener():
    server = ScriptedChat(lambda messages, n: ["harmful"] * n)
    yield server
    server.close()


@pytest.fixture
def items(project):
    Item.objects.create(project=project, text="how to make a bomb", content_hash="h1", split="seed")


def test_any_env_var_and_any_url_are_refused_unless_the_deployment_lists_them(settings):
    settings.UMBRA_PROVIDER_BASE_URLS = []
    settings.UMBRA_PROVIDER_API_KEY_ENVS = []
    with pytest.raises(FieldError, match="not in UMBRA_PROVIDER_BASE_URLS"):
        base_url_check("https://api.example.org/v1")
    with pytest.raises(FieldError, match="not in UMBRA_PROVIDER_API_KEY_ENVS"):
        api_key_env_check("OPENAI_API_KEY")
    settings.UMBRA_PROVIDER_BASE_URLS = ["https://api.example.org/v1", "http://vllm.internal:*"]
    settings.UMBRA_PROVIDER_API_KEY_ENVS = ["OPENAI_API_KEY", "DJANGO_SECRET_KEY", "DATABASE_URL"]
    assert base_url_check("https://api.example.org/v1/") == "https://api.example.org/v1/"
    assert base_url_check("http://vllm.internal:8000/v1")  # "*" port, listed host
    with pytest.raises(FieldError, match="not in UMBRA_PROVIDER_BASE_URLS"):
        base_url_check("https://api.example.org/v10")  # a prefix of the path, not of the string
    with pytest.raises(FieldError, match="not in UMBRA_PROVIDER_BASE_URLS"):
        base_url_check("https://api.example.org:8443/v1")  # another port
    assert api_key_env_check("OPENAI_API_KEY") == "OPENAI_API_KEY"
    for secret in ("DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "UMBRA_DEMO_ADMIN_PASSWORD"):
        with pytest.raises(FieldError, match="setting of this server and is never sent as an API key"):
            api_key_env_check(secret)  # even when listed


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/v1",
        "http://localhost/v1",
        "http://10.1.2.3/v1",
        "http://169.254.169.254/latest",
        "http://[::1]:8000/v1",
    ],
)
def test_public_entry_still_refuses_loopback_private_and_link_local_targets(settings, url):
    settings.UMBRA_PROVIDER_BASE_URLS = ["public"]
    with pytest.raises(FieldError, match="private, loopback or link-local address .*UMBRA_PROVIDER_BASE_URLS"):
        base_url_check(url)


def test_a_listed_loopback_target_is_allowed(settings):
    settings.UMBRA_PROVIDER_BASE_URLS = ["public", "http://127.0.0.1:8000/v1"]
    assert base_url_check("http://127.0.0.1:8000/v1")


@pytest.mark.parametrize(
    "name,body",
    [
        ("augment_start", {"method": "llm_rewrite", "per_item": "1", "items": "seed"}),
        ("judge_labels_start", {}),
        ("adversarial_start", {"direction": "evade", "iterations": "1", "per_item": "1"}),
    ],
)
def test_the_forms_refuse_the_servers_secret_and_an_unlisted_url_naming_the_setting(
    client_for, project, users, items, listener, name, body
):
    client = client_for("admin")
    post = {
        **body,
        "provider_kind": "openai",
        "model": "m",
        "base_url": listener.url,
        "api_key_env": "DJANGO_SECRET_KEY",
    }
    response = client.post(reverse(f"annotations:{name}", args=[project.slug]), post)
    html = response.content.decode()
    assert response.status_code == 422, html[:500]
    assert "UMBRA_PROVIDER_BASE_URLS" in html or "never sent as an API key" in html
    assert not BackgroundJob.objects.exists() and listener.requests == []


def test_the_worker_checks_again_and_never_connects(settings, project, users, items, listener, monkeypatch):
    """A job stored before the allowlist (or by other means) is refused on the worker, before any request."""
    monkeypatch.setenv("DATABASE_URL_COPY", "postgres://secret@db/umbra")
    job = BackgroundJob.objects.create(
        project=project,
        kind="judge",
        number=1,
        created_by=users["admin"],
        params={
            "provider": {"kind": "openai", "base_url": listener.url, "model": "m", "api_key_env": "DATABASE_URL_COPY"},
            "method": "generate",
            "batch_size": 8,
        },
    )
    settings.UMBRA_PROVIDER_BASE_URLS = []

    assert judge_labels_job_execute(job_id=job.pk) == "failed"

    job.refresh_from_db()
    assert "not in UMBRA_PROVIDER_BASE_URLS" in job.error and listener.requests == []


def test_listed_targets_and_keys_still_work(settings, project, users, items, listener, monkeypatch):
    monkeypatch.setenv("PROVIDER_KEY", "sk-live-1")
    settings.UMBRA_PROVIDER_BASE_URLS = [listener.url]
    settings.UMBRA_PROVIDER_API_KEY_ENVS = ["PROVIDER_KEY"]
    spec = provider_spec_clean(
        spec={"kind": "openai", "base_url": listener.url, "model": "m", "api_key_env": "PROVIDER_KEY"}
    )
    job = BackgroundJob.objects.create(
        project=project,
        kind="judge",
        number=1,
        created_by=users["admin"],
        params={"provider": spec, "method": "generate", "batch_size": 8},
    )

    assert judge_labels_job_execute(job_id=job.pk) == "succeeded"

    assert listener.auth and set(listener.auth) == {"Bearer sk-live-1"}
