"""Faults: the broker down when a round starts, the database connection lost mid-import.

Covered elsewhere and not repeated here: a SIGKILLed worker mid-round (tests/rounds/
test_worker_kill.py, extended in test_worker_kill_serving.py: the old model keeps serving) and
an unwritable artifact folder (tests/rounds/test_tasks.py::
test_unwritable_artifact_dir_marks_failed_with_the_reason).
"""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time

import orjson
import pytest
from django.db import connection
from django.test import Client

from annotations.models import BackgroundJob, Item, TrainingRound, WeakLabel

pytestmark = pytest.mark.django_db(transaction=True)

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused at once


@pytest.fixture
def broker_down(monkeypatch):
    """Point the Celery app at a closed port (the shared Redis itself is left alone)."""
    from moderation_app.celery import app

    def fresh_connections():
        app._pool = None
        app.amqp._producer_pool = None

    # Celery reads CELERY_BROKER_URL from the environment before its own config.
    monkeypatch.setenv("CELERY_BROKER_URL", CLOSED_PORT_BROKER)
    fresh_connections()
    yield
    monkeypatch.undo()
    fresh_connections()


def _labels(project):
    from annotations.services.imports import items_import

    items_import(
        project=project,
        fmt="jsonl",
        split=Item.Split.SEED,
        stream=io.BytesIO(
            b'{"text": "how to make a bomb", "label": "harmful"}\n{"text": "bake a cake", "label": "unharmful"}\n'
        ),
    )


def test_round_start_with_the_broker_down_fails_cleanly_and_leaves_nothing_queued(broker_down, project, users):
    _labels(project)
    client = Client()
    client.force_login(users["admin"])
    started = time.monotonic()
    response = client.post("/p/safety/rounds/start/", {"algorithm": "supervised", "config": "{}", "seed": "0"})
    assert time.monotonic() - started < 30
    assert response.status_code == 503
    assert "task queue" in response.content.decode().lower()
    # Decision: the start fails atomically from the user's point of view. The round row was
    # committed before the enqueue (the enqueue must follow the commit), so it is marked failed
    # with the reason instead of lingering as queued, and it no longer blocks the next start.
    assert not TrainingRound.objects.filter(status__in=["queued", "running"]).exists()
    failed = TrainingRound.objects.get()
    assert failed.status == "failed" and "task queue" in failed.error.lower()


def test_api_round_start_with_the_broker_down_is_a_json_503(broker_down, project, users):
    from rest_framework.test import APIClient

    _labels(project)
    client = APIClient()
    client.force_authenticate(users["admin"])
    response = client.post("/api/projects/safety/rounds/start/", {"algorithm": "supervised"}, format="json")
    assert response.status_code == 503
    assert "task queue" in response.json()["message"].lower()
    assert not TrainingRound.objects.filter(status__in=["queued", "running"]).exists()


def _admin_client(users) -> Client:
    client = Client()
    client.force_login(users["admin"])
    return client


def _assert_failed_with_the_reason(kind: str) -> BackgroundJob:
    job = BackgroundJob.objects.get(kind=kind)
    assert job.status == "failed" and "task queue" in job.error.lower() and job.finished_at
    return job


def test_import_upload_with_the_broker_down_is_a_page_message_and_leaves_no_file(broker_down, project, users, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("items.jsonl", b'{"text": "one"}\n', content_type="application/x-ndjson")
    response = _admin_client(users).post("/p/safety/import/", {"file": upload, "split": "pool"})
    assert response.status_code == 503
    assert "could not reach the task queue" in response.content.decode().lower()
    _assert_failed_with_the_reason("import")
    uploads = settings.MEDIA_ROOT / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())  # the stored upload was removed


def test_export_start_with_the_broker_down_is_a_json_503(broker_down, project, users):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(users["admin"])
    response = client.post("/api/projects/safety/exports/start/", {"kind": "labels_jsonl"}, format="json")
    assert response.status_code == 503 and response.json()["code"] == "unavailable"
    assert "task queue" in response.json()["message"].lower()
    _assert_failed_with_the_reason("export")


def test_augment_start_with_the_broker_down_is_a_page_message(broker_down, project, users):
    _labels(project)
    response = _admin_client(users).post(
        "/p/safety/augment/start/", {"method": "word_swap", "per_item": "1", "items": "seed", "provider_kind": "local"}
    )
    assert response.status_code == 503 and "task queue" in response.content.decode().lower()
    _assert_failed_with_the_reason("augment")


def test_refine_start_with_the_broker_down_fails_cleanly_and_blocks_nothing(broker_down, project, users, monkeypatch):
    _labels(project)
    WeakLabel.objects.bulk_create(
        [WeakLabel(item=i, source="imported", label="harmful") for i in Item.objects.filter(project=project)]
    )
    body = {"source": "imported", "iterations": "2", "variant": "robust"}
    client = _admin_client(users)
    response = client.post("/p/safety/refine/start/", body)
    assert response.status_code == 503 and "task queue" in response.content.decode().lower()
    _assert_failed_with_the_reason("refine")
    # Nothing stays queued: a round and a new refinement both start once the broker is back.
    monkeypatch.undo()
    from moderation_app.celery import app

    app._pool = None
    app.amqp._producer_pool = None
    assert (
        client.post("/p/safety/rounds/start/", {"algorithm": "supervised", "config": "{}", "seed": "0"}).status_code
        == 302
    )
    assert client.post("/p/safety/refine/start/", body).status_code == 302
    assert set(BackgroundJob.objects.filter(kind="refine").values_list("status", flat=True)) == {"failed", "queued"}


def _import_command(project_slug: str, path, db_url: str):
    import os

    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_DEBUG": "0", "UMBRA_DEMO": "0"}
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "import_items",
            "--project",
            project_slug,
            "--file",
            str(path),
            "--split",
            "pool",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _db_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def test_database_connection_killed_mid_import_leaves_nothing_and_the_command_says_so(project, tmp_path):
    """The import's own server connection is terminated mid-COPY (pg_terminate_backend).

    Restarting the shared PostgreSQL server would break the other suites running on it, so the
    fault is delivered to the import's backend alone: to the import it is the same event (its
    connection drops mid-transaction).
    """
    n = 200_000
    path = tmp_path / "big.jsonl"
    with path.open("wb") as out:
        for i in range(n):
            out.write(orjson.dumps({"text": f"import fault item {i} " + "x" * 200}) + b"\n")
    proc = _import_command("safety", path, _db_url())
    killed = []

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND (query ILIKE 'COPY%%' OR query ILIKE 'INSERT INTO \"annotations_item\"%%'"
                    " OR query ILIKE '%%annotations_item%%') AND state <> 'idle'"
                )
                pids = [row[0] for row in cur.fetchall()]
                for pid in pids:
                    cur.execute("SELECT pg_terminate_backend(%s)", [pid])
                if pids:
                    killed.extend(pids)
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=killer)
    thread.start()
    output, _ = proc.communicate(timeout=300)
    thread.join()
    connection.close()
    assert killed, f"the import finished before the fault could be injected:\n{output[-2000:]}"
    assert proc.returncode != 0, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    assert "connection" in output.lower() and "nothing was imported" in output.lower(), output[-2000:]
    assert Item.objects.filter(project=project).count() == 0
