"""Weak labels and robust UU label refinement (a ``TrainingRound`` of kind ``uu_refine``).

Noisy labels come from ``WeakLabel`` rows: an LLM judge (``judge_labels`` job, source
``llm_judge``), an imported file (``import_weak_labels``, source ``imported``), or the
active model's predictions (source ``model``, scored on the worker when the round runs).
The round splits the corpus (seed + pool + test items with a noisy label) into
pseudo-harmful / pseudo-unharmful sets, estimates θ from the human labels of seed/pool
items only, refines with ``ssl_engine.uu`` and stores every iteration as
``WeakLabel(source=refined, training_round, iteration)``. Test-split human labels are
never used by the refiner: they measure agreement per iteration (round.metrics).

Refined labels reach training only through ``refined_pseudo_labels`` (read by
``round_input_build`` when ``Project.use_refined_labels`` is set), as weighted
pseudo-labels, never as ``Annotation`` rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations.errors import ApplicationError
from annotations.models import BackgroundJob, Item, Label, ModelVersion, Project, TrainingRound, WeakLabel
from annotations.services.augmentation import (
    JobLost,
    JobProgress,
    _error_text,
    _require_admin,
    job_claim_or_resume,
    job_fail_if_running,
    job_finish_if_running,
    provider_spec_clean,
    provider_spec_resolve,
)
from annotations.services.hashing import content_hash

logger = logging.getLogger(__name__)

SOURCES = (WeakLabel.Source.LLM_JUDGE, WeakLabel.Source.MODEL, WeakLabel.Source.IMPORTED)
CORPUS_SPLITS = (Item.Split.SEED, Item.Split.POOL, Item.Split.TEST)
VARIANTS = ("robust", "unbiased", "pn")
_LABELS = {"harmful": Label.HARMFUL, "unharmful": Label.UNHARMFUL, "1": Label.HARMFUL, "0": Label.UNHARMFUL,
           "true": Label.HARMFUL, "false": Label.UNHARMFUL}


# --- imported weak labels ---------------------------------------------------------------


def _parse_label(value: Any) -> str | None:
    if isinstance(value, bool):
        value = int(value)
    return _LABELS.get(str(value).strip().lower())


@transaction.atomic
def weak_labels_import(*, project: Project, lines: Iterable[bytes | str]) -> dict[str, int]:
    """Import a JSONL of weak labels: ``{"id"|"external_id"|"text"(+"prompt"), "label", "score"?}``.

    Rows match items by id, then external id, then content hash. Earlier imported weak
    labels of the matched items are replaced; all or nothing (any bad line -> ApplicationError).
    """
    items = Item.objects.filter(project=project)
    by_id = {}
    rows: list[tuple[int, dict]] = []
    for n, raw in enumerate(lines, start=1):
        raw = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ApplicationError(f"Line {n}: not valid JSON ({exc.msg}).") from exc
        if not isinstance(rec, dict):
            raise ApplicationError(f"Line {n}: expected a JSON object.")
        rows.append((n, rec))
    ids = [r.get("id") for _, r in rows if isinstance(r.get("id"), int)]
    by_id = dict(items.filter(pk__in=ids).values_list("pk", "pk"))
    ext = [str(r["external_id"]) for _, r in rows if r.get("external_id")]
    by_ext = dict(items.filter(external_id__in=ext).exclude(external_id="").values_list("external_id", "pk"))
    hashes = {n: content_hash(str(r["text"]), str(r.get("prompt") or "")) for n, r in rows if r.get("text")}
    by_hash = dict(items.filter(content_hash__in=hashes.values()).values_list("content_hash", "pk"))
    labels: dict[int, tuple[str, float | None]] = {}
    unmatched = 0
    for n, rec in rows:
        label = _parse_label(rec.get("label"))
        if label is None:
            raise ApplicationError(f"Line {n}: label must be harmful/unharmful (or 1/0), got {rec.get('label')!r}.")
        score = rec.get("score")
        if score is not None and (not isinstance(score, (int, float)) or not 0 <= score <= 1):
            raise ApplicationError(f"Line {n}: score must be a number in [0, 1].")
        pk = by_id.get(rec.get("id")) or by_ext.get(str(rec.get("external_id") or "")) or by_hash.get(hashes.get(n))
        if pk is None:
            unmatched += 1
            continue
        labels[pk] = (label, score)
    WeakLabel.objects.filter(item_id__in=labels, source=WeakLabel.Source.IMPORTED, training_round=None).delete()
    WeakLabel.objects.bulk_create(
        [WeakLabel(item_id=pk, source=WeakLabel.Source.IMPORTED, label=lbl, score=sc) for pk, (lbl, sc) in labels.items()],
        batch_size=2000,
    )
    return {"imported": len(labels), "unmatched": unmatched, "lines": len(rows)}


# --- LLM judge labels (a background job) ----------------------------------------------


@transaction.atomic
def judge_labels_job_start(*, project: Project, user, provider: dict | None = None, limit: int | None = None,
                           method: str = "auto") -> BackgroundJob:
    """Queue a job that labels seed/pool/test items with an LLM judge (weak labels, source llm_judge)."""
    from annotations.services.augmentation import job_enqueue

    _require_admin(user=user, project=project, action="start LLM-judge labeling")
    if method not in ("auto", "score", "generate"):
        raise ApplicationError("The judge method must be auto, score or generate.", extra={"field": "method"})
    job = BackgroundJob.objects.create(
        project=project, kind=BackgroundJob.Kind.JUDGE, created_by=user,
        params={"provider": provider_spec_clean(provider), "limit": limit, "method": method, "batch_size": 64},
        progress={"phase": "queued", "done": 0, "total": 0},
    )
    job_enqueue(job)
    return job


def judge_labels_execute(*, job_id: int, provider_override: Any = None) -> str:
    """Run an LLM-judge labeling job; labels are upserted per item (re-running overwrites)."""
    from ssl_engine.llm_judge import llm_label

    job = job_claim_or_resume(job_id=job_id)
    if job is None:
        return "skipped"
    p = job.params
    progress = JobProgress(job_id)
    counts = {"labeled": 0, "unparseable": 0}
    try:
        ids = list(Item.objects.filter(project=job.project, split__in=CORPUS_SPLITS, excluded=False)
                   .order_by("id").values_list("id", flat=True))
        if p.get("limit"):
            ids = ids[: int(p["limit"])]
        provider = provider_override or provider_spec_resolve(p.get("provider"))
        task = "response" if job.project.task == Project.Task.RESPONSE else "prompt"
        bs = int(p.get("batch_size") or 64)
        for start in range(0, len(ids), bs):
            rows = list(Item.objects.filter(pk__in=ids[start : start + bs]).order_by("id")
                        .values_list("id", "text", "prompt"))
            res = llm_label([r[1] for r in rows], provider=provider, task=task,
                            prompts=[r[2] for r in rows] if task == "response" else None, method=p.get("method", "auto"))
            objs = []
            for k, (pk, _t, _p) in enumerate(rows):
                lab = int(res.labels[k])
                if lab < 0:
                    counts["unparseable"] += 1
                    continue
                score = float(res.p_harmful[k]) if res.p_harmful is not None else None
                objs.append(WeakLabel(item_id=pk, source=WeakLabel.Source.LLM_JUDGE,
                                      label=Label.HARMFUL if lab == 1 else Label.UNHARMFUL, score=score))
            with transaction.atomic():
                WeakLabel.objects.filter(item_id__in=[r[0] for r in rows], source=WeakLabel.Source.LLM_JUDGE,
                                         training_round=None).delete()
                WeakLabel.objects.bulk_create(objs)
            counts["labeled"] += len(objs)
            progress.update(force=start + bs >= len(ids), phase="label", done=min(start + bs, len(ids)),
                            total=len(ids), **counts)
        job_finish_if_running(job_id=job_id, result={**counts, "items": len(ids), "method": p.get("method", "auto")},
                              progress={"phase": "done", "done": len(ids), "total": len(ids)})
        return BackgroundJob.Status.SUCCEEDED
    except JobLost:
        return "lost"
    except Exception as exc:
        logger.exception("judge job %s failed", job_id)
        job_fail_if_running(job_id=job_id, error=_error_text(exc), result=counts)
        if isinstance(exc, (ApplicationError, ValueError)):
            return BackgroundJob.Status.FAILED
        raise


# --- UU refinement rounds -----------------------------------------------------------------


@transaction.atomic
def uu_refine_start(*, project: Project, user, source: str, iterations: int = 5, variant: str = "robust",
                    config: dict | None = None, seed: int = 0) -> TrainingRound:
    """Queue a UU refinement round (admins only) on the ``training`` queue after commit."""
    from annotations.services.rounds import _active_round, _already_running_error
    from annotations.tasks.augment import uu_refine_run as uu_refine_run_task

    _require_admin(user=user, project=project, action="start label refinement")
    if source not in SOURCES:
        raise ApplicationError(f"Unknown source {source!r}; choose llm_judge, model or imported.",
                               extra={"field": "source"})
    if variant not in VARIANTS:
        raise ApplicationError(f"Unknown variant {variant!r}; choose robust, unbiased or pn.", extra={"field": "variant"})
    if not isinstance(iterations, int) or not 1 <= iterations <= 50:
        raise ApplicationError("Iterations must be between 1 and 50.", extra={"field": "iterations"})
    if source == WeakLabel.Source.MODEL:
        if not ModelVersion.objects.filter(project=project, is_active=True).exists():
            raise ApplicationError("There is no active model to take noisy labels from.", extra={"field": "source"})
    elif not WeakLabel.objects.filter(item__project=project, source=source, training_round=None).exists():
        hint = "run an LLM-judge labeling job" if source == WeakLabel.Source.LLM_JUDGE else "import weak labels"
        raise ApplicationError(f"No {source} weak labels in this project yet; {hint} first.", extra={"field": "source"})
    extra = dict(config or {})
    allowed = {"tol", "lam", "prior", "confidence", "min_gap", "scorer", "fix_prior", "select"}
    if set(extra) - allowed:
        raise ApplicationError(f"Unknown refinement settings: {', '.join(sorted(set(extra) - allowed))}.",
                               extra={"field": "config"})
    if _active_round(project) is not None:
        raise _already_running_error(project)
    try:
        with transaction.atomic():
            rnd = TrainingRound.objects.create(
                project=project, kind=TrainingRound.Kind.UU_REFINE, algorithm="",
                config={"source": source, "iterations": iterations, "variant": variant, **extra}, seed=seed,
                started_by=user, progress={"phase": "queued"},
            )
    except IntegrityError as exc:
        raise _already_running_error(project) from exc
    round_id = rnd.pk
    transaction.on_commit(lambda: uu_refine_run_task.delay(round_id))
    return rnd


def _noisy_labels(*, project: Project, source: str, rows: list[tuple]) -> dict[int, tuple[int, float | None]]:
    """item id -> (0/1, score) for the chosen source (the model source scores on this worker)."""
    if source != WeakLabel.Source.MODEL:
        return {
            pk: (1 if label == Label.HARMFUL else 0, score)
            for pk, label, score in WeakLabel.objects.filter(
                item__project=project, source=source, training_round=None
            ).values_list("item_id", "label", "score")
        }
    from ssl_engine.engine import load_scorer

    version = ModelVersion.objects.get(project=project, is_active=True)
    scorer = load_scorer(version.path)
    scores = scorer.score([r[1] for r in rows], [r[2] or None for r in rows] if project.task == "response" else None)
    return {r[0]: (int(s[0] >= version.threshold), float(s[0])) for r, s in zip(rows, scores)}


def _agreement(pred: list[int], truth: list[int]) -> dict[str, float]:
    n = len(truth)
    if not n:
        return {"n": 0}
    tp = sum(1 for p, t in zip(pred, truth) if p == 1 and t == 1)
    fp = sum(1 for p, t in zip(pred, truth) if p == 1 and t == 0)
    fn = sum(1 for p, t in zip(pred, truth) if p == 0 and t == 1)
    correct = sum(1 for p, t in zip(pred, truth) if p == t)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"n": n, "accuracy": round(correct / n, 4), "f1": round(f1, 4), "precision": round(precision, 4),
            "recall": round(recall, 4)}


def _theta_json(est) -> dict[str, Any] | None:
    if est is None:
        return None
    return {
        "theta_p": round(est.theta_p, 4), "theta_n": round(est.theta_n, 4),
        "interval_p": [round(x, 4) for x in est.interval_p], "interval_n": [round(x, 4) for x in est.interval_n],
        "n_p": est.n_p, "n_n": est.n_n, "size_p": est.size_p, "size_n": est.size_n, "prior": round(est.prior, 4),
        "separated": bool(est.separated), "labels_needed": est.labels_needed,
    }


def uu_refine_execute(*, round_id: int, worker: str = "", embed=None) -> str:
    """Run a queued UU refinement round on this worker; returns the final status or "skipped"."""
    import numpy as np

    from annotations.services.augmentation import curation_embedder
    from annotations.services.rounds import DbProgressCallback, training_round_claim, training_round_fail
    from ssl_engine.uu import UUError, get_refiner

    if not training_round_claim(round_id=round_id, worker=worker):
        return "skipped"
    rnd = TrainingRound.objects.select_related("project").get(pk=round_id)
    project, cfg = rnd.project, dict(rnd.config)
    beat = DbProgressCallback(round_id)
    try:
        beat.beat("prepare", step=0, total=0, detail="reading data")
        rows = list(Item.objects.filter(project=project, split__in=CORPUS_SPLITS, excluded=False)
                    .order_by("id").values_list("id", "text", "prompt", "split", "human_label"))
        noisy = _noisy_labels(project=project, source=cfg["source"], rows=rows)
        rows = [r for r in rows if r[0] in noisy]
        if not rows:
            raise ApplicationError("No item has a noisy label from this source.")
        ids = [r[0] for r in rows]
        start = np.array([noisy[pk][0] for pk in ids], dtype=int)
        human = {k: int(r[4] == Label.HARMFUL) for k, r in enumerate(rows)
                 if r[3] in (Item.Split.SEED, Item.Split.POOL) and r[4]}
        held_out = [(k, int(r[4] == Label.HARMFUL)) for k, r in enumerate(rows) if r[3] == Item.Split.TEST and r[4]]
        beat.beat("embed", step=0, total=len(rows))
        embedder = embed or curation_embedder()
        texts = [f"{r[2]}\n\n{r[1]}" if project.task == Project.Task.RESPONSE and r[2] else r[1] for r in rows]
        emb = np.asarray(embedder(texts))
        if beat.lost:
            return "lost"
        beat.beat("refine", step=0, total=int(cfg["iterations"]))
        refine_cfg = {k: v for k, v in cfg.items() if k not in ("source",)}
        try:
            result = get_refiner("uu_refine")(emb, start, human, refine_cfg, int(rnd.seed))
        except UUError as exc:
            raise ApplicationError(f"UU refinement cannot run: {exc}") from exc
        truth = [t for _, t in held_out]
        iterations = [{
            "iteration": 0, "labels_harmful": int(start.sum()), "changed": 0,
            "test": _agreement([int(start[k]) for k, _ in held_out], truth),
            "theta": _theta_json(result.initial_theta),
        }]
        weak_rows = []
        for it in result.iterations:
            iterations.append({
                "iteration": it.iteration, "labels_harmful": int(it.labels.sum()), "changed": it.n_changed,
                "frac_changed": round(it.frac_changed, 4), "human_agreement": round(it.human_agreement, 4),
                "test": _agreement([int(it.labels[k]) for k, _ in held_out], truth), "theta": _theta_json(it.theta),
            })
            weak_rows += [
                WeakLabel(item_id=pk, source=WeakLabel.Source.REFINED, training_round_id=round_id,
                          iteration=it.iteration, label=Label.HARMFUL if lab else Label.UNHARMFUL, score=float(sc))
                for pk, lab, sc in zip(ids, it.labels.tolist(), it.scores.tolist())
            ]
        final = iterations[-1]["test"]
        metrics = {"uu": {
            **{k: final.get(k) for k in ("f1", "precision", "recall", "accuracy", "n")},
            "source": cfg["source"], "variant": result.variant, "stopped_reason": result.stopped_reason,
            "converged": result.converged, "n_items": len(rows), "n_human": len(human), "n_held_out": len(held_out),
            "iterations": iterations,
        }}
        beat.beat("store", step=0, total=len(weak_rows))
        with transaction.atomic():
            locked = TrainingRound.objects.select_for_update().get(pk=round_id)
            if locked.status != TrainingRound.Status.RUNNING:
                return "lost"
            now = timezone.now()
            if locked.cancel_requested:
                TrainingRound.objects.filter(pk=round_id).update(status=TrainingRound.Status.CANCELLED,
                                                                 finished_at=now, progress={"phase": "cancelled"})
                return TrainingRound.Status.CANCELLED
            WeakLabel.objects.bulk_create(weak_rows, batch_size=5000, ignore_conflicts=True)
            TrainingRound.objects.filter(pk=round_id).update(
                status=TrainingRound.Status.SUCCEEDED, finished_at=now, heartbeat_at=now, metrics=metrics,
                n_labeled=len(human), n_unlabeled=len(rows) - len(human),
                snapshot={"source": cfg["source"], "item_count": len(rows), "human_item_ids": [ids[k] for k in human],
                          "held_out_item_ids": [ids[k] for k, _ in held_out]},
                progress={"phase": "done", "step": len(result.iterations), "total": int(cfg["iterations"])},
            )
        return TrainingRound.Status.SUCCEEDED
    except ApplicationError as exc:
        training_round_fail(round_id=round_id, error=exc.message)
        return TrainingRound.Status.FAILED
    except Exception as exc:  # noqa: BLE001 - any error ends the round as failed, with its text
        logger.exception("uu refinement round %s failed", round_id)
        training_round_fail(round_id=round_id, error=_error_text(exc))
        return TrainingRound.Status.FAILED


# --- refined labels as weighted pseudo-labels for the next SSL round -------------------------


def refined_pseudo_labels(*, project: Project) -> tuple[int | None, dict[int, str], float]:
    """(round id, {pool item id: label}, weight) of the latest succeeded UU round's final iteration.

    Empty unless ``project.use_refined_labels``; only pool items without a human label
    (human labels always win, and evaluation splits are never trained on).
    """
    if not project.use_refined_labels:
        return None, {}, 0.0
    rnd = (TrainingRound.objects.filter(project=project, kind=TrainingRound.Kind.UU_REFINE,
                                        status=TrainingRound.Status.SUCCEEDED).order_by("-finished_at", "-id").first())
    if rnd is None:
        return None, {}, 0.0
    last = (WeakLabel.objects.filter(training_round=rnd, source=WeakLabel.Source.REFINED)
            .order_by("-iteration").values_list("iteration", flat=True).first())
    if last is None:
        return rnd.pk, {}, 0.0
    labels = dict(WeakLabel.objects.filter(
        training_round=rnd, source=WeakLabel.Source.REFINED, iteration=last, item__split=Item.Split.POOL,
        item__human_label="", item__excluded=False,
    ).values_list("item_id", "label"))
    return rnd.pk, labels, float(min(1.0, max(0.0, project.refined_label_weight)))
