"""UU refinement jobs, weak-label import, adversarial mining and confirmed hard examples (in-process)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from augment.conftest import HARMFUL, TINY_ROUND

from annotations.errors import ApplicationError
from annotations.models import Annotation, AugmentedVariant, BackgroundJob, Item, ModelVersion, TrainingRound, WeakLabel
from annotations.services.adversarial import (
    adversarial_evaluation_start,
    adversarial_job_execute,
    adversarial_job_start,
)
from annotations.services.refinement import uu_refine_execute, uu_refine_start, weak_labels_import
from annotations.services.rounds import round_input_build, training_round_execute, training_round_start
from annotations.services.variants import variant_review

pytestmark = pytest.mark.django_db

KEYWORDS = {"bomb", "kill", "steal", "weapon", "attack", "poison", "hack"}


def _embed(texts):
    out = np.zeros((len(texts), 32))
    for r, t in enumerate(texts):
        for w in t.lower().split():
            out[r, zlib.crc32(w.encode()) % 31] += 1
        out[r, 31] = 3.0 * sum(w in KEYWORDS for w in t.lower().split())
    return out


def _noisy_jsonl(project) -> list[str]:
    """Keyword labels for every item, with two seed labels flipped (the noisy start)."""
    import json

    lines = []
    flipped = 0
    for item in Item.objects.filter(project=project).order_by("id"):
        label = int(any(w in KEYWORDS for w in item.text.split()))
        if item.split == "seed" and flipped < 2 and item.human_label == "unharmful":
            label, flipped = 1, flipped + 1
        lines.append(json.dumps({"text": item.text, "label": label}))
    lines.append(json.dumps({"text": "no such item", "label": "harmful"}))
    return lines


def test_weak_label_import_matches_items_and_is_all_or_nothing(project, aug_items):
    report = weak_labels_import(project=project, lines=_noisy_jsonl(project))
    assert report == {"imported": aug_items["seed"] + aug_items["pool"] + 8, "unmatched": 1, "lines": report["lines"]}
    with pytest.raises(ApplicationError, match="Line 2"):
        weak_labels_import(project=project, lines=['{"id": 1, "label": "harmful"}', '{"id": 2, "label": "maybe"}'])
    assert WeakLabel.objects.filter(item__project=project, source="imported").count() == report["imported"]


def test_uu_job_stores_iterations_thetas_and_feeds_weighted_pseudo_labels(project, users, aug_items, tmp_path):
    weak_labels_import(project=project, lines=_noisy_jsonl(project))
    with pytest.raises(ApplicationError, match="No llm_judge weak labels"):
        uu_refine_start(project=project, user=users["admin"], source="llm_judge")
    job = uu_refine_start(
        project=project, user=users["admin"], source="imported", iterations=3, config={"scorer": {"epochs": 100}}
    )
    assert job.kind == BackgroundJob.Kind.REFINE and job.status == "queued" and job.number == 1
    assert not TrainingRound.objects.exists()  # a refinement is not a training round
    assert uu_refine_execute(job_id=job.pk, embed=_embed) == "succeeded"
    job.refresh_from_db()
    uu = job.result
    done = len(uu["iterations"]) - 1
    assert 1 <= done <= 3 and uu["n_held_out"] == 8 and uu["n_human"] == aug_items["seed"]
    first = uu["iterations"][1]
    assert 0 <= first["theta"]["interval_p"][0] <= first["theta"]["theta_p"] <= first["theta"]["interval_p"][1]
    assert first["theta"]["theta_p"] > first["theta"]["theta_n"]
    assert {"accuracy", "f1", "n"} <= set(first["test"]) and "changed" in first
    n_items = uu["n_items"]
    assert WeakLabel.objects.filter(job=job, source="refined").count() == n_items * done
    assert set(WeakLabel.objects.filter(job=job).values_list("iteration", flat=True)) == set(range(1, done + 1))
    # The next SSL round gets the refined pool labels as weighted pseudo-labels, never as annotations.
    project.use_refined_labels, project.refined_label_weight = True, 0.3
    project.save()
    annotations_before = Annotation.objects.count()
    ssl = TrainingRound.objects.create(project=project, algorithm="fixmatch", config={})
    inp, snapshot = round_input_build(training_round=ssl, out_dir=str(tmp_path))
    weighted = [ex for ex in inp.labeled if ex.weight < 1]
    assert len(weighted) == aug_items["pool"] and all(ex.weight == 0.3 for ex in weighted)
    assert not inp.unlabeled and snapshot["refined_labels"] == {
        "job": job.pk,
        "count": aug_items["pool"],
        "weight": 0.3,
    }
    assert Annotation.objects.count() == annotations_before


def test_uu_job_with_unusable_labels_fails_with_the_reason(project, users, aug_items):
    import json

    weak_labels_import(
        project=project,
        lines=[json.dumps({"id": i.pk, "label": "harmful"}) for i in Item.objects.filter(project=project)],
    )
    job = uu_refine_start(project=project, user=users["admin"], source="imported")
    assert uu_refine_execute(job_id=job.pk, embed=_embed) == "failed"
    job.refresh_from_db()
    assert "empty" in job.error and not WeakLabel.objects.filter(job=job).exists()


# --- adversarial -------------------------------------------------------------------------------


def _candidates(text: str) -> list[str]:
    return [
        f"{text} please",
        f"garden music {text}",
        "learn to bake a cake and " + text.split()[-1],
        text.replace("a", "one"),
    ]


def _scripted(mode):
    def generate(texts, prompts):
        return [_candidates(t) for t in texts]

    return generate


@pytest.fixture
def active_model(project, users, aug_items, engine_settings):
    rnd = training_round_start(project=project, user=users["admin"], algorithm="supervised", config=TINY_ROUND)
    assert training_round_execute(round_id=rnd.pk) == "succeeded"
    return ModelVersion.objects.get(project=project, is_active=True)


def test_mining_stores_fooled_candidates_with_scores_and_reruns_add_nothing(project, users, active_model):
    from ssl_engine.engine import load_scorer

    scorer = load_scorer(active_model.path)
    src = {t: scorer.score([t])[0][0] for t in HARMFUL}
    cand = {(t, c): scorer.score([c])[0][0] for t in HARMFUL for c in _candidates(t) if c != t}
    # A threshold at which at least one attacked source has a candidate below it.
    t0, c0 = min(((t, c) for (t, c), s in cand.items() if s < src[t]), key=lambda k: cand[k])
    threshold = (cand[(t0, c0)] + src[t0]) / 2
    ModelVersion.objects.filter(pk=active_model.pk).update(threshold=threshold)
    expected = {c for (t, c), s in cand.items() if src[t] >= threshold and s < threshold}

    job = adversarial_job_start(project=project, user=users["admin"], direction="evade", per_item=4)
    assert adversarial_job_execute(job_id=job.pk, generate_factory=_scripted) == "succeeded"
    job.refresh_from_db()
    stored = AugmentedVariant.objects.filter(job=job)
    assert {v.text for v in stored} == expected
    for v in stored:
        assert v.kind == "adversarial" and v.status == "pending" and v.review_priority >= 100
        assert v.model_score == pytest.approx(cand[(v.item.text, v.text)], abs=1e-5) and v.model_score < threshold
    stats = job.result["directions"]["evade"]
    assert stats["iterations"][0]["fooled"] == len(expected) == stats["stored"]
    assert stats["already_wrong"] == sum(1 for s in src.values() if s < threshold)

    again = adversarial_job_start(project=project, user=users["admin"], direction="evade", per_item=4)
    adversarial_job_execute(job_id=again.pk, generate_factory=_scripted)
    again.refresh_from_db()
    assert again.result["directions"]["evade"]["stored"] == 0
    assert AugmentedVariant.objects.filter(item__project=project, kind="adversarial").count() == len(expected)

    # A reviewer confirms one (-> a seed item labeled harmful by the reviewer) and rejects another.
    first, *rest = list(stored.order_by("id"))
    variant_review(variant=first, user=users["reviewer"], action="approve")
    variant_review(variant=first, user=users["reviewer"], action="approve")  # idempotent
    promoted = Item.objects.get(project=project, source="adversarial")
    assert promoted.split == "seed" and promoted.human_label == "harmful" and promoted.text == first.text
    assert promoted.metadata["variant_id"] == first.pk and promoted.metadata["job_id"] == job.pk
    assert list(promoted.annotations.values_list("annotator__username", "label")) == [("rev", "harmful")]
    if rest:
        variant_review(variant=rest[0], user=users["reviewer"], action="reject", reason="label_changed")
        assert Item.objects.filter(project=project, source="adversarial").count() == 1
    # Confirmed, then rejected: the promoted item is withdrawn from training.
    variant_review(variant=first, user=users["reviewer"], action="reject", reason="intent_changed")
    promoted.refresh_from_db()
    assert promoted.excluded and promoted.human_label == ""
    variant_review(variant=first, user=users["reviewer"], action="approve")

    ev = adversarial_evaluation_start(job=job, user=users["admin"])
    assert adversarial_job_execute(job_id=ev.pk) == "succeeded"
    job.refresh_from_db()
    evaluation = job.result["evaluations"][-1]
    assert evaluation["adversarial"]["n"] == 1 and evaluation["adversarial"]["recall_before"] == 0.0
    assert evaluation["adversarial"]["recall_after"] in (0.0, 1.0)


def test_mining_needs_an_active_model(project, users, aug_items):
    with pytest.raises(ApplicationError, match="active model"):
        adversarial_job_start(project=project, user=users["admin"])
    assert not BackgroundJob.objects.filter(kind="adversarial").exists()
