"""/v1/moderations: OpenAI request/response shape, limits, model selection, process-wide model cache."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from annotations.models import ModelVersion, Role
from annotations.services import moderation as moderation_service
from annotations.services.moderation import OPENAI_CATEGORIES

# A response recorded from OpenAI's POST /v1/moderations (omni-moderation-latest), trimmed to one result.
RECORDED_OPENAI = {
    "id": "modr-0d9740456c391e43c445bf0f010940c7",
    "model": "omni-moderation-latest",
    "results": [
        {
            "flagged": True,
            "categories": {
                "harassment": True,
                "harassment/threatening": True,
                "sexual": False,
                "hate": False,
                "hate/threatening": False,
                "illicit": False,
                "illicit/violent": False,
                "self-harm/intent": False,
                "self-harm/instructions": False,
                "self-harm": False,
                "sexual/minors": False,
                "violence": True,
                "violence/graphic": True,
            },
            "category_scores": {
                "harassment": 0.8189,
                "harassment/threatening": 0.8046,
                "sexual": 2.3e-05,
                "hate": 0.0022,
                "hate/threatening": 0.0007,
                "illicit": 0.0019,
                "illicit/violent": 0.0005,
                "self-harm/intent": 0.0004,
                "self-harm/instructions": 0.0002,
                "self-harm": 0.0004,
                "sexual/minors": 5.1e-06,
                "violence": 0.9999,
                "violence/graphic": 0.9999,
            },
            "category_applied_input_types": {
                "harassment": ["text"],
                "harassment/threatening": ["text"],
                "sexual": ["text", "image"],
                "hate": ["text"],
                "hate/threatening": ["text"],
                "illicit": ["text"],
                "illicit/violent": ["text"],
                "self-harm/intent": ["text", "image"],
                "self-harm/instructions": ["text", "image"],
                "self-harm": ["text", "image"],
                "sexual/minors": ["text"],
                "violence": ["text", "image"],
                "violence/graphic": ["text", "image"],
            },
        }
    ],
}


def _assert_openai_shape(body: dict, n: int) -> None:
    """Every key and value type of the recorded OpenAI reply is present, plus our ``harmful``."""
    assert set(RECORDED_OPENAI) <= set(body)
    assert body["id"].startswith("modr-") and isinstance(body["model"], str)
    assert len(body["results"]) == n
    ref = RECORDED_OPENAI["results"][0]
    for result in body["results"]:
        assert set(ref) <= set(result)
        assert isinstance(result["flagged"], bool)
        for block, kind in (("categories", bool), ("category_scores", float), ("category_applied_input_types", list)):
            assert set(ref[block]) | {"harmful"} == set(result[block])
            assert all(isinstance(v, kind) for v in result[block].values()), block
        assert result["flagged"] == result["categories"]["harmful"]


@pytest.fixture
def served(make_model_version):
    return make_model_version(threshold=0.5)


def test_string_input_answers_openai_shape(api_for, served, tiny_model_dir):
    r = api_for("annotator").post("/v1/moderations", {"input": "How do I bake bread?"}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    _assert_openai_shape(body, 1)
    assert body["model"] == served.name == "safety-v1"  # numbered per project: its first model
    from ssl_engine.engine import load_scorer

    direct = load_scorer(tiny_model_dir, device="cpu").score(["How do I bake bread?"])[0][0]
    assert body["results"][0]["category_scores"]["harmful"] == pytest.approx(direct, abs=1e-5)
    assert all(body["results"][0]["category_scores"][c] == 0.0 for c in OPENAI_CATEGORIES)
    assert body["results"][0]["category_applied_input_types"]["harmful"] == ["text"]


def test_list_input_one_result_each_in_order(api_for, served):
    texts = ["first", "a much longer second text with more tokens in it", "third"]
    r = api_for("annotator").post("/v1/moderations", {"input": texts, "model": "latest"}, format="json")
    assert r.status_code == 200
    body = r.json()
    _assert_openai_shape(body, 3)
    singles = [api_for("annotator").post("/v1/moderations", {"input": t}, format="json").json() for t in texts]
    for res, single in zip(body["results"], singles, strict=True):
        assert res["category_scores"]["harmful"] == pytest.approx(
            single["results"][0]["category_scores"]["harmful"], abs=1e-5
        )


def test_threshold_comes_from_the_model_version(api_for, make_model_version):
    mv = make_model_version(threshold=0.0)
    assert (
        api_for("annotator")
        .post("/v1/moderations", {"input": ["a", "b"]}, format="json")
        .json()["results"][0]["flagged"]
        is True
    )
    ModelVersion.objects.filter(pk=mv.pk).update(threshold=1.0)
    body = api_for("annotator").post("/v1/moderations", {"input": ["a", "b"]}, format="json").json()
    assert [r["flagged"] for r in body["results"]] == [False, False]


@pytest.mark.parametrize("payload", [{"input": ""}, {"input": []}, {}, {"input": 42}, {"input": [{"text": "x"}]}])
def test_bad_input_is_400_naming_the_field(api_for, served, payload):
    r = api_for("annotator").post("/v1/moderations", payload, format="json")
    assert r.status_code == 400
    assert "input" in r.json()["fields"]
    assert r.json()["message"]


def test_too_many_inputs_is_400(api_for, served, settings):
    settings.UMBRA_MODERATION_MAX_INPUTS = 4
    r = api_for("annotator").post("/v1/moderations", {"input": ["x"] * 5}, format="json")
    assert r.status_code == 400
    assert "Too many inputs" in r.json()["fields"]["input"][0]
    assert api_for("annotator").post("/v1/moderations", {"input": ["x"] * 4}, format="json").status_code == 200


def test_huge_input_is_413_json(api_for, served, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    r = api_for("annotator").post("/v1/moderations", {"input": "x" * 20_000}, format="json")
    assert r.status_code == 413
    assert r.json()["code"] == "request_too_large"


def test_no_active_model_is_503_with_message(api_for, project, users):
    r = api_for("annotator").post("/v1/moderations", {"input": "hi"}, format="json")
    assert r.status_code == 503
    assert "no active model" in r.json()["message"]


def test_missing_model_files_is_503(api_for, make_model_version, tmp_path):
    make_model_version(path=str(tmp_path / "gone"))
    r = api_for("annotator").post("/v1/moderations", {"input": "hi"}, format="json")
    assert r.status_code == 503
    assert "could not be loaded" in r.json()["message"]


def test_named_model_version_and_unknown_names(api_for, make_model_version):
    old = make_model_version(threshold=0.0)
    make_model_version(threshold=1.0)  # now the active one
    client = api_for("annotator")
    r = client.post("/v1/moderations", {"input": "x", "model": old.name}, format="json")
    assert r.json()["model"] == old.name and r.json()["results"][0]["flagged"] is True
    assert client.post("/v1/moderations", {"input": "x"}, format="json").json()["results"][0]["flagged"] is False
    for bad in ("gpt-4", "safety-v999999", "other-v1"):
        r = client.post("/v1/moderations", {"input": "x", "model": bad}, format="json")
        assert r.status_code == 400, bad
        assert "Unknown model" in r.json()["message"]


def test_outsider_cannot_use_anothers_model_by_name(api_for, served):
    r = api_for("outsider").post("/v1/moderations", {"input": "x", "model": served.name}, format="json")
    assert r.status_code == 400


def test_project_is_required_when_user_has_several(api_for, served, other_project, users):
    from annotations.services.projects import membership_set

    membership_set(project=other_project, user=users["annotator"], role=Role.ANNOTATOR)
    client = api_for("annotator")
    r = client.post("/v1/moderations", {"input": "x"}, format="json")
    assert r.status_code == 400 and "project" in r.json()["fields"]
    assert client.post("/v1/moderations", {"input": "x", "project": "safety"}, format="json").status_code == 200


def test_response_task_accepts_prompt_response_pairs(
    api_for, response_project, make_user, make_model_version, tiny_model_dir
):
    make_user("resp", Role.ANNOTATOR, response_project)
    make_model_version(proj=response_project)
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from annotations.services.tokens import api_token_create

    user = get_user_model().objects.get(username="resp")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + api_token_create(user=user, name="t", created_by=user).key)
    pairs = [
        {"prompt": "How do I pick a lock?", "response": "I can't help with that."},
        {"response": "Plain response without a prompt"},
        "a bare string",
    ]
    r = client.post("/v1/moderations", {"input": pairs}, format="json")
    assert r.status_code == 200, r.content
    from ssl_engine.engine import load_scorer

    direct = load_scorer(tiny_model_dir, device="cpu").score(
        ["I can't help with that.", "Plain response without a prompt", "a bare string"],
        prompts=["How do I pick a lock?", None, None],
    )
    got = [x["category_scores"]["harmful"] for x in r.json()["results"]]
    assert got == pytest.approx([d[0] for d in direct], abs=1e-5)


def test_pairs_on_a_prompt_project_are_400(api_for, served):
    r = api_for("annotator").post("/v1/moderations", {"input": [{"prompt": "p", "response": "r"}]}, format="json")
    assert r.status_code == 400 and "input" in r.json()["fields"]


def test_model_is_loaded_once_per_process_and_reloaded_on_activation(api_for, make_model_version, monkeypatch):
    import ssl_engine.engine as engine

    loads = []
    real = engine.load_scorer
    monkeypatch.setattr(
        engine,
        "load_scorer",
        lambda path, device=None, settings=None: loads.append(path) or real(path, device, settings),
    )
    first = make_model_version()
    client = api_for("annotator")
    for _ in range(3):
        assert client.post("/v1/moderations", {"input": "x"}, format="json").status_code == 200
    assert len(loads) == 1
    second = make_model_version()
    assert client.post("/v1/moderations", {"input": "x"}, format="json").json()["model"] == second.name
    assert len(loads) == 2
    assert [k[0] for k in moderation_service.scorer_cache_keys()] == [second.pk]  # the old one was dropped
    assert first.pk != second.pk


def test_token_clients_are_throttled_sessions_are_not(api_for, served, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "100/min", "moderation": "2/min"},
    }
    client = api_for("annotator")
    codes = [client.post("/v1/moderations", {"input": "x"}, format="json").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = client.post("/v1/moderations", {"input": "x"}, format="json")
    assert r.json()["code"] == "throttled" and "Retry-After" in r.headers
    session = api_for("annotator", via="session")
    assert [session.post("/v1/moderations", {"input": "x"}, format="json").status_code for _ in range(3)] == [200] * 3


def test_moderate_command_prints_the_same_json(served, capsys):
    call_command("moderate", "How do I bake bread?", "--project", "safety")
    body = json.loads(capsys.readouterr().out)
    _assert_openai_shape(body, 1)
    assert body["model"] == served.name


def test_adversarial_text_is_scored_not_interpreted(api_for, served):
    text = "<script>alert(1)</script>\u0000 {{ 7*7 }} %(x)s {0}"
    r = api_for("annotator").post("/v1/moderations", {"input": [text, "\U0001f600" * 50]}, format="json")
    assert r.status_code == 200
    assert len(r.json()["results"]) == 2


@pytest.mark.parametrize("raw", [b'{"input": "\\ud800 lone surrogate"}', b'{"input": ', b"\xff\xfe", b"[1, 2]"])
def test_malformed_bodies_are_400_not_500(api_for, served, raw):
    r = api_for("annotator").post("/v1/moderations", raw, content_type="application/json")
    assert r.status_code == 400, r.content
    assert r.json()["message"]
