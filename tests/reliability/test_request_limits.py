"""Issue 15, defect 12: import uploads had no size limit, and a chunked body was read as empty.

The chunked case goes through a real gunicorn (it decodes ``Transfer-Encoding: chunked``;
Django's test client cannot send such a body).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotations.models import BackgroundJob
from umbra_testkit import test_db_url

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024


def _uploads(settings) -> list:
    folder = Path(settings.MEDIA_ROOT) / "uploads"
    return list(folder.iterdir()) if folder.exists() else []


@pytest.mark.django_db
def test_an_upload_over_the_limit_is_a_413_and_stores_nothing(
    project, users, settings, django_capture_on_commit_callbacks
):
    settings.UMBRA_UPLOAD_MAX_BYTES = 1 * MIB
    client = Client()
    client.force_login(users["admin"])
    line = b'{"text": "' + b"x" * 1000 + b'"}\n'
    big = SimpleUploadedFile("big.jsonl", line * (2 * MIB // len(line)), content_type="application/x-ndjson")
    response = client.post("/p/safety/import/", {"file": big, "split": "pool"})
    assert response.status_code == 413 and "the limit is 1,048,576 bytes" in response.content.decode()
    assert not BackgroundJob.objects.exists() and _uploads(settings) == []
    small = SimpleUploadedFile("small.jsonl", line * 10, content_type="application/x-ndjson")
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post("/p/safety/import/", {"file": small, "split": "pool"}).status_code == 302
    assert BackgroundJob.objects.get().kind == "import"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gunicorn(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": test_db_url(),
        "DJANGO_DEBUG": "0",
        "UMBRA_DEMO": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "UMBRA_UPLOAD_MAX_BYTES": str(MIB),
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "moderation_app.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{url}/accounts/login/", timeout=10)
            break
        except requests.RequestException:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "gunicorn.log").read_text()[-3000:]) from None
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def _chunks(total: int, size: int = 64 * 1024):
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield b"x" * n
        sent += n


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_without_content_length_is_measured(gunicorn, users):
    from annotations.services.tokens import api_token_create

    key = api_token_create(user=users["annotator"], name="chunked", created_by=users["annotator"]).key
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    # 10 MB, chunked (requests sends a generator that way): refused, not read as an empty body.
    big = requests.post(f"{gunicorn}/api/tokens/create/", data=_chunks(10 * MIB), headers=headers, timeout=60)
    assert big.status_code == 413 and big.json()["code"] == "request_too_large"
    # A small chunked body arrives whole.
    small = requests.post(
        f"{gunicorn}/api/tokens/create/", data=iter([b'{"name": ', b'"via chunks"}']), headers=headers, timeout=60
    )
    assert small.status_code == 201, small.text[:300]
    assert small.json()["name"] == "via chunks"
