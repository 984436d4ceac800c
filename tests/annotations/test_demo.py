"""The shipped demo: accounts in each role, two projects, synthetic data; idempotent."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from annotations.models import Item, Membership


@pytest.fixture(autouse=True)
def _private_var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"  # demo_setup writes the passwords file there


@pytest.mark.django_db
def test_demo_setup_creates_accounts_projects_and_data(capsys, monkeypatch):
    monkeypatch.setenv("UMBRA_DEMO_ANNOTATOR_PASSWORD", "demo-annotator-pw-1")
    call_command("demo_setup")
    out = capsys.readouterr().out
    assert "passwords are shown only this once" in out and "demo-annotator-pw-1" in out
    assert set(Membership.objects.values_list("user__username", "role")) == {
        ("annotator", "annotator"),
        ("reviewer", "reviewer"),
        ("admin", "admin"),
    }
    prompts = Item.objects.filter(project__slug="demo-prompts")
    assert prompts.filter(split="pool").count() >= 150
    assert prompts.filter(split="seed", human_label="harmful").exists()
    assert prompts.filter(split="seed", human_label="unharmful").exists()
    assert Item.objects.filter(project__slug="demo-responses").exclude(prompt="").count() >= 10
    before = Item.objects.count()
    call_command("demo_setup")
    assert Item.objects.count() == before
    assert "passwords unchanged" in capsys.readouterr().out
    client = Client()
    # Through the login page: the login throttle (django-axes) needs the request.
    login = client.post(reverse("login"), {"username": "annotator", "password": "demo-annotator-pw-1"})
    assert login.status_code == 302
    page = client.get(reverse("annotations:project_dashboard", kwargs={"slug": "demo-prompts"}))
    assert page.status_code == 200 and b"Demo: prompt harmfulness" in page.content


@pytest.mark.django_db
def test_demo_passwords_are_written_to_a_private_file_and_named_by_the_ready_banner(tmp_path, settings, capsys):
    """Issue 14.18: the passwords scrolled away under the server output."""
    import importlib.util
    import stat
    from pathlib import Path

    settings.VAR_DIR = tmp_path / "var"
    call_command("demo_setup")
    out = capsys.readouterr().out
    path = tmp_path / "var" / "demo-passwords.txt"
    assert f"Passwords written to {path}" in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [line.split() for line in path.read_text().splitlines() if not line.startswith("#")]
    assert [name for name, _ in lines] == ["annotator", "reviewer", "admin"]
    client = Client()
    login = client.post(reverse("login"), {"username": "admin", "password": lines[2][1]})
    assert login.status_code == 302  # the written password works

    spec = importlib.util.spec_from_file_location("ready_banner", Path(settings.BASE_DIR) / "scripts/ready_banner.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    block = module.banner("http://127.0.0.1:8000/", tmp_path / "var").splitlines()
    assert "Umbra is ready: http://127.0.0.1:8000/" in block[2]
    assert any("annotator, reviewer, admin" in line for line in block)
    assert any(f"{path} (mode 0600" in line for line in block)
    assert len(block) <= 8  # short


@pytest.mark.django_db
def test_readme_moderation_curl_works_verbatim_for_a_demo_account(settings, tmp_path, tiny_model_dir):
    """Issue 14.18: README's curl failed with 400 for every demo account (they belong to two projects)."""
    import json
    import re
    import shlex
    from pathlib import Path

    from rest_framework.test import APIClient

    from annotations.models import ModelVersion, Project, TrainingRound
    from annotations.services.tokens import api_token_create

    settings.VAR_DIR = tmp_path / "var"
    call_command("demo_setup")
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    block = re.search(r"```bash\n((?:#[^\n]*\n)*curl -s http://127\.0\.0\.1:8000/v1/moderations.*?)```", readme, re.S)
    command = " ".join(line for line in block.group(1).splitlines() if not line.startswith("#")).replace("\\", " ")
    args = shlex.split(command)
    body = json.loads(args[args.index("-d") + 1])
    project = Project.objects.get(slug="demo-prompts")
    rnd = TrainingRound.objects.create(project=project, algorithm="supervised", status="succeeded", number=1)
    ModelVersion.objects.create(
        project=project,
        training_round=rnd,
        number=1,
        is_active=True,
        threshold=0.5,
        path=tiny_model_dir,
    )
    from django.contrib.auth import get_user_model

    client = APIClient()
    for username in ("annotator", "reviewer", "admin"):
        user = get_user_model().objects.get(username=username)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token_create(user=user, name='cli', created_by=user).key}")
        response = client.post("/v1/moderations", body, format="json")
        assert response.status_code == 200, (username, response.content)
        assert len(response.json()["results"]) == 2
