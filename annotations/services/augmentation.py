"""Augmentation jobs: generate variants of items on a worker, curate them, store them for review.

Lifecycle (the one job system, ``annotations.services.jobs``): ``augmentation_job_start``
(dashboard form or ``manage.py augment``) creates a queued ``BackgroundJob(kind=augment)``
and enqueues ``annotations.augmentation_job_run`` on the ``augment`` queue after commit.
The worker claims the row atomically, and ``AugmentationRunner`` walks the items in id
order in batches (item by item for short jobs, so progress moves), and per batch:
generates variants (``ssl_engine`` generators, or the cheap augmenters), curates them
(``curate_variants``; optional LLM-judge votes) and bulk-inserts ``AugmentedVariant``
rows with ``ON CONFLICT DO NOTHING`` on the generation key
(item, kind, method, model_name, prompt_version, variant_index).

Idempotency and resume: an item that already holds a row for every slot
``0..per_item-1`` of the same generation key is skipped before anything is generated, so
re-running a job (or starting a new one over the same items) never duplicates rows and
only fills what is missing. Kept variants go into the lowest free slots, and raw outputs
the generator itself rejected (refusals, echoes, empty answers) fill the remaining slots
as ``dropped`` rows with their reason, so a finished item is never asked again.
A job left ``running`` by a dead worker is failed by the stale-job sweep; an admin's
"Resume" re-queues it, and a delivery also takes over a running job whose heartbeat is
older than ``UMBRA_JOB_HEARTBEAT_TIMEOUT``.

Provider API keys are never stored: a job stores the *name* of an environment variable
(``api_key_env``) and the worker reads the key from its own environment; both the name and
the provider's base URL must be allowed by the deployment (``services.outbound``).
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from annotations.errors import FieldError
from annotations.models import AugmentedVariant, BackgroundJob, Item, Project
from annotations.services.jobs import JobRunner, job_create, job_enqueue, job_execute, progress_chunk, runner
from annotations.services.outbound import provider_label, provider_spec_clean, provider_spec_resolve

logger = logging.getLogger(__name__)

LLM_METHODS = ("llm_rewrite",)
MODEL_METHODS = ("llm_rewrite", "backtranslation")
CHEAP_METHODS = ("word_dropout", "word_swap", "synonym")
METHODS = (*MODEL_METHODS, *CHEAP_METHODS)
ITEM_SCOPES = {"seed": (Item.Split.SEED,), "pool": (Item.Split.POOL,), "all": (Item.Split.SEED, Item.Split.POOL)}
CHEAP_VERSION = "umbra-cheap-v1"
MAX_PER_ITEM = 10


def _model_name(method: str, spec: dict[str, Any], config: dict[str, Any]) -> str:
    if method == "llm_rewrite":
        model = spec.get("model") or "SmolLM2-135M-Instruct.Q4_1.gguf"
        return (f"{spec.get('kind', 'local')}:{model}")[:200]
    if method == "backtranslation":
        pivots = config.get("pivots") or ["de", "fr", "ru", "ro"]
        models = config.get("models") or {}
        parts = [f"{p}={'|'.join(models[p]) if p in models else 'opus-mt'}" for p in pivots]
        return ("marian:" + ",".join(parts))[:200]
    return method


def _prompt_version(method: str) -> str:
    if method == "llm_rewrite":
        from ssl_engine.augment.llm import PROMPT_VERSION  # light: no torch at import

        return PROMPT_VERSION
    if method == "backtranslation":
        from ssl_engine.augment.backtranslation import BACKTRANSLATION_VERSION

        return BACKTRANSLATION_VERSION
    return CHEAP_VERSION


# --- start / resume / cancel (web side) ---------------------------------------------


@transaction.atomic
def augmentation_job_start(
    *,
    project: Project,
    user,
    method: str,
    per_item: int = 2,
    items: str = "seed",
    provider: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    curation: dict[str, Any] | None = None,
    judge: dict[str, Any] | None = None,
    limit: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
) -> BackgroundJob:
    """Queue an augmentation job (admins only) and enqueue it on the ``augment`` queue after commit."""
    if method not in METHODS:
        raise FieldError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.", field="method")
    if not isinstance(per_item, int) or not 1 <= per_item <= MAX_PER_ITEM:
        raise FieldError(f"Variants per item must be between 1 and {MAX_PER_ITEM}.", field="per_item")
    if items not in ITEM_SCOPES:
        raise FieldError("Items must be seed, pool or all.", field="items")
    if limit is not None and limit < 1:
        raise FieldError("The item limit must be positive.", field="limit")
    if not 1 <= batch_size <= 512:
        raise FieldError("The batch size must be between 1 and 512.", field="batch_size")
    spec = provider_spec_clean(spec=provider) if method == "llm_rewrite" else {}
    config = dict(config or {})
    if method == "backtranslation":
        models = config.get("models") or {}
        if not isinstance(models, dict) or any(
            not isinstance(v, (list, tuple)) or len(v) != 2 for v in models.values()
        ):
            raise FieldError(
                "Backtranslation models must map a pivot to [en->pivot, pivot->en] paths.",
                field="backtranslation_models",
            )
    judge = dict(judge or {})
    if judge:
        judge["judges"] = [provider_spec_clean(spec=j) for j in judge.get("judges") or [{"kind": "local"}]]
    from ssl_engine.augment.curation import CurationConfig

    try:
        CurationConfig(**(curation or {}))
    except TypeError as exc:
        raise FieldError(f"Invalid curation settings: {exc}", field="curation") from exc
    scope = Item.objects.filter(project=project, split__in=ITEM_SCOPES[items], excluded=False)
    if not scope.exists():
        raise FieldError(f"No {items} items to augment in this project.", field="items")
    job = job_create(
        model=BackgroundJob,
        project=project,
        kind=BackgroundJob.Kind.AUGMENT,
        created_by=user,
        params={
            "method": method,
            "per_item": per_item,
            "items": items,
            "limit": limit,
            "provider": spec,
            "config": config,
            "curation": dict(curation or {}),
            "judge": judge,
            "batch_size": batch_size,
            "seed": seed,
            "model_name": _model_name(method, spec, config),
            "prompt_version": _prompt_version(method),
        },
        progress={"phase": "queued", "done": 0, "total": 0},
    )
    job_enqueue(job=job)
    return job


def cheap_variants_generate(
    *, texts: Sequence[str], method: str, per_item: int, seed: int, keys: Sequence[int]
) -> list[tuple[list[str], list[tuple[str, str]]]]:
    """Cheap augmenter variants, seeded per (item, slot) so a resumed job writes the same text."""
    from ssl_engine.augment import get_augmenter

    aug = get_augmenter(method)
    out = []
    for key, text in zip(keys, texts, strict=True):
        variants = [aug(text, random.Random(f"{seed}|{key}|{k}")) for k in range(per_item)]
        out.append((variants, []))
    return out


def curation_embedder() -> Callable | None:
    """The backbone's mean-pooled embeddings (bundled MiniLM unless SSL_ENGINE_BACKBONE is set)."""
    if getattr(settings, "UMBRA_CURATION_EMBEDDINGS", True) is False:
        return None
    from ssl_engine.augment.curation import minilm_embedder

    return minilm_embedder(device=settings.SSL_ENGINE_DEVICE or "cpu", model_path=settings.SSL_ENGINE_BACKBONE or None)


def _existing_slots(
    *, item_ids: Sequence[int], kind: str, method: str, model_name: str, prompt_version: str
) -> dict[int, set[int]]:
    slots: dict[int, set[int]] = {}
    for item_id, idx in AugmentedVariant.objects.filter(
        item_id__in=item_ids, kind=kind, method=method, model_name=model_name, prompt_version=prompt_version
    ).values_list("item_id", "variant_index"):
        slots.setdefault(item_id, set()).add(idx)
    return slots


def _vote_text(vote: bool | None) -> str:
    return "yes" if vote is True else "no" if vote is False else "?"


@runner
class AugmentationRunner(JobRunner):
    """Generates, curates and stores variants item by item; a re-run or resume fills only the missing slots."""

    name = BackgroundJob.Kind.AUGMENT
    task = "annotations.augmentation_job_run"
    queue = "augment"
    takeover = True
    resumable = True

    def run(self) -> dict[str, Any]:
        p = self.job.params
        method = p["method"]
        self.counts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        t0 = time.monotonic()
        item_ids = self._item_ids()
        total = len(item_ids)
        self.progress.update(force=True, phase="prepare", done=0, total=total)
        generate, embed = self.options.get("generate"), self.options.get("embed")
        if method in MODEL_METHODS and generate is None:
            from ssl_engine.augment import generators  # noqa: F401  registers llm_rewrite, backtranslation
        from ssl_engine.augment.curation import CurationConfig

        cur_cfg = CurationConfig(**(p.get("curation") or {}))
        wants_band = cur_cfg.similarity_low is not None or cur_cfg.similarity_high is not None
        embedder = embed if embed is not None else (curation_embedder() if wants_band else None)
        chunk = progress_chunk(batch_size=int(p.get("batch_size") or 16), total=total)
        done = 0
        for start in range(0, total, chunk):
            batch_ids = item_ids[start : start + chunk]
            self._batch(batch_ids, generate=generate, embed=embedder, seed=int(p.get("seed") or 0) + start)
            done += len(batch_ids)
            elapsed = max(time.monotonic() - t0, 1e-6)
            self.progress.update(
                force=done == total,
                phase="generate",
                done=done,
                total=total,
                created=self.counts["created"],
                kept=self.counts["kept"],
                dropped=self.counts["dropped"],
                per_second=round(self.counts["generated"] / elapsed, 3),
            )
        seconds = round(time.monotonic() - t0, 3)
        c = self.counts
        result = {
            "items": total,
            "items_skipped": c["items_skipped"],
            "generated": c["generated"],
            "created": c["created"],
            "kept": c["kept"],
            "dropped": c["dropped"],
            "pass_rate": round(c["kept"] / c["generated"], 4) if c["generated"] else None,
            "drop_reasons": dict(self.reasons.most_common()),
            "seconds": seconds,
            "variants_per_second": round(c["generated"] / seconds, 3) if seconds else None,
        }
        return {"result": result, "progress": {"phase": "done", "done": total, "total": total, "created": c["created"]}}

    def _item_ids(self) -> list[int]:
        p = self.job.params
        scope = Item.objects.filter(project=self.job.project, split__in=ITEM_SCOPES[p["items"]], excluded=False)
        item_ids = list(scope.order_by("id").values_list("id", flat=True))
        return item_ids[: int(p["limit"])] if p.get("limit") else item_ids

    def _batch(self, batch_ids: list[int], *, generate, embed, seed: int) -> None:
        p = self.job.params
        method, per_item = p["method"], int(p["per_item"])
        slots = _existing_slots(
            item_ids=batch_ids,
            kind=AugmentedVariant.Kind.AUGMENTATION,
            method=method,
            model_name=p["model_name"],
            prompt_version=p["prompt_version"],
        )
        todo = [i for i in batch_ids if len(slots.get(i, set()) & set(range(per_item))) < per_item]
        self.counts["items_skipped"] += len(batch_ids) - len(todo)
        if not todo:
            return
        rows = list(Item.objects.filter(pk__in=todo).order_by("id").values_list("id", "text", "prompt"))
        self.counts["created"] += _augment_batch(
            job=self.job,
            rows=rows,
            slots=slots,
            method=method,
            per_item=per_item,
            model_name=p["model_name"],
            prompt_version=p["prompt_version"],
            provider=provider_label(spec=p.get("provider")) if method == "llm_rewrite" else method,
            task="response" if self.job.project.task == Project.Task.RESPONSE else "prompt",
            generate=generate,
            embed=embed,
            counts=self.counts,
            reasons=self.reasons,
            seed=seed,
        )

    def stopped_fields(self) -> dict[str, Any]:
        counts = getattr(self, "counts", Counter())
        return {"result": {"created": counts["created"], "drop_reasons": dict(getattr(self, "reasons", {}))}}


def augmentation_job_execute(
    *, job_id: int, worker: str = "", generate: Callable | None = None, embed: Callable | None = None
) -> str:
    """Run (or resume) an augmentation job on this worker (the task's body).

    ``generate`` and ``embed`` replace the configured generator / embedder (tests, benchmarks).
    """
    options = {k: v for k, v in {"generate": generate, "embed": embed}.items() if v is not None}
    return job_execute(runner_name=AugmentationRunner.name, job_id=job_id, worker=worker, **options)


def _augment_batch(
    *,
    job: BackgroundJob,
    rows,
    slots,
    method: str,
    per_item: int,
    model_name: str,
    prompt_version: str,
    provider: str,
    task: str,
    generate,
    embed,
    counts: Counter,
    reasons: Counter,
    seed: int,
) -> int:
    """Generate, curate and insert variants for one batch of items; returns rows inserted."""
    from ssl_engine.augment.curation import curate_variants, reason_code

    p = job.params
    texts = [r[1] for r in rows]
    prompts = [r[2] or None for r in rows] if task == "response" else None
    # (accepted variants, generator rejections [(raw, reason)]) per item
    if generate is not None:
        generated = generate(texts, prompts)
    elif method in CHEAP_METHODS:
        generated = cheap_variants_generate(
            texts=texts, method=method, per_item=per_item, seed=seed, keys=[r[0] for r in rows]
        )
    else:
        from ssl_engine.augment.generators import generate_variants

        config = dict(p.get("config") or {})
        if method == "llm_rewrite":
            config.setdefault("n_variants", per_item)
            config.setdefault("on_provider_error", "skip")
            config["provider"] = provider_spec_resolve(spec=p.get("provider"))
            if task == "response":
                config.setdefault("task", "response")
        res = generate_variants(texts, generator=method, prompts=prompts, config=config, seed=seed)
        generated = [(list(g.variants)[:per_item], [(r.raw, r.reason) for r in g.rejected]) for g in res]
    variants = [g[0][:per_item] for g in generated]
    counts["generated"] += sum(len(v) for v in variants)
    judge_votes = None
    judge = p.get("judge") or {}
    if judge and any(variants):
        from ssl_engine.llm_judge import judge_rewrites

        judges = [provider_spec_resolve(spec=j) for j in judge.get("judges") or [{"kind": "local"}]]
        judge_votes = judge_rewrites(
            texts, variants, judges=judges, task=task, prompts=prompts, samples_per_judge=int(judge.get("samples") or 1)
        )
    report = curate_variants(texts, variants, config=p.get("curation") or None, embed=embed, judge_votes=judge_votes)
    new_rows: list[AugmentedVariant] = []
    for (item_id, _text, _prompt), decisions, (_, rejected) in zip(rows, report.decisions, generated, strict=True):
        free = [k for k in range(per_item) if k not in slots.get(item_id, set())]
        entries = []
        for d in decisions:
            cur: dict[str, Any] = {"stage": "curation", "reasons": list(d.reasons)}
            if d.similarity is not None:
                cur["similarity"] = round(d.similarity, 4)
            if judge_votes is not None:
                votes = judge_votes[d.source_index][d.variant_index]
                cur["judge_votes"] = [{"judge": f"judge {k + 1}", "vote": _vote_text(v)} for k, v in enumerate(votes)]
                cur["judge_yes"] = d.judge_yes
            status = AugmentedVariant.Status.PENDING if d.kept else AugmentedVariant.Status.DROPPED
            entries.append((d.text, status, "; ".join(d.reasons)[:200], cur))
        for raw, reason in rejected:
            if reason.startswith("provider_error"):
                continue  # transient: the slot stays free, so a resumed job asks again
            if reason_code(reason) in ("surplus",):
                continue
            entries.append(
                (raw or "", AugmentedVariant.Status.DROPPED, reason[:200], {"stage": "generation", "reasons": [reason]})
            )
        # Kept variants take the lowest free slots; generator rejections fill what is left.
        entries.sort(key=lambda e: e[1] != AugmentedVariant.Status.PENDING)
        for slot, (text, status, reason, cur) in zip(free, entries, strict=False):
            new_rows.append(
                AugmentedVariant(
                    item_id=item_id,
                    job=job,
                    kind=AugmentedVariant.Kind.AUGMENTATION,
                    method=method,
                    provider=provider,
                    model_name=model_name,
                    prompt_version=prompt_version,
                    variant_index=slot,
                    text=text,
                    status=status,
                    curation_reason=reason,
                    curation=cur,
                )
            )
            if status == AugmentedVariant.Status.PENDING:
                counts["kept"] += 1
            else:
                counts["dropped"] += 1
                for code in dict.fromkeys(reason_code(r) for r in cur["reasons"]):
                    reasons[code] += 1
    if not new_rows:
        return 0
    key = {
        "item_id__in": [r[0] for r in rows],
        "kind": AugmentedVariant.Kind.AUGMENTATION,
        "method": method,
        "model_name": model_name,
        "prompt_version": prompt_version,
    }
    before = AugmentedVariant.objects.filter(**key).count()
    AugmentedVariant.objects.bulk_create(new_rows, ignore_conflicts=True, batch_size=500)  # ON CONFLICT DO NOTHING
    return AugmentedVariant.objects.filter(**key).count() - before


# --- after a round: loss-based flags ------------------------------------------------------


def variants_record_view_losses(
    *, training_round_id: int, variant_ids: Sequence[int], view_losses: Sequence[Any], round_number: int | None = None
) -> dict[str, int]:
    """Store a round's per-variant training loss; flag the variants whose loss stayed high.

    ``variant_ids`` is the round snapshot's list, in the order the round read them
    (item, variant index, id): the j-th of an item's ids is its ``strong_views[j]``.
    ``view_losses`` are the engine's ``ViewLoss`` rows (flagged against the whole round's
    population). Each variant the round drew gets ``curation["loss"]`` (round, per-epoch
    losses, mean, flagged); a flagged one gets ``curation["loss_flag"]`` with the reason and a
    review priority of at least 5, so reviewers see it first, and a pending one stops being
    used as an unreviewed strong view. A later round that drew it without flagging clears the
    flag. Nothing is dropped automatically. Call inside the round's storing transaction.
    """
    by_item: dict[int, list[int]] = defaultdict(list)
    item_of = dict(AugmentedVariant.objects.filter(pk__in=variant_ids).values_list("pk", "item_id"))
    for vid in variant_ids:
        if vid in item_of:
            by_item[item_of[vid]].append(vid)
    rows: dict[int, Any] = {}
    for vl in view_losses:
        ids = by_item.get(int(vl.example_id), [])
        if 0 <= vl.view_index < len(ids) and vl.mean_loss == vl.mean_loss:  # NaN: never drawn
            rows[ids[vl.view_index]] = vl
    variants = AugmentedVariant.objects.select_for_update().in_bulk(sorted(rows))
    changed, flagged = [], 0
    for vid, vl in rows.items():
        v = variants.get(vid)
        if v is None:
            continue
        curation = {k: val for k, val in (v.curation or {}).items() if k != "loss_flag"}
        curation["loss"] = {
            "round": training_round_id,
            "round_number": round_number or training_round_id,
            "as": "labeled copy" if vl.labeled else "strong view",
            "epochs": [None if x != x else round(float(x), 4) for x in vl.losses],  # JSON has no NaN
            "mean": round(float(vl.mean_loss), 4),
            "flagged": bool(vl.flagged),
        }
        if vl.flagged:
            curation["loss_flag"] = vl.reason
            v.review_priority = max(v.review_priority, 5.0)
            flagged += 1
        v.curation = curation
        changed.append(v)
    AugmentedVariant.objects.bulk_update(changed, ["curation", "review_priority"], batch_size=500)
    return {"checked": len(changed), "flagged": flagged}
