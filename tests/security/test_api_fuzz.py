"""Property-based fuzzing of the JSON API: never a 500, always a JSON 4xx with a message.

Bodies: random bytes, invalid UTF-8, NUL bytes, huge and non-finite numbers, deep nesting,
wrong types, missing and extra fields, for annotation submit, round start, moderation and
token creation. A valid body may succeed (2xx); anything else must be refused cleanly.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from annotations.models import Item, ModelVersion, TrainingRound
from annotations.services.hashing import content_hash

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["\x00", "harmful", "unharmful", "supervised", "multimatch", "safety", "", "\ud800x"])
)
values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=10
)

FIELDS = {
    "annotation": ["label", "category", "note", "client_token"],
    "round": ["algorithm", "config", "seed", "kind"],
    "moderation": ["input", "model", "project"],
    "token": ["name", "expires_at", "user"],
}


def _dump(obj) -> bytes:
    # json (not orjson): NaN/Infinity and lone surrogates come out as the invalid JSON they are.
    return json.dumps(obj, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


def bodies(kind: str):
    objects = st.fixed_dictionaries({}, optional={**{f: values for f in FIELDS[kind]}, "extra": values, "\x00": values})
    return st.one_of(
        objects.map(_dump),
        values.map(_dump),
        st.binary(max_size=200),
        st.binary(max_size=60).map(lambda b: b'{"label": "' + b + b'"}'),  # invalid UTF-8 inside a string
        st.integers(min_value=1, max_value=3000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(min_value=1, max_value=3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    )


@pytest.fixture
def api(project, users, tiny_model_dir):
    item = Item.objects.create(
        project=project, text="fuzz me", split=Item.Split.SEED, content_hash=content_hash("fuzz me", "")
    )
    for text, label in (("bad one", "harmful"), ("good one", "unharmful")):
        Item.objects.create(
            project=project, text=text, split=Item.Split.SEED, human_label=label, content_hash=content_hash(text, "")
        )
    rnd = TrainingRound.objects.create(project=project, algorithm="multimatch", status="succeeded")
    ModelVersion.objects.create(project=project, training_round=rnd, path=tiny_model_dir, is_active=True)
    client = Client()
    client.force_login(users["admin"])
    return {"client": client, "item": item.pk}


def _post(api, url: str, body: bytes, content_type: str = "application/json"):
    response = api["client"].post(url, data=body, content_type=content_type)
    assert response.status_code < 500, (url, body[:200], response.status_code, response.content[:300])
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json"), response.content[:200]
        payload = response.json()
        assert isinstance(payload.get("message"), str) and payload["message"], payload
        assert "Traceback" not in payload["message"]
    return response


DEEP = b"[" * 100_000 + b"]" * 100_000


@FUZZ
@given(body=bodies("annotation"))
@example(body=DEEP)
@example(body=b'{"label": "harmful\x00", "note": "\x00"}')
@example(body=b'{"label": "harmful", "note": "\xff\xfe"}')
@example(body=b'{"label": "harmful", "category": 1e400}')
def test_annotation_submit_never_500s(api, body):
    _post(api, f"/api/projects/safety/items/{api['item']}/annotations/", body)


@FUZZ
@given(body=bodies("round"))
@example(body=DEEP)
@example(body=b'{"algorithm": "supervised", "seed": 100000000000000000000000000000000}')
@example(body=b'{"algorithm": "supervised", "config": {"epochs": 1e308, "batch_size": -1}}')
@example(body=b'{"algorithm": "supervised", "config": {"epochs": NaN}}')
def test_round_start_never_500s(api, body):
    response = _post(api, "/api/projects/safety/rounds/start/", body)
    TrainingRound.objects.filter(status="queued").delete()  # a valid start must not block the next example
    assert response.status_code in (201, 400, 413, 415) or response.status_code == 409


@FUZZ
@given(body=bodies("moderation"))
@example(body=DEEP)
@example(body=b'{"input": "\x00\x00", "project": "safety"}')
@example(body=b'{"input": ["a", {"b": 1}], "project": "safety"}')
@example(body=b'{"input": "' + b"x" * 100_000 + b'", "project": "safety"}')
def test_moderation_never_500s(api, body):
    _post(api, "/v1/moderations", body)


@FUZZ
@given(body=bodies("token"))
@example(body=DEEP)
@example(body=b'{"name": "\x00"}')
@example(body=b'{"name": "' + b"n" * 5000 + b'"}')
def test_token_create_never_500s(api, body):
    _post(api, "/api/tokens/create/", body)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/json; charset=latin-1"],
)
def test_other_content_types_are_refused_as_json(api, content_type):
    data = "label=harmful" if "form" in content_type else '{"label": "harmful"}'
    if content_type == "multipart/form-data":
        content_type = "multipart/form-data; boundary=xyz"
        data = "--xyz\r\nContent-Disposition: form-data; name=label\r\n\r\nharmful\r\n--xyz--\r\n"
    _post(api, f"/api/projects/safety/items/{api['item']}/annotations/", data.encode(), content_type)


form_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["\x00", "[" * 5000, '{"a":' * 3000, "1e999", "-1", "99999999999999999999999", "{}", "NaN"]),
)


@FUZZ
@given(
    data=st.dictionaries(
        st.sampled_from(
            [
                "algorithm",
                "config",
                "seed",
                "kind",
                "item",
                "label",
                "category",
                "client_token",
                "backtranslation_models",
                "name",
                "\x00",
            ]
        ),
        form_text,
        max_size=6,
    )
)
@example(data={"algorithm": "supervised", "config": "[" * 5000, "seed": "0"})
@example(data={"backtranslation_models": "[" * 5000})
def test_html_forms_never_500(api, data):
    """The same hostile values through the HTML forms (round start, augment start, labeling, tokens)."""
    client = api["client"]
    for url in ("/p/safety/rounds/start/", "/p/safety/augment/start/", "/p/safety/label/", "/tokens/"):
        response = client.post(url, data)
        assert response.status_code < 500, (url, {k: v[:80] for k, v in data.items()}, response.status_code)
    TrainingRound.objects.filter(status="queued").delete()
