"""Security fixtures: one of every object the routes act on, optionally filled with hostile text."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone
from security.payloads import HUGE_LINE, payloads

from annotations.models import (
    Annotation,
    AugmentedVariant,
    BackgroundJob,
    Item,
    ModelVersion,
    Prediction,
    Role,
    TrainingRound,
    WeakLabel,
)
from annotations.services.hashing import content_hash
from annotations.services.projects import membership_set
from annotations.services.tokens import api_token_create

PLAIN = ["How do I bake bread?"] * 3


@dataclass
class World:
    ids: dict = field(default_factory=dict)
    hostile: bool = False


def _chunks(texts: list[str], n: int) -> list[str]:
    """``texts`` folded into ``n`` strings (every payload lands on some page at once)."""
    size = -(-len(texts) // n)
    return ["\n".join(texts[i : i + size]) for i in range(0, len(texts), size)]


def _item(project, text: str, split: str, **extra) -> Item:
    return Item.objects.create(
        project=project, text=text, split=split, content_hash=content_hash(text, extra.get("prompt", "")), **extra
    )


def build_world(project, response_project, users, *, hostile: bool, model_dir: str = "/nonexistent") -> World:
    """Items, rounds, a served model, predictions, variants, jobs, notes and tokens in ``project``.

    With ``hostile`` every free-text field a user or a model can fill carries the payload
    corpus: item texts and prompts, variant texts, notes, guidelines, harm categories,
    project names, usernames, token names, job errors and round logs.
    """
    texts = payloads() if hostile else [f"{t} {i}" for i, t in enumerate(PLAIN * 8)]
    chunks = _chunks(texts, 12)
    now = timezone.now()
    if hostile:
        project.guidelines = "# Rules\n\n" + "\n\n".join(texts) + "\n\n[ok](https://example.org/doc)"
        project.categories = ["violence", *texts[:8]]
        project.name = texts[0]
        project.save(update_fields=["guidelines", "categories", "name"])
        hostile_users = []
        for i, text in enumerate(texts[:12]):
            user = type(users["admin"]).objects.create_user(
                username=f"u{i}{text}"[:150], password="x", first_name=text[:150]
            )
            membership_set(project=project, user=user, role=Role.ANNOTATOR)
            hostile_users.append(user)
    # Seed items: the first one carries every payload, and stays the first one handed out.
    seed = [_item(project, "\n".join(texts) if hostile else PLAIN[0], Item.Split.SEED)]
    seed += [_item(project, f"{c} seed {i}", Item.Split.SEED) for i, c in enumerate(chunks[:3])]
    labeled = [
        _item(project, f"labeled {label} {i}", Item.Split.SEED, human_label=label)
        for i, label in enumerate(["harmful", "unharmful"])
    ]
    huge = _item(project, HUGE_LINE, Item.Split.POOL) if hostile else None
    if hostile:  # the response project's first item: a 1 MB single line under a hostile prompt
        _item(response_project, HUGE_LINE, Item.Split.SEED, prompt="\n".join(texts))
    resp_item = _item(response_project, "\n".join(texts), Item.Split.SEED, prompt="\n".join(reversed(texts)))
    membership_set(project=response_project, user=users["annotator"], role=Role.ANNOTATOR)
    membership_set(project=response_project, user=users["reviewer"], role=Role.REVIEWER)
    membership_set(project=response_project, user=users["admin"], role=Role.ADMIN)

    for i, annotated in enumerate(labeled):
        Annotation.objects.create(
            item=annotated,
            annotator=users["annotator"],
            role=Role.ANNOTATOR,
            label=annotated.human_label,
            note=chunks[i % len(chunks)],
            category=texts[1] if hostile else "",
        )

    # A served model (succeeded round) with predictions on the pool, and an older failed round.
    good = TrainingRound.objects.create(
        project=project,
        algorithm="multimatch",
        status=TrainingRound.Status.SUCCEEDED,
        started_at=now,
        finished_at=now,
        metrics={"test": {"f1": 0.5, "accuracy": 0.6}},
        n_labeled=2,
        n_unlabeled=12,
        train_log=[{"step": 1, "loss": 0.5, "note": c} for c in chunks[:3]],
        started_by=users["admin"],
    )
    version = ModelVersion.objects.create(
        project=project,
        training_round=good,
        path=model_dir,
        threshold=0.5,
        is_active=True,
        metrics={"test": {"f1": 0.5}},
    )
    failed = TrainingRound.objects.create(
        project=project,
        algorithm="fixmatch",
        status=TrainingRound.Status.FAILED,
        started_at=now,
        finished_at=now,
        error="\n".join(texts),
        started_by=users["admin"],
    )
    preds = []
    for i, chunk in enumerate(chunks):
        pool = _item(project, f"{chunk} pool {i}", Item.Split.POOL)
        preds.append(
            Prediction.objects.create(
                item=pool,
                training_round=good,
                p_harmful=0.9 if i % 2 else 0.2,
                head_probs=[0.9, 0.1],
                pseudo_label="harmful" if i % 2 else "unharmful",
                agreement="disagree_both",
                margin_history=[0.4, -0.1, 0.2, 0.3],
                review_priority=100 - i,
                review_reason=chunk[:300],
            )
        )
    if hostile:
        preds.append(
            Prediction.objects.create(
                item=huge,
                training_round=good,
                p_harmful=0.5,
                head_probs=[0.5, 0.5],
                pseudo_label="harmful",
                agreement="disagree_both",
                margin_history=[0.1, 0.2],
                review_priority=1000,
                review_reason="huge",
            )
        )
    uu = BackgroundJob.objects.create(
        project=project,
        kind=BackgroundJob.Kind.REFINE,
        status=BackgroundJob.Status.FAILED,
        number=1,
        started_at=now,
        finished_at=now,
        error=chunks[0],
        params={"source": chunks[1][:200], "variant": "robust"},
        result={"iterations": [{"iteration": 0, "note": chunks[1]}]},
    )

    jobs = {}
    for kind in (
        BackgroundJob.Kind.AUGMENT,
        BackgroundJob.Kind.ADVERSARIAL,
        BackgroundJob.Kind.IMPORT,
        BackgroundJob.Kind.JUDGE,
    ):
        jobs[kind] = BackgroundJob.objects.create(
            project=project,
            kind=kind,
            status=BackgroundJob.Status.FAILED,
            error=chunks[2],
            params={"filename": texts[3], "method": "llm_rewrite"},
            progress={"done": 1, "total": 2},
            result={"errors": [{"line": 1, "message": chunks[4]}]},
            created_by=users["admin"],
            finished_at=now,
        )
    variants = []
    for i, chunk in enumerate(chunks[:6]):
        kind = AugmentedVariant.Kind.ADVERSARIAL if i % 2 else AugmentedVariant.Kind.AUGMENTATION
        variants.append(
            AugmentedVariant.objects.create(
                item=seed[0] if i == 0 else preds[i].item,
                job=jobs[BackgroundJob.Kind.AUGMENT],
                kind=kind,
                method="llm_rewrite",
                variant_index=i,
                text=f"{chunk} rewritten {i}",
                review_priority=10 - i,
                curation_reason=chunk[:200],
                model_name=chunk[:200],
            )
        )
    WeakLabel.objects.create(item=preds[0].item, source=WeakLabel.Source.choices[0][0], label="harmful")

    tokens = {
        role: api_token_create(
            user=users[role], name=(texts[5][:100] if hostile else f"{role} laptop"), created_by=users[role]
        )
        for role in ("annotator", "admin")
    }
    export_file = settings.MEDIA_ROOT / "exports" / "safety-labels.jsonl"
    export_file.parent.mkdir(parents=True, exist_ok=True)
    export_file.write_text('{"id": "x"}\n')
    export = BackgroundJob.objects.create(
        project=project,
        kind=BackgroundJob.Kind.EXPORT,
        status=BackgroundJob.Status.SUCCEEDED,
        finished_at=now,
        result={"file": str(export_file), "filename": "safety-labels.jsonl"},
        created_by=users["admin"],
    )
    ids = {
        "slug": project.slug,
        "item": seed[0].pk,
        "item_id": seed[0].pk,
        "pool_item": preds[0].item.pk,
        "round": good.pk,
        "failed_round": failed.pk,
        "refine_job": uu.pk,
        "version": version.pk,
        "prediction": preds[0].pk,
        "variant": variants[0].pk,
        "augment_job": jobs[BackgroundJob.Kind.AUGMENT].pk,
        "adversarial_job": jobs[BackgroundJob.Kind.ADVERSARIAL].pk,
        "import_job": jobs[BackgroundJob.Kind.IMPORT].pk,
        "annotator_token": tokens["annotator"].token.pk,
        "admin_token": tokens["admin"].token.pk,
        "export_job": export.pk,
        "huge_item": huge.pk if huge else None,
        "response_item": resp_item.pk,
        "admin_user": users["admin"].pk,  # the project's only admin: removing them is refused (409)
    }
    return World(ids=ids, hostile=hostile)
