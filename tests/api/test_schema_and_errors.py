"""OpenAPI schema validity, the docs page under the strict CSP, JSON errors, item filters and pagination."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

from annotations.models import Item


def test_schema_validates_without_warnings(db, tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    for path in (
        "/v1/moderations",
        "/api/projects/{slug}/items/",
        "/api/projects/{slug}/rounds/start/",
        "/api/tokens/create/",
    ):
        assert f"  {path}:" in text, path
    assert "tokenAuth" in text and "scheme: bearer" in text


def test_schema_endpoint_serves_openapi(client):
    r = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    assert r.json()["openapi"].startswith("3.")


def test_docs_page_has_no_inline_script_or_style_and_only_local_assets(client):
    r = client.get("/api/docs/")
    assert r.status_code == 200
    html = r.content.decode()
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "<style" not in html and "style=" not in html
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert srcs and all(s.startswith("/") for s in srcs), srcs  # nothing from a CDN
    for src in srcs:
        if src.startswith("/static/"):
            assert finders.find(src.removeprefix("/static/")), src
    init = [s for s in srcs if "script=" in s][0]
    js = client.get(init.replace("&amp;", "&"))
    assert js.status_code == 200 and js["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in js.content.decode()


@pytest.fixture
def items(project):
    make = Item.objects.create
    rows = [make(project=project, text=f"pool text {i}", content_hash=f"p{i}", split="pool") for i in range(7)]
    rows.append(make(project=project, text="Bread recipe", content_hash="s1", split="seed", human_label="harmful"))
    rows.append(make(project=project, text="bad bread", content_hash="s2", split="seed", excluded=True))
    return rows


def test_items_filters_and_cursor_pagination(api_for, items):
    api = api_for("annotator")
    seen, url = [], "/api/projects/safety/items/?split=pool&page_size=3"
    while url:
        page = api.get(url).json()
        seen += [r["id"] for r in page["results"]]
        assert len(page["results"]) <= 3
        url = page["next"]
    assert seen == [i.pk for i in items[:7]]
    assert [r["text"] for r in api.get("/api/projects/safety/items/?q=BREAD").json()["results"]] == [
        "Bread recipe",
        "bad bread",
    ]
    assert [r["text"] for r in api.get("/api/projects/safety/items/?label_state=harmful").json()["results"]] == [
        "Bread recipe"
    ]
    assert len(api.get("/api/projects/safety/items/?label_state=unlabeled").json()["results"]) == 7
    assert len(api.get("/api/projects/safety/items/?label_state=excluded").json()["results"]) == 1


@pytest.mark.parametrize(
    "query,field", [("split=nope", "split"), ("label_state=maybe", "label_state"), ("cursor=garbage", None)]
)
def test_bad_query_params_are_400_or_404_json(api_for, items, query, field):
    r = api_for("annotator").get(f"/api/projects/safety/items/?{query}")
    assert r.status_code in (400, 404)
    body = r.json()
    assert body["message"]
    if field:
        assert r.status_code == 400 and field in body["fields"]


def test_validation_errors_name_the_fields(api_for, items):
    r = api_for("annotator").post(
        f"/api/projects/safety/items/{items[0].pk}/annotations/", {"label": "evil", "note": "x\x00y"}, format="json"
    )
    assert r.status_code == 400
    body = r.json()
    assert set(body["fields"]) == {"label", "note"} and "label" in body["message"]


def test_service_errors_are_400_with_message(api_for, items):
    r = api_for("annotator").post(
        f"/api/projects/safety/items/{items[0].pk}/annotations/",
        {"label": "harmful", "category": "astrology"},
        format="json",
    )
    assert r.status_code == 400 and "Unknown harm category" in r.json()["message"]


def test_annotation_create_is_idempotent_and_labels_the_item(api_for, items):
    api = api_for("annotator")
    url = f"/api/projects/safety/items/{items[0].pk}/annotations/"
    first = api.post(url, {"label": "harmful", "category": "violence", "client_token": "k1"}, format="json")
    again = api.post(url, {"label": "harmful", "category": "violence", "client_token": "k1"}, format="json")
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert api.get(f"/api/projects/safety/items/{items[0].pk}/").json()["human_label"] == "harmful"
    undo = api.post("/api/projects/safety/annotations/undo/")
    assert undo.status_code == 200 and undo.json()["kind"] == "undo"
    assert api.get(f"/api/projects/safety/items/{items[0].pk}/").json()["human_label"] == ""


@pytest.mark.parametrize(
    "raw,ctype",
    [(b"{not json", "application/json"), (b"a=b", "application/x-www-form-urlencoded"), (b"[]", "application/json")],
)
def test_malformed_or_unsupported_bodies_are_4xx_json(api_for, items, raw, ctype):
    r = api_for("annotator").post(f"/api/projects/safety/items/{items[0].pk}/annotations/", raw, content_type=ctype)
    assert r.status_code in (400, 415)
    assert r.json()["message"]


def test_huge_body_is_413_on_any_endpoint(api_for, items, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    r = api_for("annotator").post(
        f"/api/projects/safety/items/{items[0].pk}/annotations/",
        {"label": "harmful", "note": "x" * 5000},
        format="json",
    )
    assert r.status_code == 413 and r.json()["code"] == "request_too_large"


def test_wrong_method_and_unknown_round_are_json(api_for, items):
    api = api_for("admin")
    r = api.delete("/api/projects/safety/items/")
    assert r.status_code == 405 and r.json()["message"]
    r = api.get("/api/projects/safety/rounds/999999/predictions/")
    assert r.status_code == 404 and r.json()["message"]


def test_round_start_reports_service_errors_with_field(api_for, items):
    r = api_for("admin").post(
        "/api/projects/safety/rounds/start/", {"algorithm": "fixmatch", "config": {"no_such_knob": 1}}, format="json"
    )
    assert r.status_code == 400
    assert r.json()["message"]
