"""End to end through a real Celery worker: commands -> augment/training queues -> stored rows."""

from __future__ import annotations

import json
import re

import pytest
from augment.conftest import FINAL_JOB, PROVIDER_ALLOWLIST, wait_for
from django.core.management import call_command

from annotations.models import AugmentedVariant, BackgroundJob, Item, WeakLabel
from umbra_testkit import ScriptedChat

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _last_job():
    return BackgroundJob.objects.order_by("-id").first()


def test_local_llm_job_in_the_worker_stores_every_slot_and_rerun_adds_nothing(
    celery_worker, project, users, aug_items, tiny_llama
):
    args = [
        "augment",
        "--project",
        project.slug,
        "--method",
        "llm_rewrite",
        "--per-item",
        "2",
        "--items",
        "seed",
        "--limit",
        "3",
        "--model",
        tiny_llama,
        "--device",
        "cpu",
        "--config",
        '{"max_new_tokens": 8}',
    ]
    call_command(*args)
    job = wait_for(BackgroundJob, _last_job().pk, FINAL_JOB, timeout=150)
    assert job.status == "succeeded", (job.error, celery_worker.output()[-3000:])
    rows = AugmentedVariant.objects.filter(job=job)
    assert rows.count() == 6 == job.result["created"]  # 3 items x 2 slots, kept or dropped with a reason
    assert all(r.provider.startswith("local:") and r.prompt_version == "umbra-rewrite-v1" for r in rows)
    assert all(r.curation_reason for r in rows if r.status == "dropped")
    assert job.progress["done"] == job.progress["total"] == 3
    call_command(*args)
    again = wait_for(BackgroundJob, _last_job().pk, FINAL_JOB, timeout=150)
    assert again.pk != job.pk and again.status == "succeeded"
    assert again.result["created"] == 0 and again.result["items_skipped"] == 3
    assert AugmentedVariant.objects.filter(item__project=project).count() == 6


def test_openai_compatible_endpoint_with_key_from_the_worker_env(celery_worker, project, users, aug_items, settings):
    for name, value in PROVIDER_ALLOWLIST.items():
        setattr(settings, name, value)
    calls = {"n": 0}

    def answer(messages, n):
        calls["n"] += 1
        if calls["n"] == 1:
            return 429  # retried after Retry-After: 0
        text = re.sub(r"^Request:\n", "", messages[-1]["content"])
        tails = ["right now", "today at all"]
        return [f"Sure! Here is the rewritten request: {text.replace('a', 'one')} {tails[k % 2]}" for k in range(n)]

    server = ScriptedChat(answer)
    try:
        call_command(
            "augment",
            "--project",
            project.slug,
            "--method",
            "llm_rewrite",
            "--per-item",
            "2",
            "--limit",
            "2",
            "--provider",
            "openai",
            "--base-url",
            server.url,
            "--model",
            "scripted",
            "--api-key-env",
            "TEST_PROVIDER_API_KEY",
            "--curation",
            '{"similarity_low": null, "similarity_high": null}',
        )
        job = wait_for(BackgroundJob, _last_job().pk, FINAL_JOB, timeout=90)
    finally:
        server.close()
    assert job.status == "succeeded", job.error
    assert "sk-test" not in json.dumps(job.params) and job.params["provider"]["api_key_env"] == "TEST_PROVIDER_API_KEY"
    assert set(server.auth) == {"Bearer sk-test-123"}
    kept = AugmentedVariant.objects.filter(job=job, status="pending")
    assert kept.count() == 4, list(
        AugmentedVariant.objects.filter(job=job).values_list("status", "curation_reason", "text")
    )
    assert all(v.text.endswith(("right now", "at all")) for v in kept)
    assert not any(v.text.startswith("Sure") for v in kept)  # preamble stripped by the parser
    assert all(v.provider.startswith("openai:scripted@") for v in kept)


def test_uu_refine_job_runs_in_the_worker(celery_worker, project, users, aug_items, tmp_path):
    lines = []
    for item in Item.objects.filter(project=project):
        noisy = int(any(w in item.text for w in ("bomb", "kill", "steal", "weapon", "poison", "hack")))
        lines.append(json.dumps({"id": item.pk, "label": noisy}))
    path = tmp_path / "weak.jsonl"
    path.write_text("\n".join(lines) + "\n")
    call_command("import_weak_labels", "--project", project.slug, "--file", str(path))
    call_command("refine_labels", "--project", project.slug, "--source", "imported", "--iterations", "2")
    job = BackgroundJob.objects.filter(kind="refine").order_by("-id").first()
    job = wait_for(BackgroundJob, job.pk, FINAL_JOB, timeout=120)
    assert job.status == "succeeded", (job.error, celery_worker.output()[-3000:])
    iterations = job.result["iterations"]
    assert iterations[0]["iteration"] == 0 and len(iterations) >= 2
    assert WeakLabel.objects.filter(job=job, source="refined", iteration=1).count() == job.result["n_items"]
