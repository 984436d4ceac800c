"""Exports: labels JSONL with provenance, the Hugging Face layout, model .tar.gz reproducing served scores."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotations.models import BackgroundJob, Item, Prediction, WeakLabel
from annotations.services.label_exports import export_job_start, label_records
from annotations.services.labels import annotation_submit, prediction_review
from annotations.tasks.exports import export_job_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def labeled(project, users, make_model_version):
    """Human, reviewed-pseudo, refined and pseudo labels in one project."""
    make = Item.objects.create
    seed = make(project=project, text="how to make a weapon", content_hash="a", split="seed", external_id="ext-1")
    test = make(project=project, text="nice weather", content_hash="b", split="test")
    pool_pseudo = make(project=project, text="pool pseudo", content_hash="c", split="pool")
    pool_refined = make(project=project, text="pool refined", content_hash="d", split="pool")
    pool_reviewed = make(project=project, text="pool reviewed", content_hash="e", split="pool")
    make(project=project, text="pool nothing", content_hash="f", split="pool", excluded=True)
    annotation_submit(item=seed, user=users["annotator"], role="annotator", label="harmful", category="violence")
    annotation_submit(item=test, user=users["reviewer"], role="reviewer", label="unharmful")
    mv = make_model_version()
    rnd = mv.training_round
    for item, p in ((pool_pseudo, 0.9), (pool_refined, 0.2), (pool_reviewed, 0.7)):
        Prediction.objects.create(
            item=item,
            training_round=rnd,
            p_harmful=p,
            head_probs=[p, p],
            pseudo_label="harmful" if p >= 0.5 else "unharmful",
            used=True,
        )
    refinement = BackgroundJob.objects.create(project=project, kind="refine", status="succeeded", number=1)
    WeakLabel.objects.create(item=pool_refined, source="refined", job=refinement, label="harmful", score=0.8)
    pred = Prediction.objects.get(item=pool_reviewed)
    prediction_review(prediction=pred, user=users["reviewer"], role="reviewer", action="correct")
    return {"seed": seed, "test": test, "round": rnd, "mv": mv}


def test_label_records_carry_provenance(labeled, project):
    recs = {r["text"]: r for r in label_records(project=project)}
    assert set(recs) == {"how to make a weapon", "nice weather", "pool pseudo", "pool refined", "pool reviewed"}
    human = recs["how to make a weapon"]
    assert human["id"] == "ext-1" and human["label"] == "harmful" and human["category"] == "violence"
    assert human["provenance"]["type"] == "human" and human["provenance"]["by"] == ["ann"]
    assert human["provenance"]["at"] and human["task"] == "prompt" and human["prompt"] is None
    reviewed = recs["pool reviewed"]
    assert reviewed["label"] == "unharmful"  # the reviewer flipped the pseudo-label
    assert reviewed["provenance"] | {} == reviewed["provenance"] and reviewed["provenance"]["type"] == "human"
    assert reviewed["provenance"]["kind"] == "correct" and reviewed["provenance"]["round"] == labeled["round"].pk
    refined = recs["pool refined"]
    assert refined["label"] == "harmful" and refined["provenance"]["type"] == "refined"
    assert refined["provenance"]["refinement_job"] and refined["provenance"]["round"] is None
    pseudo = recs["pool pseudo"]
    assert pseudo["provenance"] == pseudo["provenance"] | {"type": "pseudo", "round": labeled["round"].pk}
    assert pseudo["provenance"]["p_harmful"] == pytest.approx(0.9)
    only_human = list(label_records(project=project, include=("human",)))
    assert {r["provenance"]["type"] for r in only_human} == {"human"} and len(only_human) == 3
    # the shared data format's fields are all there
    assert {"id", "text", "prompt", "task", "label", "category", "source"} <= set(human)


def _run_job(api, kind: str) -> dict:
    r = api.post("/api/projects/safety/exports/start/", {"kind": kind}, format="json")
    assert r.status_code == 202, r.content
    job = r.json()
    assert job["status"] == "queued" and job["download_url"] is None
    export_job_run(job["id"])  # what the worker runs (called directly, not eagerly)
    detail = api.get(f"/api/projects/safety/exports/{job['id']}/").json()
    assert detail["status"] == "succeeded", detail
    assert detail["download_url"].endswith(f"/api/projects/safety/exports/{job['id']}/download/")
    return detail


def test_jsonl_export_job_and_streamed_download(api_for, labeled):
    api = api_for("admin")
    detail = _run_job(api, "labels_jsonl")
    r = api.get(detail["download_url"])
    assert r.status_code == 200 and r["Content-Disposition"].startswith("attachment")
    lines = [json.loads(x) for x in b"".join(r.streaming_content).splitlines()]
    assert len(lines) == 5 and {x["provenance"]["type"] for x in lines} == {"human", "refined", "pseudo"}
    assert api_for("reviewer").get(detail["download_url"]).status_code == 403
    assert detail["result"]["counts"]["human/harmful"] == 1


def test_export_job_enqueues_after_commit(project, users, django_capture_on_commit_callbacks):
    import base64

    import redis
    from django.conf import settings

    from umbra_testkit import purge_queues

    purge_queues(["celery"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = export_job_start(project=project, user=users["admin"], kind="labels_jsonl")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    assert client.llen("celery") == 0  # nothing is sent before the commit
    callbacks[0]()
    message = json.loads(client.lpop("celery"))
    client.close()
    assert message["headers"]["task"] == "annotations.export_job_run"
    assert json.loads(base64.b64decode(message["body"]))[0] == [job.pk]
    export_job_run(job.pk)
    export_job_run(job.pk)  # a redelivery does nothing
    job.refresh_from_db()
    assert job.status == BackgroundJob.Status.SUCCEEDED


def test_hf_layout_is_datasets_loadable(api_for, labeled, tmp_path):
    api = api_for("admin")
    detail = _run_job(api, "labels_hf")
    data = b"".join(api.get(detail["download_url"]).streaming_content)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / "safety-labels"
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and "path: data/train.jsonl" in card and "path: data/test.jsonl" in card
    assert "| train | 4 | 3 | 1 | 2 | 1 | 1 |" in card, card
    assert "| test | 1 | 0 | 1 | 1 | 0 | 0 |" in card
    train = [json.loads(x) for x in (folder / "data" / "train.jsonl").read_text().splitlines()]
    keys = {frozenset(r) for r in train}
    assert len(keys) == 1  # one flat schema across rows, as datasets' json builder needs
    try:
        import datasets
    except ImportError:
        return
    ds = datasets.load_dataset(str(folder))
    assert ds["train"].num_rows == 4 and ds["test"].num_rows == 1


def test_model_export_reproduces_served_scores_in_a_fresh_process(api_for, labeled, tmp_path):
    api = api_for("admin")
    texts = ["how to make a weapon", "nice weather today", "a third, longer text to score"]
    served = api.post("/v1/moderations", {"input": texts}, format="json").json()
    detail = _run_job(api, "model")
    data = b"".join(api.get(detail["download_url"]).streaming_content)
    tar_path = tmp_path / "model.tar.gz"
    tar_path.write_bytes(data)
    code = (
        "import json, sys, tarfile, tempfile\n"
        "d = tempfile.mkdtemp()\n"
        "tarfile.open(sys.argv[1]).extractall(d, filter='data')\n"
        "from ssl_engine.engine import load_scorer\n"
        "from transformers import AutoModel\n"
        "folder = d + '/' + sys.argv[2]\n"
        "AutoModel.from_pretrained(folder)\n"
        "s = load_scorer(folder, device='cpu')\n"
        "print(json.dumps({'scores': [p for p, _ in s.score(json.loads(sys.argv[3]))], 'threshold': s.threshold}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tar_path), labeled["mv"].name, json.dumps(texts)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["scores"] == pytest.approx([r["category_scores"]["harmful"] for r in served["results"]], abs=1e-5)


def test_model_export_without_active_model_is_a_409(api_for, project, users):
    r = api_for("admin").post("/api/projects/safety/exports/start/", {"kind": "model"}, format="json")
    assert r.status_code == 409 and "no active model" in r.json()["message"]


def test_download_of_unfinished_job_is_a_409_and_a_file_elsewhere_a_404(api_for, project, users):
    job = BackgroundJob.objects.create(project=project, kind="export", created_by=users["admin"], number=1)
    r = api_for("admin").get(f"/api/projects/safety/exports/{job.pk}/download/")
    assert r.status_code == 409 and r.json()["message"] == "Export job #1 is queued; nothing to download yet."
    job.status, job.result, job.finished_at = "succeeded", {"file": "/etc/passwd"}, timezone.now()
    job.save()
    r = api_for("admin").get(f"/api/projects/safety/exports/{job.pk}/download/")
    assert r.status_code == 404  # never serves a file outside the exports folder


def test_export_commands(labeled, tmp_path, capsys):
    call_command("export_labels", "--project", "safety", "--out", str(tmp_path / "l.jsonl"))
    assert len((tmp_path / "l.jsonl").read_text().splitlines()) == 5
    call_command(
        "export_labels",
        "--project",
        "safety",
        "--format",
        "hf",
        "--include",
        "human",
        "--out",
        str(tmp_path / "l.tar.gz"),
    )
    call_command("export_model", "--project", "safety", "--out", str(tmp_path / "m.tar.gz"))
    with tarfile.open(tmp_path / "m.tar.gz") as tar:
        names = tar.getnames()
    name = labeled["mv"].name
    assert {
        f"{name}/config.json",
        f"{name}/heads.safetensors",
        f"{name}/umbra_model.json",
        f"{name}/UMBRA_EXPORT.md",
    } <= set(names)


def test_the_dataset_card_writes_a_hostile_project_name_as_plain_text(project, tmp_path):
    """Issue 15, defect 13: the HF dataset card wrote the project name raw into Markdown."""
    from annotations.services.label_exports import labels_hf_write

    project.name = '<img src=x onerror="alert(1)"> [click](javascript:alert(2)) **bold**\n# injected heading'
    project.save(update_fields=["name"])
    labels_hf_write(project=project, folder=tmp_path / "card")
    card = (tmp_path / "card" / "README.md").read_text()
    title = next(line for line in card.splitlines() if line.startswith("# "))
    import re

    assert not re.search(r"(?<!\\)<", card) and "](javascript:" not in card and "\n# injected" not in card
    assert title.startswith(r'# \<img src=x onerror="alert\(1\)"\> \[click\]\(javascript:alert\(2\)\) \*\*bold\*\*')
