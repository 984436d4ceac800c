"""Adversarial hard-example mining against the active model, and confirmed hard examples.

A ``BackgroundJob(kind=adversarial)`` rewrites human-labeled harmful items (seed + pool,
including pseudo-labels a reviewer approved) so that the intent is kept but the ACTIVE
model scores them below its threshold (direction ``evade``), and/or benign items so they
look alarming but stay benign (``alarm``: false-positive probes). Candidates that fool
the model are stored as ``AugmentedVariant`` of kind ``adversarial`` / ``fp_probe`` with
the model's score and a high review priority, so they head the variant review queue.

Hits are counted only when a reviewer confirms them: an approved adversarial variant
becomes a new seed ``Item`` whose human label (harmful; unharmful for probes) is an
``Annotation`` by that reviewer, linked through ``Item.metadata`` to the variant, its
source item and the job (``hard_example_sync``, called from ``variant_review``). A
rejected candidate ("no longer harmful", "intent changed") never counts as a hit, and a
later reject withdraws the promoted item (a reject annotation excludes it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q

from annotations.errors import Conflict, FieldError
from annotations.models import Annotation, AugmentedVariant, BackgroundJob, Item, Label, ModelVersion, Project, Role
from annotations.permissions import role_in
from annotations.services.hashing import content_hash, normalize_text
from annotations.services.jobs import JobProgress, JobRunner, job_create, job_enqueue, job_execute, runner
from annotations.services.outbound import provider_label, provider_spec_clean, provider_spec_resolve

logger = logging.getLogger(__name__)

DIRECTIONS = {
    "evade": (AugmentedVariant.Kind.ADVERSARIAL, Label.HARMFUL),
    "alarm": (AugmentedVariant.Kind.FP_PROBE, Label.UNHARMFUL),
}
HIGH_PRIORITY = 100.0


@transaction.atomic
def adversarial_job_start(
    *,
    project: Project,
    user,
    direction: str = "evade",
    iterations: int = 1,
    per_item: int = 3,
    provider: dict | None = None,
    judge: dict | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> BackgroundJob:
    """Queue a mining job against the project's active model (admins only)."""
    directions = ["evade", "alarm"] if direction == "both" else [direction]
    if any(d not in DIRECTIONS for d in directions):
        raise FieldError("Direction must be evade, alarm or both.", field="direction")
    if not isinstance(iterations, int) or not 1 <= iterations <= 10:
        raise FieldError("Iterations must be between 1 and 10.", field="iterations")
    if not isinstance(per_item, int) or not 1 <= per_item <= 10:
        raise FieldError("Candidates per item must be between 1 and 10.", field="per_item")
    provider = provider_spec_clean(spec=provider)
    judge = dict(judge or {})
    if judge:
        judge["judges"] = [provider_spec_clean(spec=j) for j in judge.get("judges") or [{"kind": "local"}]]
    version = ModelVersion.objects.filter(project=project, is_active=True).first()
    if version is None:
        raise Conflict("Adversarial mining needs an active model; train and activate one first.")
    job = job_create(
        model=BackgroundJob,
        project=project,
        kind=BackgroundJob.Kind.ADVERSARIAL,
        created_by=user,
        params={
            "mode": "mine",
            "directions": directions,
            "iterations": iterations,
            "per_item": per_item,
            "provider": provider,
            "judge": judge,
            "limit": limit,
            "seed": seed,
            "model_version": version.pk,
        },
        progress={"phase": "queued", "done": 0, "total": 0},
    )
    job_enqueue(job=job)
    return job


@transaction.atomic
def adversarial_evaluation_start(*, job: BackgroundJob, user) -> BackgroundJob:
    """Queue a re-scoring of a mining job's confirmed hard examples with the now active model."""
    if job.kind != BackgroundJob.Kind.ADVERSARIAL or job.params.get("mode") != "mine":
        raise Conflict("Only adversarial mining jobs can be evaluated.")
    version = ModelVersion.objects.filter(project=job.project, is_active=True).first()
    if version is None:
        raise Conflict("There is no active model to evaluate with.")
    ev = job_create(
        model=BackgroundJob,
        project=job.project,
        kind=BackgroundJob.Kind.ADVERSARIAL,
        created_by=user,
        params={"mode": "evaluate", "source_job": job.pk, "source_label": job.label, "model_version": version.pk},
        progress={"phase": "queued", "done": 0, "total": 0},
    )
    job_enqueue(job=ev)
    return ev


def _scorer_for(version: ModelVersion):
    from annotations.services.engine import scorer_load

    return scorer_load(path=version.path)


@runner
class AdversarialRunner(JobRunner):
    """Mines hard examples against the active model (or re-scores a mining job's confirmed ones)."""

    name = BackgroundJob.Kind.ADVERSARIAL
    task = "annotations.adversarial_job_run"
    queue = "augment"
    takeover = True
    resumable = True

    def run(self) -> dict[str, Any]:
        job = self.job
        if job.params.get("mode") == "evaluate":
            result = _evaluate(job=job, progress=self.progress)
        else:
            result = _mine(
                job=job,
                progress=self.progress,
                generate_factory=self.options.get("generate_factory"),
                validate=self.options.get("validate"),
            )
        return {"result": result, "progress": {"phase": "done", "done": 1, "total": 1}}


def adversarial_job_execute(
    *, job_id: int, worker: str = "", generate_factory: Callable | None = None, validate: Callable | None = None
) -> str:
    """Run a mining (or evaluation) job on this worker (the task's body).

    ``generate_factory(mode)`` replaces the LLM rewriter (tests: a scripted generator);
    it returns ``(texts, prompts) -> candidates per text``.
    """
    options = {k: v for k, v in {"generate_factory": generate_factory, "validate": validate}.items() if v is not None}
    return job_execute(runner_name=AdversarialRunner.name, job_id=job_id, worker=worker, **options)


def _llm_generate_factory(job: BackgroundJob, task: str) -> Callable[[str], Callable]:
    import random

    from ssl_engine.augment.llm import rewrite_texts
    from ssl_engine.augment.providers import make_provider

    provider = make_provider(provider_spec_resolve(spec=job.params.get("provider")))
    rng = random.Random(int(job.params.get("seed") or 0))

    def factory(mode: str) -> Callable:
        def generate(texts: Sequence[str], prompts: Sequence[str | None] | None) -> list[list[str]]:
            res = rewrite_texts(
                texts,
                provider=provider,
                prompts=prompts,
                task=task,
                mode=mode,
                n_variants=int(job.params["per_item"]),
                rng=random.Random(rng.getrandbits(31)),
                on_provider_error="skip",
            )
            return [list(r.variants) for r in res]

        return generate

    return factory


def _mine(*, job: BackgroundJob, progress: JobProgress, generate_factory, validate) -> dict[str, Any]:
    from ssl_engine.adversarial import judge_validator, mine_hard_examples

    p = job.params
    project = job.project
    version = ModelVersion.objects.get(pk=p["model_version"])
    task = "response" if project.task == Project.Task.RESPONSE else "prompt"
    progress.update(force=True, phase="load model", done=0, total=len(p["directions"]))
    scorer = _scorer_for(version)
    threshold = float(version.threshold)
    factory = generate_factory or _llm_generate_factory(job, task)
    provider = provider_label(spec=p.get("provider")) if generate_factory is None else "scripted"
    prompt_of: dict[str, str | None] = {}

    def score(texts: Sequence[str]) -> list[float]:
        prompts = [prompt_of.get(t) for t in texts] if task == "response" else None
        return [s[0] for s in scorer.score(list(texts), prompts)]

    result: dict[str, Any] = {
        "model_version": version.pk,
        "model_name": version.name,
        "threshold": threshold,
        "directions": {},
    }
    for n_dir, direction in enumerate(p["directions"]):
        kind, label = DIRECTIONS[direction]
        sources = list(
            Item.objects.filter(
                project=project, split__in=[Item.Split.SEED, Item.Split.POOL], excluded=False, human_label=label
            )
            .exclude(source="adversarial")
            .order_by("id")
            .values_list("id", "text", "prompt")
        )
        if p.get("limit"):
            sources = sources[: int(p["limit"])]
        for _pk, text, prompt in sources:
            prompt_of[text] = prompt or None
        inner = factory("evade" if direction == "evade" else "alarm")

        def generate(texts: Sequence[str], _inner=inner) -> list[list[str]]:
            outs = _inner(list(texts), [prompt_of.get(t) for t in texts] if task == "response" else None)
            for t, cands in zip(texts, outs, strict=False):
                for c in cands:
                    prompt_of.setdefault(c, prompt_of.get(t))
            return outs

        check = validate
        if check is None and p.get("judge"):
            judges = [provider_spec_resolve(spec=j) for j in p["judge"]["judges"]]
            check = judge_validator(judges, label=label, task=task)
        t0 = time.monotonic()
        mined = mine_hard_examples(
            [s[1] for s in sources],
            generate=generate,
            score=score,
            threshold=threshold,
            direction=direction,
            iterations=int(p["iterations"]),
            validate=check,
        )
        stored = _store_hard_examples(
            job=job,
            kind=kind,
            direction=direction,
            sources=sources,
            mined=mined,
            threshold=threshold,
            provider=provider,
            version=version,
        )
        result["directions"][direction] = {
            "kind": kind,
            "sources": len(sources),
            "already_wrong": len(mined.already_wrong),
            "stored": stored,
            "seconds": round(time.monotonic() - t0, 3),
            "iterations": [
                {
                    "iteration": s.iteration,
                    "sources": s.sources,
                    "candidates": s.candidates,
                    "fooled": s.fooled,
                    "sources_fooled": s.sources_fooled,
                    "rejected_by_judge": s.rejected_by_validator,
                    "fooled_rate": round(s.fooled_rate, 4),
                    "mean_score": None if s.mean_score != s.mean_score else round(s.mean_score, 4),
                }
                for s in mined.stats
            ],
        }
        progress.update(force=True, phase=f"mined {direction}", done=n_dir + 1, total=len(p["directions"]))
    return result


def _store_hard_examples(*, job, kind, direction, sources, mined, threshold, provider, version) -> int:
    """Insert fooled candidates (ON CONFLICT DO NOTHING); a text already stored for the item is skipped."""
    from ssl_engine.augment.llm import PROMPT_VERSION

    method = f"adversarial_{direction}"
    model_name = f"model-v{version.pk}"[:200]
    item_ids = [s[0] for s in sources]
    existing: dict[int, set[str]] = {}
    next_index: dict[int, int] = {}
    for item_id, text, idx in AugmentedVariant.objects.filter(item_id__in=item_ids, kind=kind).values_list(
        "item_id", "text", "variant_index"
    ):
        existing.setdefault(item_id, set()).add(normalize_text(text))
        next_index[item_id] = max(next_index.get(item_id, -1), idx)
    rows = []
    for h in mined.hard_examples:
        item_id = sources[h.source_index][0]
        key = normalize_text(h.text)
        if key in existing.setdefault(item_id, set()):
            continue
        existing[item_id].add(key)
        next_index[item_id] = next_index.get(item_id, -1) + 1
        margin = (threshold - h.score) if direction == "evade" else (h.score - threshold)
        rows.append(
            AugmentedVariant(
                item_id=item_id,
                job=job,
                kind=kind,
                method=method,
                provider=provider[:64],
                model_name=model_name,
                prompt_version=PROMPT_VERSION,
                variant_index=next_index[item_id],
                text=h.text,
                status=AugmentedVariant.Status.PENDING,
                model_score=h.score,
                review_priority=HIGH_PRIORITY + round(margin, 4),
                curation={
                    "stage": "adversarial",
                    "direction": direction,
                    "source_score": round(h.source_score, 4),
                    "iteration": h.iteration,
                    "threshold": threshold,
                    "model_version": version.pk,
                    "judge_checked": bool(job.params.get("judge")),
                },
            )
        )
    before = AugmentedVariant.objects.filter(job=job, kind=kind).count()
    AugmentedVariant.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return AugmentedVariant.objects.filter(job=job, kind=kind).count() - before


def _evaluate(*, job: BackgroundJob, progress: JobProgress) -> dict[str, Any]:
    """Recall of the active model on the source job's confirmed hard examples (and probe FP rate)."""
    source = BackgroundJob.objects.get(pk=job.params["source_job"])
    version = ModelVersion.objects.get(pk=job.params["model_version"])
    confirmed = list(
        AugmentedVariant.objects.filter(job=source, status=AugmentedVariant.Status.APPROVED)
        .select_related("item")
        .order_by("id")
    )
    progress.update(force=True, phase="score", done=0, total=len(confirmed))
    out: dict[str, Any] = {
        "source_job": source.pk,
        "model_version": version.pk,
        "model_name": version.name,
        "threshold": version.threshold,
    }
    if confirmed:
        scorer = _scorer_for(version)
        task_prompts = [v.item.prompt or None for v in confirmed] if source.project.task == "response" else None
        scores = [s[0] for s in scorer.score([v.text for v in confirmed], task_prompts)]
        for kind, want in ((AugmentedVariant.Kind.ADVERSARIAL, True), (AugmentedVariant.Kind.FP_PROBE, False)):
            picked = [(v, s) for v, s in zip(confirmed, scores, strict=True) if v.kind == kind]
            if not picked:
                continue
            flagged = sum(1 for _, s in picked if s >= version.threshold)
            mined_threshold = float((source.result or {}).get("threshold", version.threshold))
            before = sum(1 for v, _ in picked if v.model_score is not None and v.model_score >= mined_threshold)
            name = "recall" if want else "false_positive_rate"
            out[kind] = {
                "n": len(picked),
                f"{name}_before": round(before / len(picked), 4),
                f"{name}_after": round(flagged / len(picked), 4),
            }
    with transaction.atomic():
        locked = BackgroundJob.objects.select_for_update().get(pk=source.pk)
        evaluations = list((locked.result or {}).get("evaluations", []))
        evaluations.append({**out, "job": job.pk, "job_label": job.label})
        locked.result = {**(locked.result or {}), "evaluations": evaluations}
        locked.save(update_fields=["result"])
    return out


# --- confirmation by reviewers -------------------------------------------------------------


def hard_example_sync(*, variant: AugmentedVariant, user) -> Item | None:
    """After a review of an adversarial/fp_probe variant: approve -> seed item labeled by the reviewer.

    Idempotent: the promoted item is found by content hash; a repeated approval adds no
    row. A later reject records a reject annotation by the reviewer, which excludes it.
    """
    if variant.kind not in (AugmentedVariant.Kind.ADVERSARIAL, AugmentedVariant.Kind.FP_PROBE):
        return None
    from annotations.services.labels import item_refresh_label

    source = variant.item
    project = source.project
    label = Label.HARMFUL if variant.kind == AugmentedVariant.Kind.ADVERSARIAL else Label.UNHARMFUL
    chash = content_hash(variant.text, source.prompt or "")
    item = Item.objects.select_for_update().filter(project=project, content_hash=chash).first()
    role = role_in(user, project) or Role.REVIEWER
    if variant.status == AugmentedVariant.Status.APPROVED:
        if item is None:
            item = Item.objects.create(
                project=project,
                text=variant.text,
                prompt=source.prompt,
                content_hash=chash,
                split=Item.Split.SEED,
                source="adversarial",
                external_id=f"variant-{variant.pk}",
                metadata={
                    "variant_id": variant.pk,
                    "source_item_id": source.pk,
                    "job_id": variant.job_id,
                    "kind": variant.kind,
                    "model_score": variant.model_score,
                },
            )
        latest = Annotation.objects.filter(item=item, annotator=user).order_by("-created_at", "-id").first()
        if latest is None or latest.kind != Annotation.Kind.LABEL or latest.label != label:
            Annotation.objects.create(
                item=item,
                annotator=user,
                role=role,
                kind=Annotation.Kind.LABEL,
                label=label,
                note=f"Confirmed {variant.get_kind_display().lower()} #{variant.pk}",
            )
            item_refresh_label(item=item)
        return item
    if variant.status == AugmentedVariant.Status.REJECTED and item is not None and item.source == "adversarial":
        latest = Annotation.objects.filter(item=item, annotator=user).order_by("-created_at", "-id").first()
        if latest is not None and latest.kind != Annotation.Kind.REJECT:
            Annotation.objects.create(
                item=item,
                annotator=user,
                role=role,
                kind=Annotation.Kind.REJECT,
                note=f"Rejected {variant.get_kind_display().lower()} #{variant.pk}",
            )
            item_refresh_label(item=item)
    return item


def adversarial_job_summary(*, job: BackgroundJob) -> dict[str, Any]:
    """Per-kind counts of a mining job's candidates by review status (confirmed = approved)."""
    rows = (
        AugmentedVariant.objects.filter(job=job)
        .values("kind")
        .annotate(
            total=Count("id"),
            confirmed=Count("id", filter=Q(status="approved")),
            rejected=Count("id", filter=Q(status="rejected")),
            pending=Count("id", filter=Q(status="pending")),
            max_score=Max("model_score"),
        )
    )
    return {r["kind"]: r for r in rows}
