"""Weak labels and robust UU label refinement (a ``BackgroundJob`` of kind ``refine``).

Noisy labels come from ``WeakLabel`` rows: an LLM judge (``judge_labels`` job, source
``llm_judge``), an imported file (``import_weak_labels``, source ``imported``), or the
active model's predictions (source ``model``, scored on the worker when the round runs).
The round splits the corpus (seed + pool + test items with a noisy label) into
pseudo-harmful / pseudo-unharmful sets, estimates θ from the human labels of seed/pool
items only, refines with ``ssl_engine.uu`` and stores every iteration as
``WeakLabel(source=refined, job, iteration)``. Test-split human labels are never used by
the refiner: they measure agreement per iteration (the job's result). Refinement jobs are
listed and numbered apart from training rounds; they run on the ``training`` queue.

Refined labels reach training only through ``selectors.labels.refined_pseudo_labels`` (read by
``round_input_build`` when ``Project.use_refined_labels`` is set), as weighted
pseudo-labels, never as ``Annotation`` rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from annotations.errors import ApplicationError, Conflict, FieldError
from annotations.models import BackgroundJob, Item, Label, ModelVersion, Project, WeakLabel
from annotations.services.hashing import content_hash
from annotations.services.jobs import JobRunner, job_create, job_enqueue, job_execute, progress_chunk, runner
from annotations.services.outbound import provider_spec_clean, provider_spec_resolve

logger = logging.getLogger(__name__)

SOURCES = (WeakLabel.Source.LLM_JUDGE, WeakLabel.Source.MODEL, WeakLabel.Source.IMPORTED)
CORPUS_SPLITS = (Item.Split.SEED, Item.Split.POOL, Item.Split.TEST)
VARIANTS = ("robust", "unbiased", "pn")
_LABELS = {
    "harmful": Label.HARMFUL,
    "unharmful": Label.UNHARMFUL,
    "1": Label.HARMFUL,
    "0": Label.UNHARMFUL,
    "true": Label.HARMFUL,
    "false": Label.UNHARMFUL,
}


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
    WeakLabel.objects.filter(item_id__in=labels, source=WeakLabel.Source.IMPORTED, job=None).delete()
    WeakLabel.objects.bulk_create(
        [
            WeakLabel(item_id=pk, source=WeakLabel.Source.IMPORTED, label=lbl, score=sc)
            for pk, (lbl, sc) in labels.items()
        ],
        batch_size=2000,
    )
    return {"imported": len(labels), "unmatched": unmatched, "lines": len(rows)}


# --- LLM judge labels (a background job) ----------------------------------------------


@transaction.atomic
def judge_labels_job_start(
    *, project: Project, user, provider: dict | None = None, limit: int | None = None, method: str = "auto"
) -> BackgroundJob:
    """Queue a job that labels seed/pool/test items with an LLM judge (weak labels, source llm_judge)."""
    if method not in ("auto", "score", "generate"):
        raise FieldError("The judge method must be auto, score or generate.", field="method")
    job = job_create(
        model=BackgroundJob,
        project=project,
        kind=BackgroundJob.Kind.JUDGE,
        created_by=user,
        params={"provider": provider_spec_clean(spec=provider), "limit": limit, "method": method, "batch_size": 64},
        progress={"phase": "queued", "done": 0, "total": 0},
    )
    job_enqueue(job=job)
    return job


@runner
class JudgeLabelsRunner(JobRunner):
    """Labels items with an LLM judge; labels are upserted per item, so a re-run overwrites."""

    name = BackgroundJob.Kind.JUDGE
    task = "annotations.judge_labels_run"
    queue = "augment"
    takeover = True
    resumable = True

    def run(self) -> dict:
        from ssl_engine.llm_judge import llm_label

        job, p = self.job, self.job.params
        self.counts = {"labeled": 0, "unparseable": 0}
        ids = list(
            Item.objects.filter(project=job.project, split__in=CORPUS_SPLITS, excluded=False)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if p.get("limit"):
            ids = ids[: int(p["limit"])]
        self.progress.update(force=True, phase="label", done=0, total=len(ids), **self.counts)
        provider = self.options.get("provider_override") or provider_spec_resolve(spec=p.get("provider"))
        task = "response" if job.project.task == Project.Task.RESPONSE else "prompt"
        bs = progress_chunk(batch_size=int(p.get("batch_size") or 64), total=len(ids))
        for start in range(0, len(ids), bs):
            rows = list(
                Item.objects.filter(pk__in=ids[start : start + bs]).order_by("id").values_list("id", "text", "prompt")
            )
            res = llm_label(
                [r[1] for r in rows],
                provider=provider,
                task=task,
                prompts=[r[2] for r in rows] if task == "response" else None,
                method=p.get("method", "auto"),
            )
            objs = []
            for k, (pk, _t, _p) in enumerate(rows):
                lab = int(res.labels[k])
                if lab < 0:
                    self.counts["unparseable"] += 1
                    continue
                score = float(res.p_harmful[k]) if res.p_harmful is not None else None
                objs.append(
                    WeakLabel(
                        item_id=pk,
                        source=WeakLabel.Source.LLM_JUDGE,
                        label=Label.HARMFUL if lab == 1 else Label.UNHARMFUL,
                        score=score,
                    )
                )
            with transaction.atomic():
                WeakLabel.objects.filter(
                    item_id__in=[r[0] for r in rows], source=WeakLabel.Source.LLM_JUDGE, job=None
                ).delete()
                WeakLabel.objects.bulk_create(objs)
            self.counts["labeled"] += len(objs)
            done = min(start + bs, len(ids))
            self.progress.update(force=done == len(ids), phase="label", done=done, total=len(ids), **self.counts)
        return {
            "result": {**self.counts, "items": len(ids), "method": p.get("method", "auto")},
            "progress": {"phase": "done", "done": len(ids), "total": len(ids)},
        }

    def stopped_fields(self) -> dict:
        return {"result": dict(getattr(self, "counts", {}))}


def judge_labels_job_execute(*, job_id: int, worker: str = "", provider_override: Any = None) -> str:
    """Run an LLM-judge labeling job on this worker (the task's body)."""
    options = {"provider_override": provider_override} if provider_override is not None else {}
    return job_execute(runner_name=JudgeLabelsRunner.name, job_id=job_id, worker=worker, **options)


# --- UU refinement jobs -------------------------------------------------------------------


@transaction.atomic
def uu_refine_start(
    *,
    project: Project,
    user,
    source: str,
    iterations: int = 5,
    variant: str = "robust",
    config: dict | None = None,
    seed: int = 0,
) -> BackgroundJob:
    """Queue a UU refinement job (admins only) on the ``training`` queue after commit."""
    if source not in SOURCES:
        raise FieldError(f"Unknown source {source!r}; choose llm_judge, model or imported.", field="source")
    if variant not in VARIANTS:
        raise FieldError(f"Unknown variant {variant!r}; choose robust, unbiased or pn.", field="variant")
    if not isinstance(iterations, int) or not 1 <= iterations <= 50:
        raise FieldError("Iterations must be between 1 and 50.", field="iterations")
    if source == WeakLabel.Source.MODEL:
        if not ModelVersion.objects.filter(project=project, is_active=True).exists():
            raise FieldError("There is no active model to take noisy labels from.", field="source")
    elif not WeakLabel.objects.filter(item__project=project, source=source, job=None).exists():
        hint = "run an LLM-judge labeling job" if source == WeakLabel.Source.LLM_JUDGE else "import weak labels"
        raise FieldError(f"No {source} weak labels in this project yet; {hint} first.", field="source")
    extra = dict(config or {})
    allowed = {"tol", "lam", "prior", "confidence", "min_gap", "scorer", "fix_prior", "select"}
    if set(extra) - allowed:
        raise FieldError(f"Unknown refinement settings: {', '.join(sorted(set(extra) - allowed))}.", field="config")
    busy = BackgroundJob.objects.filter(
        project=project, kind=BackgroundJob.Kind.REFINE, status__in=BackgroundJob.ACTIVE_STATUSES
    ).first()
    if busy is not None:
        raise Conflict(f"{busy.label} is {busy.status}; one refinement per project runs at a time.")
    job = job_create(
        model=BackgroundJob,
        project=project,
        kind=BackgroundJob.Kind.REFINE,
        created_by=user,
        conflict="Another label refinement of this project is queued or running; one runs at a time.",
        params={"source": source, "iterations": iterations, "variant": variant, "seed": seed, **extra},
        progress={"phase": "queued"},
    )
    job_enqueue(job=job)
    return job


def _noisy_labels(*, project: Project, source: str, rows: list[tuple]) -> dict[int, tuple[int, float | None]]:
    """item id -> (0/1, score) for the chosen source (the model source scores on this worker)."""
    if source != WeakLabel.Source.MODEL:
        return {
            pk: (1 if label == Label.HARMFUL else 0, score)
            for pk, label, score in WeakLabel.objects.filter(
                item__project=project, source=source, job=None
            ).values_list("item_id", "label", "score")
        }
    from annotations.services.engine import scorer_load

    version = ModelVersion.objects.get(project=project, is_active=True)
    scorer = scorer_load(path=version.path)
    scores = scorer.score([r[1] for r in rows], [r[2] or None for r in rows] if project.task == "response" else None)
    return {r[0]: (int(s[0] >= version.threshold), float(s[0])) for r, s in zip(rows, scores, strict=True)}


def _agreement(pred: list[int], truth: list[int]) -> dict[str, float]:
    n = len(truth)
    if not n:
        return {"n": 0}
    tp = sum(1 for p, t in zip(pred, truth, strict=True) if p == 1 and t == 1)
    fp = sum(1 for p, t in zip(pred, truth, strict=True) if p == 1 and t == 0)
    fn = sum(1 for p, t in zip(pred, truth, strict=True) if p == 0 and t == 1)
    correct = sum(1 for p, t in zip(pred, truth, strict=True) if p == t)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": n,
        "accuracy": round(correct / n, 4),
        "f1": round(f1, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
    }


def _theta_json(est) -> dict[str, Any] | None:
    if est is None:
        return None
    return {
        "theta_p": round(est.theta_p, 4),
        "theta_n": round(est.theta_n, 4),
        "interval_p": [round(x, 4) for x in est.interval_p],
        "interval_n": [round(x, 4) for x in est.interval_n],
        "n_p": est.n_p,
        "n_n": est.n_n,
        "size_p": est.size_p,
        "size_n": est.size_n,
        "prior": round(est.prior, 4),
        "separated": bool(est.separated),
        "labels_needed": est.labels_needed,
    }


@runner
class RefinementRunner(JobRunner):
    """Refines a source's noisy labels with robust UU; stores every iteration's labels with the status flip."""

    name = BackgroundJob.Kind.REFINE
    task = "annotations.uu_refine_run"
    queue = "training"

    def run(self) -> dict:
        import numpy as np

        from ssl_engine.uu import UUError, get_refiner

        job, cfg = self.job, dict(self.job.params)
        project = job.project
        self.progress.update(force=True, phase="prepare", done=0, total=0, detail="reading data")
        rows, noisy = self._corpus(project, cfg["source"])
        ids = [r[0] for r in rows]
        start = np.array([noisy[pk][0] for pk in ids], dtype=int)
        human = {
            k: int(r[4] == Label.HARMFUL)
            for k, r in enumerate(rows)
            if r[3] in (Item.Split.SEED, Item.Split.POOL) and r[4]
        }
        held_out = [(k, int(r[4] == Label.HARMFUL)) for k, r in enumerate(rows) if r[3] == Item.Split.TEST and r[4]]
        self.progress.update(force=True, phase="embed", done=0, total=len(rows))
        embedder = self.options.get("embed") or _curation_embedder()
        texts = [f"{r[2]}\n\n{r[1]}" if project.task == Project.Task.RESPONSE and r[2] else r[1] for r in rows]
        emb = np.asarray(embedder(texts))
        self.progress.update(force=True, phase="refine", done=0, total=int(cfg["iterations"]))
        refine_cfg = {k: v for k, v in cfg.items() if k not in ("source", "seed")}
        try:
            result = get_refiner("uu_refine")(emb, start, human, refine_cfg, int(cfg.get("seed") or 0))
        except UUError as exc:
            raise ApplicationError(f"UU refinement cannot run: {exc}") from exc
        iterations = _iterations(result, start, held_out)
        self.weak_rows = [
            WeakLabel(
                item_id=pk,
                source=WeakLabel.Source.REFINED,
                job_id=job.pk,
                iteration=it.iteration,
                label=Label.HARMFUL if lab else Label.UNHARMFUL,
                score=float(sc),
            )
            for it in result.iterations
            for pk, lab, sc in zip(ids, it.labels.tolist(), it.scores.tolist(), strict=True)
        ]
        final = iterations[-1]["test"]
        self.progress.update(force=True, phase="store", done=0, total=len(self.weak_rows))
        summary = {
            **{k: final.get(k) for k in ("f1", "precision", "recall", "accuracy", "n")},
            "source": cfg["source"],
            "variant": result.variant,
            "stopped_reason": result.stopped_reason,
            "converged": result.converged,
            "n_items": len(rows),
            "n_human": len(human),
            "n_held_out": len(held_out),
            "iterations": iterations,
            "snapshot": {
                "source": cfg["source"],
                "item_count": len(rows),
                "human_item_ids": [ids[k] for k in human],
                "held_out_item_ids": [ids[k] for k, _ in held_out],
            },
        }
        n_iter = len(result.iterations)
        return {"result": summary, "progress": {"phase": "done", "done": n_iter, "total": int(cfg["iterations"])}}

    def _corpus(self, project: Project, source: str) -> tuple[list[tuple], dict]:
        rows = list(
            Item.objects.filter(project=project, split__in=CORPUS_SPLITS, excluded=False)
            .order_by("id")
            .values_list("id", "text", "prompt", "split", "human_label")
        )
        noisy = _noisy_labels(project=project, source=source, rows=rows)
        rows = [r for r in rows if r[0] in noisy]
        if not rows:
            raise ApplicationError("No item has a noisy label from this source.")
        return rows, noisy

    def commit(self, job: BackgroundJob) -> None:
        WeakLabel.objects.bulk_create(self.weak_rows, batch_size=5000, ignore_conflicts=True)


def _curation_embedder():
    from annotations.services.augmentation import curation_embedder

    return curation_embedder()


def _iterations(result, start, held_out: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """Per iteration (0 = the noisy start): labels changed, θ̂, agreement with held-out human labels."""
    truth = [t for _, t in held_out]
    rows = [
        {
            "iteration": 0,
            "labels_harmful": int(start.sum()),
            "changed": 0,
            "test": _agreement([int(start[k]) for k, _ in held_out], truth),
            "theta": _theta_json(result.initial_theta),
        }
    ]
    for it in result.iterations:
        rows.append(
            {
                "iteration": it.iteration,
                "labels_harmful": int(it.labels.sum()),
                "changed": it.n_changed,
                "frac_changed": round(it.frac_changed, 4),
                "human_agreement": round(it.human_agreement, 4),
                "test": _agreement([int(it.labels[k]) for k, _ in held_out], truth),
                "theta": _theta_json(it.theta),
            }
        )
    return rows


def uu_refine_execute(*, job_id: int, worker: str = "", embed=None) -> str:
    """Run a queued refinement job on this worker (the task's body); ``embed`` replaces the embedder."""
    options = {"embed": embed} if embed is not None else {}
    return job_execute(runner_name=RefinementRunner.name, job_id=job_id, worker=worker, **options)
