"""Augmentation jobs in-process: stored variants, idempotent re-runs, crash resume, curation reasons."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.db import transaction
from django.utils import timezone

from annotations.errors import ApplicationError
from annotations.models import AugmentedVariant, BackgroundJob, Item, TrainingRound
from annotations.services.augmentation import (
    augmentation_job_execute,
    augmentation_job_start,
    variants_record_view_losses,
)
from annotations.services.jobs import job_resume
from annotations.services.outbound import provider_spec_clean
from annotations.services.rounds import round_input_build

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


def test_cheap_job_stores_one_row_per_slot_and_rerun_adds_nothing(
    project, users, aug_items, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        job = _start(
            project, users, per_item=2, items="seed", curation={"similarity_low": None, "similarity_high": None}
        )
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
    again = _start(project, users, per_item=2, items="seed", curation={"similarity_low": None, "similarity_high": None})
    augmentation_job_execute(job_id=again.pk)
    again.refresh_from_db()
    assert again.result["created"] == 0 and again.result["items_skipped"] == aug_items["seed"]
    assert AugmentedVariant.objects.filter(item__project=project).count() == 2 * aug_items["seed"]
    # Asking for more slots fills only the new ones.
    more = _start(project, users, per_item=3, items="seed", curation={"similarity_low": None, "similarity_high": None})
    augmentation_job_execute(job_id=more.pk)
    assert AugmentedVariant.objects.filter(item__project=project).count() == 3 * aug_items["seed"]


def test_crashed_job_resumes_where_it_stopped(project, users, aug_items, settings):
    settings.UMBRA_JOB_HEARTBEAT_TIMEOUT = 60
    job = _start(
        project,
        users,
        per_item=1,
        items="all",
        batch_size=4,
        curation={"similarity_low": None, "similarity_high": None},
    )
    # A worker died after the first batch: rows for four items, job running, heartbeat 10 min old.
    first = list(Item.objects.filter(project=project, split__in=["seed", "pool"]).order_by("id")[:4])
    for it in first:
        AugmentedVariant.objects.create(
            item=it,
            job=job,
            method="word_dropout",
            model_name="word_dropout",
            prompt_version=job.params["prompt_version"],
            variant_index=0,
            text="old",
        )
    BackgroundJob.objects.filter(pk=job.pk).update(
        status="running", heartbeat_at=timezone.now() - timedelta(minutes=10)
    )
    # A live job is not resumable by an admin, a stale one is; the next delivery takes it over.
    BackgroundJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    with pytest.raises(ApplicationError, match="still alive or finished; nothing to resume"):
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
    job = _start(
        project,
        users,
        method="llm_rewrite",
        per_item=3,
        items="seed",
        limit=2,
        curation={"similarity_low": 0.2, "similarity_high": 0.99, "check_language": True},
    )

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


def test_start_validates_and_never_stores_api_keys(project, users, aug_items, settings):
    settings.UMBRA_PROVIDER_BASE_URLS = ["http://x/v1"]
    settings.UMBRA_PROVIDER_API_KEY_ENVS = ["MY_KEY"]
    with pytest.raises(ApplicationError, match="environment variable"):
        _start(
            project,
            users,
            method="llm_rewrite",
            provider={"kind": "openai", "base_url": "http://x/v1", "model": "m", "api_key": "sk-secret"},
        )
    with pytest.raises(ApplicationError, match="Unknown method"):
        _start(project, users, method="telepathy")
    job = _start(
        project,
        users,
        method="llm_rewrite",
        provider={"kind": "openai", "base_url": "http://x/v1", "model": "m", "api_key_env": "MY_KEY"},
    )
    assert job.params["provider"] == {
        "kind": "openai",
        "base_url": "http://x/v1",
        "model": "m",
        "api_key_env": "MY_KEY",
    }
    assert "sk-" not in str(job.params)
    assert provider_spec_clean(spec=None) == {"kind": "local"}


def _view_loss(item, j, losses, flagged, labeled=False):
    from ssl_engine.types import ViewLoss

    seen = [x for x in losses if x == x]
    return ViewLoss(
        example_id=str(item.pk),
        view_index=j,
        labeled=labeled,
        losses=tuple(losses),
        mean_loss=sum(seen) / len(seen) if seen else float("nan"),
        flagged=flagged,
        reason="high_loss: above the q0.90 loss in 2/2 epochs (mean 2.000)" if flagged else "",
    )


def test_round_loss_check_flags_variants_and_flagged_unreviewed_ones_stop_training(project, users, aug_items, tmp_path):
    nan = float("nan")
    pool = Item.objects.filter(project=project, split="pool").order_by("id").first()
    seed = Item.objects.filter(project=project, split="seed").order_by("id").first()
    mk = AugmentedVariant.objects.create
    p0 = mk(item=pool, method="m", variant_index=0, text="pool view 0", status="approved")
    p1 = mk(item=pool, method="m", variant_index=1, text="pool view 1")  # pending: curated, unreviewed
    p2 = mk(item=pool, method="m", variant_index=2, text="pool view 2")
    s0 = mk(item=seed, method="m", variant_index=0, text="seed view 0", status="approved")
    mk(item=seed, method="m", variant_index=1, text="rejected view", status="rejected")
    project.use_unreviewed_curated_variants = True
    project.save()
    rnd = TrainingRound.objects.create(project=project, algorithm="fixmatch", config={})
    inp, snap = round_input_build(training_round=rnd, out_dir=str(tmp_path))
    assert snap["variant_ids"] == [s0.pk, p0.pk, p1.pk, p2.pk]
    assert next(e for e in inp.unlabeled if e.example_id == str(pool.pk)).strong_views == (
        "pool view 0",
        "pool view 1",
        "pool view 2",
    )
    assert next(e for e in inp.labeled if e.example_id == str(seed.pk)).strong_views == ("seed view 0",)
    losses = [
        _view_loss(pool, 0, [1.0, 0.2, 0.1], False),
        _view_loss(pool, 1, [1.0, nan, 2.0], True),
        _view_loss(pool, 2, [nan, nan, nan], False),
        _view_loss(seed, 0, [0.9, 2.1, 2.2], True, labeled=True),
        _view_loss(seed, 5, [1.0, 1.0, 1.0], True),
    ]  # no such view: ignored
    with transaction.atomic():
        counts = variants_record_view_losses(
            training_round_id=rnd.pk, variant_ids=snap["variant_ids"], view_losses=losses, round_number=7
        )
    assert counts == {"checked": 3, "flagged": 2}
    for v in (p0, p1, p2, s0):
        v.refresh_from_db()
    assert p1.curation["loss_flag"].startswith("high_loss") and p1.review_priority >= 5
    assert p1.curation["loss"] == {
        "round": rnd.pk,
        "round_number": 7,
        "as": "strong view",
        "epochs": [1.0, None, 2.0],
        "mean": 1.5,
        "flagged": True,
    }
    assert s0.curation["loss"]["as"] == "labeled copy" and "loss_flag" in s0.curation
    assert "loss_flag" not in p0.curation and p0.curation["loss"]["mean"] == pytest.approx(0.4333, abs=1e-4)
    assert "loss" not in p2.curation  # never drawn: nothing to say
    # The next round drops the flagged unreviewed view; a human-approved one stays, flag and all.
    TrainingRound.objects.filter(pk=rnd.pk).update(status=TrainingRound.Status.SUCCEEDED)
    rnd2 = TrainingRound.objects.create(project=project, algorithm="fixmatch", config={})
    _, snap2 = round_input_build(training_round=rnd2, out_dir=str(tmp_path))
    assert snap2["variant_ids"] == [s0.pk, p0.pk, p2.pk]
    # A later round that draws the flagged approved view without flagging it clears the flag.
    with transaction.atomic():
        variants_record_view_losses(
            training_round_id=rnd2.pk,
            variant_ids=snap2["variant_ids"],
            view_losses=[_view_loss(seed, 0, [0.5, 0.1, 0.1], False, labeled=True)],
        )
    s0.refresh_from_db()
    assert "loss_flag" not in s0.curation and s0.curation["loss"]["round"] == rnd2.pk


def test_a_round_records_the_loss_of_every_variant_it_drew(project, users, aug_items, engine_settings):
    from augment.conftest import TINY_ROUND

    from annotations.services.rounds import training_round_execute, training_round_start

    items = list(Item.objects.filter(project=project, split__in=["seed", "pool"]).order_by("id")[:6])
    for item in items:
        AugmentedVariant.objects.create(item=item, method="m", text=f"{item.text} please", status="approved")
    rnd = training_round_start(
        project=project, user=users["admin"], algorithm="fixmatch", config={**TINY_ROUND, "epochs": 6, "max_steps": 60}
    )
    assert training_round_execute(round_id=rnd.pk) == "succeeded"
    rnd.refresh_from_db()
    checked = AugmentedVariant.objects.filter(item__project=project, curation__loss__round=rnd.pk)
    assert rnd.snapshot["variant_loss"]["checked"] == checked.count() == 6
    assert rnd.snapshot["variant_loss"]["flagged"] == checked.filter(curation__has_key="loss_flag").count()
    for v in checked:
        assert len(v.curation["loss"]["epochs"]) >= 1 and v.curation["loss"]["mean"] >= 0
        assert v.curation["loss"]["as"] == ("labeled copy" if v.item.split == "seed" else "strong view")
