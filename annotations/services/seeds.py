"""Seed suggestion (cold start): which pool items to label first, chosen without any label.

An admin asks for N items; a job embeds the unlabeled pool (a seeded sample of at most
``UMBRA_SEED_SUGGESTION_MAX_POOL`` items), scores a label-free harm prior (the built-in harm
descriptions plus the project's category names) and picks typical, diverse items with the
suspect stratum over-sampled (``ssl_engine.selection``). The picks move from the pool to the
seed set, where the labeling queue hands them out, each with the number of pool items it
stands for (``Item.seed_weight``), so the harmful share estimated from the seeds stays honest.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction

from annotations.errors import Conflict, FieldError
from annotations.models import BackgroundJob, Item, Project
from annotations.services.jobs import JobRunner, job_create, job_enqueue, runner

MAX_SEEDS = 2000


@transaction.atomic
def seed_suggestion_start(*, project: Project, user, n: int = 200, seed: int = 0) -> BackgroundJob:
    """Queue a seed-suggestion job for ``n`` pool items (admins only)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SEEDS:
        raise FieldError(f"Ask for between 1 and {MAX_SEEDS} seed items.", field="n")
    pool = Item.objects.filter(project=project, split=Item.Split.POOL, human_label="", excluded=False).count()
    if pool == 0:
        raise FieldError("The unlabeled pool is empty: import pool items first.", field="n")
    busy = BackgroundJob.objects.filter(
        project=project, kind=BackgroundJob.Kind.SEEDS, status__in=BackgroundJob.ACTIVE_STATUSES
    ).first()
    if busy is not None:
        raise Conflict(f"{busy.label} is {busy.status}; wait for it to finish.")
    job = job_create(
        model=BackgroundJob,
        project=project,
        kind=BackgroundJob.Kind.SEEDS,
        created_by=user,
        params={"n": min(n, pool), "seed": int(seed)},
        progress={"phase": "queued"},
    )
    job_enqueue(job=job)
    return job


def _max_pool() -> int:
    return int(getattr(settings, "UMBRA_SEED_SUGGESTION_MAX_POOL", 20000))


@runner
class SeedSuggestionRunner(JobRunner):
    """Embeds the pool, picks the seeds, and moves them to the seed set with the status flip."""

    name = BackgroundJob.Kind.SEEDS
    task = "annotations.seed_suggestion_run"
    queue = "augment"

    def run(self) -> dict[str, Any]:
        import numpy as np

        from ssl_engine.selection import embed_texts, suggest_for_texts

        job, project = self.job, self.job.project
        n, seed = int(job.params["n"]), int(job.params.get("seed", 0))
        ids = np.array(
            Item.objects.filter(project=project, split=Item.Split.POOL, human_label="", excluded=False)
            .order_by("id")
            .values_list("id", flat=True)
        )
        sample = (
            ids
            if len(ids) <= _max_pool()
            else np.sort(np.random.default_rng(seed).choice(ids, size=_max_pool(), replace=False))
        )
        scale = len(ids) / max(1, len(sample))  # each sampled item stands for this many pool items
        rows = dict(Item.objects.filter(pk__in=sample.tolist()).values_list("id", "text"))
        prompts = dict(Item.objects.filter(pk__in=sample.tolist()).values_list("id", "prompt"))
        texts = [f"{prompts[i]}\n\n{rows[i]}" if prompts[i] else rows[i] for i in sample.tolist()]
        self.progress.update(force=True, phase="embed", done=0, total=len(texts))
        embed = self.options.get("embed") or (
            lambda t: embed_texts(
                t, backbone=settings.SSL_ENGINE_BACKBONE or None, device=settings.SSL_ENGINE_DEVICE or "cpu"
            )
        )
        chunks = []
        step = 2048
        for start in range(0, len(texts), step):
            chunks.append(np.asarray(embed(texts[start : start + step])))
            self.progress.update(phase="embed", done=min(len(texts), start + step), total=len(texts))
        emb = np.concatenate(chunks) if chunks else np.zeros((0, 1))
        self.progress.update(force=True, phase="select", done=0, total=n)
        picks = suggest_for_texts(
            texts,
            n,
            seed=seed,
            embeddings=emb,
            embed=embed,
            extra_harm_descriptions=[str(c) for c in project.categories or []],
        )
        self.picks = [(int(sample[p.index]), p.prior_weight * scale, p.stratum) for p in picks]
        strata = {s: sum(1 for _, _, st in self.picks if st == s) for s in ("suspect", "rest")}
        return {
            "result": {
                "requested": n,
                "suggested": len(self.picks),
                "pool": int(len(ids)),
                "embedded": int(len(sample)),
                "strata": strata,
            }
        }

    def commit(self, job: BackgroundJob) -> None:
        for item_id, weight, _ in self.picks:
            Item.objects.filter(pk=item_id, split=Item.Split.POOL, human_label="").update(
                split=Item.Split.SEED, seed_weight=weight
            )
