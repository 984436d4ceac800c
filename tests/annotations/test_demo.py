"""The shipped demo: accounts in each role, two projects, synthetic data; idempotent."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from annotations.models import Item, Membership


@pytest.mark.django_db
def test_demo_setup_creates_accounts_projects_and_data(capsys, monkeypatch):
    monkeypatch.setenv("UMBRA_DEMO_ANNOTATOR_PASSWORD", "demo-annotator-pw-1")
    call_command("demo_setup")
    out = capsys.readouterr().out
    assert "passwords are shown only this once" in out and "demo-annotator-pw-1" in out
    assert set(Membership.objects.values_list("user__username", "role")) == {
        ("annotator", "annotator"), ("reviewer", "reviewer"), ("admin", "admin")}
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
