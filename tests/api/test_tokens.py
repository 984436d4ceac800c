"""API token lifecycle: shown once, hashed, Bearer/Token headers, last_used_at, revocation, who may manage whom."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotations.models import ApiToken, Role
from annotations.services.projects import membership_set


def _client(key: str | None = None, scheme: str = "Bearer") -> APIClient:
    c = APIClient()
    if key:
        c.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return c


def test_token_lifecycle(api_for, users):
    r = api_for("annotator", via="session").post("/api/tokens/create/", {"name": "laptop"}, format="json")
    assert r.status_code == 201
    key = r.json()["key"]
    token = ApiToken.objects.get(pk=r.json()["id"])
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest() and key not in token.key_hash
    assert key.startswith(token.prefix) and len(token.prefix) == 12
    assert token.last_used_at is None
    # the key is never shown again
    listed = api_for("annotator", via="session").get("/api/tokens/").json()["results"]
    assert all("key" not in t for t in listed) and key not in str(listed)
    for scheme in ("Bearer", "Token", "bearer"):
        assert _client(key, scheme).get("/api/projects/").status_code == 200, scheme
    token.refresh_from_db()
    assert token.last_used_at is not None
    r = _client(key).post(f"/api/tokens/{token.pk}/revoke/")
    assert r.status_code == 200 and r.json()["is_active"] is False
    r = _client(key).get("/api/projects/")
    assert r.status_code == 401 and r.json()["message"] == "Invalid, revoked or expired token."
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_last_used_is_written_at_most_once_a_minute(token_for, users):
    key = token_for("annotator")
    _client(key).get("/api/projects/")
    token = ApiToken.objects.get(user=users["annotator"])
    first = token.last_used_at
    _client(key).get("/api/projects/")
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=5))
    _client(key).get("/api/projects/")
    token.refresh_from_db()
    assert token.last_used_at > first - timedelta(minutes=1)


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer umb_nope", "Token not-a-token", "Bearer \u00e9"])
def test_bad_tokens_are_401_json(header, db):
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=header)
    r = c.get("/api/projects/")
    assert r.status_code == 401
    assert r.json()["message"]


def test_inactive_users_tokens_stop_working(token_for, users):
    key = token_for("annotator")
    users["annotator"].is_active = False
    users["annotator"].save()
    assert _client(key).get("/api/projects/").status_code == 401


def test_admin_creates_token_for_member_of_only_their_projects(api_for, users, other_project):
    admin = api_for("admin", via="session")
    r = admin.post("/api/tokens/create/", {"name": "annotator bot", "user": "ann"}, format="json")
    assert r.status_code == 201 and r.json()["user"] == "ann" and r.json()["created_by"] == "adm"
    assert _client(r.json()["key"]).get("/api/projects/").json()[0]["role"] == Role.ANNOTATOR
    # once the annotator also works in a project this admin does not run, minting for them is refused
    membership_set(project=other_project, user=users["annotator"], role=Role.ANNOTATOR)
    r = admin.post("/api/tokens/create/", {"name": "x", "user": "ann"}, format="json")
    assert r.status_code == 403
    # ...but revoking their tokens is still allowed (it only removes access)
    token = ApiToken.objects.filter(user=users["annotator"]).first()
    assert admin.post(f"/api/tokens/{token.pk}/revoke/").status_code == 200


def test_non_admins_cannot_create_for_others(api_for, users):
    for role in ("annotator", "reviewer", "outsider"):
        r = api_for(role, via="session").post("/api/tokens/create/", {"name": "x", "user": "adm"}, format="json")
        assert r.status_code == 403, role
    r = api_for("admin", via="session").post("/api/tokens/create/", {"name": "x", "user": "out"}, format="json")
    assert r.status_code == 403
    r = api_for("admin", via="session").post("/api/tokens/create/", {"name": "x", "user": "ghost"}, format="json")
    assert r.status_code == 400 and "user" in r.json()["fields"]


def test_outsider_cannot_see_or_revoke(api_for, token_for, users):
    token_for("annotator")
    token = ApiToken.objects.get(user=users["annotator"])
    out = api_for("outsider", via="session")
    assert out.post(f"/api/tokens/{token.pk}/revoke/").status_code == 404
    assert token.pk not in [t["id"] for t in out.get("/api/tokens/").json()["results"]]
    token.refresh_from_db()
    assert token.revoked_at is None


def test_token_name_is_required(api_for):
    r = api_for("annotator", via="session").post("/api/tokens/create/", {"name": "  "}, format="json")
    assert r.status_code == 400 and r.json()["message"]


def test_token_pages(client_for, users, token_for):
    """HTML pages: own tokens (create shows the key once, revoke) and the project admin's member tokens."""
    c = client_for("annotator")
    r = c.get("/tokens/")
    assert r.status_code == 200
    r = c.post("/tokens/", {"name": "my script"})
    assert r.status_code == 200
    token = ApiToken.objects.get(user=users["annotator"], name="my script")
    body = r.content.decode()
    assert token.prefix in body and "umb_" in body
    assert "Content-Security-Policy" in r.headers
    assert c.get("/tokens/").content.decode().count(token.prefix) == 1  # listed, but the key is gone
    r = c.post(f"/tokens/{token.pk}/revoke/")
    assert r.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    admin = client_for("admin")
    assert admin.get("/p/safety/tokens/").status_code == 200
    r = admin.post("/p/safety/tokens/", {"name": "bot", "user": users["reviewer"].pk})
    assert r.status_code == 200 and ApiToken.objects.filter(user=users["reviewer"], name="bot").exists()
    assert client_for("reviewer").get("/p/safety/tokens/").status_code == 403
    assert client_for("outsider").get("/p/safety/tokens/").status_code == 404
    assert client_for(None).get("/tokens/").status_code == 302
    assert timezone.now()


def test_an_expired_token_stops_working(users, project):
    from annotations.services.tokens import api_token_create

    issued = api_token_create(
        user=users["annotator"], name="short-lived", created_by=users["annotator"], expires_in_days=1
    )
    assert issued.token.expires_at is not None
    assert _client(issued.key).get("/api/projects/").status_code == 200
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    r = _client(issued.key).get("/api/projects/")
    assert r.status_code == 401 and "expired" in r.json()["message"]


def test_a_read_only_token_reads_and_scores_but_changes_nothing(users, project, make_model_version):
    from annotations.models import Item
    from annotations.services.tokens import api_token_create

    make_model_version()
    item = Item.objects.create(project=project, text="read only", content_hash="ro", split="seed")
    key = api_token_create(user=users["annotator"], name="dashboard", created_by=users["annotator"], scope="read").key
    client = _client(key)
    assert client.get(f"/api/projects/{project.slug}/items/").status_code == 200
    assert client.post("/v1/moderations", {"input": "hello", "project": project.slug}, format="json").status_code == 200
    label = client.post(
        f"/api/projects/{project.slug}/items/{item.pk}/annotations/", {"label": "harmful"}, format="json"
    )
    assert label.status_code == 403 and "read-only" in label.json()["message"]
    assert client.post("/api/tokens/create/", {"name": "escalate"}, format="json").status_code == 403
    assert not item.annotations.exists()


def test_token_expiry_and_scope_are_validated_and_listed(api_for):
    client = api_for("annotator", via="session")
    bad = client.post("/api/tokens/create/", {"name": "x", "expires_in_days": 0}, format="json")
    assert bad.status_code == 400 and "expires_in_days" in bad.json()["fields"]
    ok = client.post("/api/tokens/create/", {"name": "ci", "expires_in_days": 30, "scope": "read"}, format="json")
    assert ok.status_code == 201 and ok.json()["scope"] == "read" and ok.json()["expires_at"]
    page = client.get("/tokens/").content.decode()
    assert "Read only" in page and "active until" in page
