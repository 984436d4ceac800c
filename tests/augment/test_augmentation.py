"""Augmentation jobs in-process: stored variants, idempotent re-runs, crash resume, curation reasons."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from annotations.errors import ApplicationError, PermissionDenied
from annotations.models import AugmentedVariant, BackgroundJob, Item
from annotations.services.augmentation import (
    augmentation_job_execute,
    augmentation_job_start,
    job_resume,
    provider_spec_clean,
    variants_flag_high_loss,
)

pytestmark = pytest.mark.django_db


def _bag_embed(texts):
    """Hashed bag-of-words vectors: cheap, deterministic similarity for the curation band."""
    import zlib

    out = np.zeros((len(texts), 64))
    for r, t in enumerate(texts):
        for w in t.lower().split():
            out[r, zlib.crc32(w.encode()) % 64] += 1
    return out


def _start(project, users, **kw):
    kw.setdefault("method", "word_dropout")
    return augmentation_job_start(project=project, user=users["admin"], **kw)


def test_cheap_job_stores_one_row_per_slot_and_rerun_adds_nothing(project, users, aug_items,
                                                                  django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        job = _start(project, users, per_item=2, items="seed", curation={"similarity_low": None,
                                                                         "similarity_high": None})
    assert len(callbacks) == 1  # enqueued after commit
    assert augmentation_job_execute(job_id=job.pk) == "succeeded"
    job.refresh_from_db()
    rows = AugmentedVariant.objects.filter(item__project=project)
    assert rows.count() == 2 * aug_items["seed"]
    assert set(rows.values_list("variant_index", flat=True)) == {0, 1}
    assert job.result["created"] == rows.count() and job.progress["done"] == job.progress["total"] == aug_items["seed"]
    assert all(r.method == "word_dropout" and r.prompt_version for r in rows)
    # The same job again is not claimable; a new job over the same items finds every slot filled.
    assert augmentation_job_execute(job_id=job.pk) == "skipped"
    again = _start(project, users, per_item=2, items="seed", curation={"similarity_low": None,
                                                                       "similarity_high": None})
    augmentation_job_execute(job_id=again.pk)
    again.refresh_from_db()
    assert again.result["created"] == 0 and again.result["items_skipped"] == aug_items["seed"]
    assert AugmentedVariant.objects.filter(item__project=project).count() == 2 * aug_items["seed"]
    # Asking for more slots fills only the new ones.
    more = _start(project, users, per_item=3, items="seed", curation={"similarity_low": None,
                                                                      "similarity_high": None})
    augmentation_job_execute(job_id=more.pk)
    assert AugmentedVariant.objects.filter(item__project=project).count() == 3 * aug_items["seed"]


def test_crashed_job_resumes_where_it_stopped(project, users, aug_items, settings):
    settings.UMBRA_JOB_HEARTBEAT_TIMEOUT = 60
    job = _start(project, users, per_item=1, items="all", batch_size=4,
                 curation={"similarity_low": None, "similarity_high": None})
    # A worker died after the first batch: rows for four items, job running, heartbeat 10 min old.
    first = list(Item.objects.filter(project=project, split__in=["seed", "pool"]).order_by("id")[:4])
    for it in first:
        AugmentedVariant.objects.create(item=it, job=job, method="word_dropout", model_name="word_dropout",
                                        prompt_version=job.params["prompt_version"], variant_index=0, text="old")
    BackgroundJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now() - timedelta(minutes=10))
    # A live job is not resumable by an admin, a stale one is; the next delivery takes it over.
    BackgroundJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    with pytest.raises(ApplicationError):
        job_resume(job=job, user=users["admin"])
    assert augmentation_job_execute(job_id=job.pk) == "skipped"  # alive elsewhere: not taken over
    BackgroundJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=10))
    assert augmentation_job_execute(job_id=job.pk) == "succeeded"
    job.refresh_from_db()
    total = aug_items["seed"] + aug_items["pool"]
    assert job.result["items_skipped"] == 4 and job.result["created"] == total - 4
    assert AugmentedVariant.objects.filter(item__in=first, text="old").count() == 4  # untouched
    assert AugmentedVariant.objects.filter(item__project=project).count() == total


def test_curation_and_generator_rejections_keep_their_reasons(project, users, aug_items):
    job = _start(project, users, method="llm_rewrite", per_item=3, items="seed", limit=2,
                 curation={"similarity_low": 0.2, "similarity_high": 0.99, "check_language": True})

    def scripted(texts, prompts):
        out = []
        for t in texts:
            variants = [t.replace("a", "one") + " now", t, "I'm sorry, but I can't help with that request."]
            out.append((variants[:2], [("Sure! Here is", "empty")]))
        return out

    augmentation_job_execute(job_id=job.pk, generate=scripted, embed=_bag_embed)
    rows = list(AugmentedVariant.objects.filter(job=job).order_by("item_id", "variant_index"))
    assert len(rows) == 6  # 2 items x 3 slots: a kept rewrite, a dropped echo, a generator rejection
    by_status = {}
    for r in rows:
        by_status.setdefault(r.status, []).append(r)
    assert len(by_status["pending"]) == 2 and all(r.variant_index == 0 for r in by_status["pending"])
    dropped = by_status["dropped"]
    assert any(r.curation_reason.startswith("duplicate_of_source") for r in dropped)
    assert any(r.curation_reason == "empty" and r.curation["stage"] == "generation" for r in dropped)
    assert all("similarity" in r.curation for r in by_status["pending"])
    job.refresh_from_db()
    assert job.result["drop_reasons"]["duplicate_of_source"] == 2 and job.result["kept"] == 2


def test_start_validates_and_never_stores_api_keys(project, users, aug_items):
    with pytest.raises(PermissionDenied):
        augmentation_job_start(project=project, user=users["reviewer"], method="word_swap")
    with pytest.raises(ApplicationError, match="environment variable"):
        _start(project, users, method="llm_rewrite",
               provider={"kind": "openai", "base_url": "http://x/v1", "model": "m", "api_key": "sk-secret"})
    with pytest.raises(ApplicationError, match="Unknown method"):
        _start(project, users, method="telepathy")
    job = _start(project, users, method="llm_rewrite",
                 provider={"kind": "openai", "base_url": "http://x/v1", "model": "m", "api_key_env": "MY_KEY"})
    assert job.params["provider"] == {"kind": "openai", "base_url": "http://x/v1", "model": "m", "api_key_env": "MY_KEY"}
    assert "sk-" not in str(job.params)
    assert provider_spec_clean(None) == {"kind": "local"}


def test_high_loss_flags_raise_review_priority(project, users, aug_items):
    item = Item.objects.filter(project=project).first()
    vs = [AugmentedVariant.objects.create(item=item, method="m", variant_index=k, text=f"v{k}") for k in range(10)]
    losses = {v.pk: [1.0, 0.2, 0.1, 0.1] for v in vs}
    losses[vs[3].pk] = [1.0, 2.0, 2.5, 2.4]
    assert variants_flag_high_loss(losses=losses) == 1
    vs[3].refresh_from_db()
    assert vs[3].curation["loss_flag"].startswith("high_loss") and vs[3].review_priority >= 5
