"""Training rounds: start, cancel, run on a worker, store results, activate model versions.

Lifecycle (the one job system, ``annotations.services.jobs``): ``training_round_start``
(web, API or ``manage.py start_round``) creates a queued, numbered row and enqueues
``annotations.training_round_run`` after commit; the worker claims it, and
``TrainingRoundRunner`` feeds plain data to ``ssl_engine`` and stores the result.

Visibility rule: a round's ``Prediction`` rows, its ``ModelVersion`` and its metrics are
written in the same transaction that flips it to ``succeeded`` (``TrainingRoundRunner.commit``).
A round that fails, is cancelled or is lost therefore never has any prediction rows.
Readers still go through ``annotations.selectors.rounds.predictions_visible`` (which also
filters on status=succeeded) so that rule holds even for rows written some other way.

The web process never imports torch: ``ssl_engine.engine`` is imported only inside
``TrainingRoundRunner.run``, which runs on the worker.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q

from annotations.errors import ApplicationError, Conflict, FieldError
from annotations.models import (
    Annotation,
    AugmentedVariant,
    Item,
    JobStatus,
    ModelVersion,
    Project,
    TrainingRound,
)
from annotations.services.augmentation import variants_record_view_losses
from annotations.services.jobs import (
    JobCancelled,
    JobLost,
    JobProgress,
    JobRunner,
    job_cancel,
    job_create,
    job_enqueue,
    job_execute,
    runner,
)
from annotations.services.scoring import predictions_store
from ssl_engine import LABEL_NAMES

logger = logging.getLogger(__name__)

_FIELD_RE = re.compile(r"field '([^']+)'")


# --- web-side services -------------------------------------------------------


def round_config_validate(*, algorithm: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """The full, normalised engine config for ``algorithm``; FieldError names the bad field."""
    from ssl_engine.configs import validate_config  # light module: no torch

    if algorithm not in TrainingRound.Algorithm.values:
        raise FieldError(
            f"Unknown algorithm {algorithm!r}; choose one of {', '.join(TrainingRound.Algorithm.values)}.",
            field="algorithm",
        )
    if config is not None and not isinstance(config, dict):
        raise FieldError("The config must be a JSON object.", field="config")
    try:
        return validate_config(algorithm, config or {})
    except ValueError as exc:
        match = _FIELD_RE.search(str(exc))
        extra = {"config_field": match.group(1)} if match else {}
        raise FieldError(f"Invalid config: {exc}", field="config", extra=extra) from exc


def _label_counts(project: Project) -> dict[str, int]:
    trainable = Item.objects.filter(project=project, split__in=[Item.Split.SEED, Item.Split.POOL], excluded=False)
    return trainable.aggregate(**{name: Count("id", filter=Q(human_label=name)) for name in LABEL_NAMES})


def _active_round(project: Project) -> TrainingRound | None:
    return TrainingRound.objects.filter(project=project, status__in=TrainingRound.ACTIVE_STATUSES).first()


def _busy_message(active: TrainingRound | None) -> str:
    if active is None:
        return "Another training round of this project was started at the same moment; only one round runs at a time."
    state = (
        "queued, waiting for a worker"
        if active.status == JobStatus.QUEUED
        else "running"
        if not active.cancel_requested
        else "stopping after a cancel"
    )
    return (
        f"{active.label} is {state}; only one round per project runs at a time. "
        f"Wait for it to finish or cancel it before starting another."
    )


@transaction.atomic
def training_round_start(
    *,
    project: Project,
    user,
    algorithm: str,
    config: dict[str, Any] | None = None,
    seed: int = 0,
) -> TrainingRound:
    """Create a queued round (admins only) and enqueue it on the training queue after commit."""
    full_config = round_config_validate(algorithm=algorithm, config=config)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise FieldError("The seed must be an integer in [0, 2^31).", field="seed")
    counts = _label_counts(project)
    missing = [name for name, n in counts.items() if n == 0]
    if missing:
        raise ApplicationError(
            f"A round needs at least one human label of each class; none yet for: {', '.join(missing)}.",
            code="no_labels",
        )
    # job_create locks the project row first, so this check sees any start that committed before it;
    # the partial unique constraint stays the real guard (its Conflict names no round).
    Project.objects.select_for_update().filter(pk=project.pk).first()
    active = _active_round(project)
    if active is not None:
        raise Conflict(_busy_message(active), code="round_active")
    training_round = job_create(
        model=TrainingRound,
        project=project,
        conflict=_busy_message(None),
        algorithm=algorithm,
        config=full_config,
        seed=seed,
        started_by=user,
        progress={"phase": "queued"},
    )
    job_enqueue(job=training_round)
    return training_round


def training_round_cancel(*, training_round: TrainingRound, user) -> TrainingRound:
    """Cancel a queued round at once, or ask the worker to stop a running one (admins only)."""
    return job_cancel(job=training_round, user=user)


def _activate(*, model_version: ModelVersion) -> None:
    # Lock the project row so concurrent activations (admin + auto) serialise.
    Project.objects.select_for_update().filter(pk=model_version.project_id).first()
    ModelVersion.objects.filter(project_id=model_version.project_id, is_active=True).exclude(
        pk=model_version.pk
    ).update(is_active=False)
    ModelVersion.objects.filter(pk=model_version.pk).update(is_active=True)
    model_version.is_active = True


def activation_warnings(*, project: Project, training_round: TrainingRound, metrics: dict | None) -> list[str]:
    """Why a round's model should not go live unasked (issue 14.11): no evaluation set, or fewer
    human labels of a class than the project's minimum. Empty when it may be activated freely."""
    reasons = []
    if not any(isinstance(m, dict) and m.get("n") for m in (metrics or {}).values()):
        reasons.append("it was not evaluated (no labeled test or benchmark items), so nobody knows how well it works")
    counts = (training_round.snapshot or {}).get("label_counts") or {}
    minimum = project.min_labels_per_class
    short = [f"{counts.get(name, 0)} {name}" for name in reversed(LABEL_NAMES) if counts.get(name, 0) < minimum]
    if short:
        reasons.append(
            f"it was trained on {' and '.join(short)} human labels, under this project's minimum of {minimum} of each"
        )
    return reasons


@transaction.atomic
def model_version_activate(*, model_version: ModelVersion, user, confirm: bool = False) -> ModelVersion:
    """Make ``model_version`` the project's active model; the previous one is retired (the gate checks
    the admin role; ``user`` is the actor).

    A model with ``activation_warnings`` is activated only with ``confirm=True`` (Conflict
    ``needs_confirmation`` otherwise, naming the reasons).
    """
    training_round = model_version.training_round
    if training_round.status != TrainingRound.Status.SUCCEEDED:
        raise Conflict("Only the model of a succeeded round can be activated.")
    reasons = activation_warnings(
        project=model_version.project, training_round=training_round, metrics=model_version.metrics
    )
    if reasons and not confirm:
        raise Conflict(
            f"{model_version.name} was not activated: {'; '.join(reasons)}. Confirm to activate it anyway.",
            code="needs_confirmation",
            extra={"reasons": reasons},
        )
    _activate(model_version=model_version)
    return model_version


def model_version_create(*, training_round: TrainingRound, path: str, threshold: float, metrics: dict) -> ModelVersion:
    """Register a round's model as the project's next version (``<slug>-v<n>``); the first one goes live
    unless it has ``activation_warnings``."""
    project = training_round.project
    Project.objects.select_for_update().filter(pk=project.pk).first()
    number = (ModelVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0) + 1
    version = ModelVersion.objects.create(
        project=project,
        training_round=training_round,
        number=number,
        path=path,
        threshold=min(1.0, max(0.0, float(threshold))),
        metrics=metrics,
    )
    # The first model goes live by itself only when it was evaluated and trained on enough labels.
    if not ModelVersion.objects.filter(project=project, is_active=True).exists() and not activation_warnings(
        project=project, training_round=training_round, metrics=metrics
    ):
        _activate(model_version=version)
    return version


# --- worker-side -------------------------------------------------------------


class DbProgressCallback:
    """Engine callback: throttled progress + heartbeat writes (``JobProgress``), and cooperative stop.

    Sets ``control.should_stop`` when an admin asked to cancel, or when the round lost its
    claim (swept as stale, taken over); ``cancelled`` / ``lost`` say which.
    """

    CURVE_POINTS = 120  # the live loss / mask-ratio chart keeps at most this many steps

    def __init__(self, progress: JobProgress) -> None:
        self.progress = progress
        self.cancelled = False
        self.lost = False
        self.curve: list[dict] = []
        self._stride = 1

    @property
    def writes(self) -> int:
        return self.progress.writes

    def _record(self, state) -> None:
        """Every ``_stride``-th training step into ``curve``; the stride doubles when it is full."""
        if state.phase != "train" or int(state.step) % self._stride:
            return
        self.curve.append(
            {
                "step": int(state.step),
                "loss": round(float(state.loss), 4),
                "supervised_loss": round(float(state.supervised_loss), 4),
                "unsupervised_loss": round(float(state.unsupervised_loss), 4),
                "mask_ratio": round(float(state.mask_ratio), 4),
            }
        )
        if len(self.curve) >= self.CURVE_POINTS:
            self._stride *= 2
            self.curve = [e for e in self.curve if e["step"] % self._stride == 0]

    def on_step_end(self, state, control) -> None:
        self._record(state)
        try:
            self.progress.update(
                phase=state.phase,
                step=int(state.step),
                total=int(state.total_steps),
                epoch=int(state.epoch),
                loss=round(float(state.loss), 5),
                mask_ratio=round(float(state.mask_ratio), 4),
                curve=list(self.curve),
            )
        except JobCancelled:
            self.cancelled = True
        except JobLost:
            self.lost = True
        if self.cancelled or self.lost:
            control.should_stop = True


def _prompt(value: str) -> str | None:
    return value or None


def round_input_build(*, training_round: TrainingRound, out_dir: str):
    """Read the round's data from the DB: (RoundInput, snapshot dict).

    Labeled: seed/pool items with a human label. Unlabeled: pool items without one.
    Evaluation: split ``test`` and each ``bench:NAME`` (never trained on). Excluded items
    are left out everywhere. Strong views: approved augmentation variants (plus pending,
    i.e. curated but unreviewed, ones when the project allows it).
    """
    from ssl_engine.types import LabeledText, RoundInput, UnlabeledText

    project = training_round.project
    label_index = {name: i for i, name in enumerate(LABEL_NAMES)}
    items = Item.objects.filter(project=project, excluded=False).order_by("id")

    usable = Q(status=AugmentedVariant.Status.APPROVED)
    if project.use_unreviewed_curated_variants:
        # curated but unreviewed ones too, unless an earlier round's loss check flagged them
        usable |= Q(status=AugmentedVariant.Status.PENDING) & ~Q(curation__has_key="loss_flag")
    views: dict[int, list[str]] = defaultdict(list)
    variant_ids: list[int] = []
    for vid, item_id, text in (
        AugmentedVariant.objects.filter(
            usable,
            item__project=project,
            item__excluded=False,
            kind=AugmentedVariant.Kind.AUGMENTATION,
            item__split__in=[Item.Split.POOL, Item.Split.SEED],
        )
        .order_by("item_id", "variant_index", "id")
        .values_list("id", "item_id", "text")
    ):
        views[item_id].append(text)
        variant_ids.append(vid)

    # Labels reviewers gave to queue-picked pool items are not a random sample of the pool: they
    # train, but stay out of the harmful-share estimate (prior_weight 0). Seeds count as the
    # pool items they stand for (1, or the cluster size a seed suggestion recorded).
    reviewed = set(
        Annotation.objects.filter(
            item__project=project,
            item__split=Item.Split.POOL,
            kind__in=[Annotation.Kind.APPROVE, Annotation.Kind.CORRECT],
        ).values_list("item_id", flat=True)
    )
    labeled: list[LabeledText] = []
    labeled_rows: list[list] = []
    for pk, text, prompt, label, seed_weight in (
        items.filter(split__in=[Item.Split.SEED, Item.Split.POOL])
        .exclude(human_label="")
        .values_list("id", "text", "prompt", "human_label", "seed_weight")
        .iterator(chunk_size=5000)
    ):
        labeled.append(
            LabeledText(
                example_id=str(pk),
                text=text,
                label=label_index[label],
                prompt=_prompt(prompt),
                strong_views=tuple(views.get(pk, ())),
                prior_weight=0.0 if pk in reviewed else float(seed_weight),
            )
        )
        labeled_rows.append([pk, label])

    # UU-refined labels of unlabeled pool items, as weighted pseudo-labels (Project.use_refined_labels).
    from annotations.selectors.labels import refined_pseudo_labels

    refined_job, refined, refined_weight = refined_pseudo_labels(project=project)
    unlabeled = []
    for pk, text, prompt in (
        items.filter(split=Item.Split.POOL, human_label="")
        .values_list("id", "text", "prompt")
        .iterator(chunk_size=5000)
    ):
        if pk in refined:
            labeled.append(
                LabeledText(
                    example_id=str(pk),
                    text=text,
                    label=label_index[refined[pk]],
                    prompt=_prompt(prompt),
                    weight=refined_weight,
                    strong_views=tuple(views.get(pk, ())),
                )
            )
        else:
            unlabeled.append(
                UnlabeledText(
                    example_id=str(pk), text=text, prompt=_prompt(prompt), strong_views=tuple(views.get(pk, ()))
                )
            )

    eval_sets: dict[str, list[LabeledText]] = defaultdict(list)
    for pk, text, prompt, label, split, bench in (
        items.filter(split__in=[Item.Split.TEST, Item.Split.BENCH])
        .exclude(human_label="")
        .values_list("id", "text", "prompt", "human_label", "split", "bench_name")
        .iterator(chunk_size=5000)
    ):
        name = "test" if split == Item.Split.TEST else f"bench:{bench}"
        eval_sets[name].append(
            LabeledText(example_id=str(pk), text=text, label=label_index[label], prompt=_prompt(prompt))
        )

    annotation_ids = (
        list(
            Annotation.objects.filter(item_id__in=[row[0] for row in labeled_rows])
            .order_by("id")
            .values_list("id", flat=True)
        )
        if labeled_rows
        else []
    )
    snapshot = {
        "labels": labeled_rows,  # [item_id, label] per labeled example
        "annotation_ids": annotation_ids,  # the label history those labels derive from
        "variant_ids": variant_ids,
        "unlabeled_count": len(unlabeled),
        "eval_sets": {name: len(rows) for name, rows in sorted(eval_sets.items())},
        "label_counts": {name: sum(1 for r in labeled_rows if r[1] == name) for name in LABEL_NAMES},
        "use_unreviewed_curated_variants": project.use_unreviewed_curated_variants,
        "refined_labels": {"job": refined_job, "count": len(refined), "weight": refined_weight},
    }
    snapshot["prior_weights"] = {
        "reviewed_queue_labels": sum(1 for x in labeled if x.prior_weight == 0.0),
        "suggested_seed_labels": sum(1 for x in labeled if x.prior_weight not in (0.0, 1.0)),
    }
    inp = RoundInput(
        labeled=labeled,
        unlabeled=unlabeled,
        out_dir=out_dir,
        algorithm=training_round.algorithm,
        config=dict(training_round.config),
        eval_sets=dict(eval_sets),
        label_names=LABEL_NAMES,
        backbone=settings.SSL_ENGINE_BACKBONE or None,
        device=settings.SSL_ENGINE_DEVICE or None,
        seed=training_round.seed,
    )
    return inp, snapshot


def round_artifact_dir(*, round_id: int) -> Path:
    return Path(settings.UMBRA_ARTIFACT_DIR) / f"round-{round_id}"


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ApplicationError(f"Cannot write model artifacts to {folder}: {exc}") from exc


def _check_artifacts(model_dir: str) -> None:
    folder = Path(model_dir)
    needed = ["config.json", "umbra_model.json"]
    missing = [name for name in needed if not (folder / name).is_file()]
    if not model_dir or missing:
        raise ApplicationError(f"The engine did not write a complete model to {folder} (missing: {missing}).")


@runner
class TrainingRoundRunner(JobRunner):
    """Trains one round: read the data, run the engine, and store predictions + model with the status flip."""

    name = "round"
    model = TrainingRound
    task = "annotations.training_round_run"
    queue = "training"

    def run(self) -> dict[str, Any]:
        rnd: TrainingRound = self.job
        out_dir = round_artifact_dir(round_id=rnd.pk)
        _check_writable(out_dir)
        self.progress.update(force=True, phase="prepare", step=0, total=0, detail="reading data")
        inp, snapshot = round_input_build(training_round=rnd, out_dir=str(out_dir))
        TrainingRound.objects.filter(pk=rnd.pk).update(
            # n_labeled counts human labels only (the learning curve's x axis), not refined pseudo-labels.
            snapshot=snapshot,
            n_labeled=len(snapshot["labels"]),
            n_unlabeled=len(inp.unlabeled),
        )
        from annotations.services.engine import engine_settings
        from ssl_engine.engine import run_round  # worker only: imports torch lazily

        callback = DbProgressCallback(self.progress)
        result = run_round(inp, callbacks=[callback], settings=engine_settings())
        if callback.lost:
            raise JobLost(f"{rnd.label} stopped running while training")
        if callback.cancelled or result.stopped_early:
            raise JobCancelled(f"{rnd.label} cancelled")
        _check_artifacts(result.model_dir)
        n = len(result.predictions)
        self.progress.update(force=True, phase="store", step=0, total=n)
        self.result = result
        return {
            "metrics": result.metrics,
            "train_log": list(result.train_log),
            "pseudo_labels": [asdict(s) for s in result.pseudo_labels],
            "threshold_strategy": result.threshold_strategy[:64],
            "threshold_note": result.threshold_note[:300],
            "progress": {"phase": "done", "step": n, "total": n, "timings": dict(result.timings), "mode": result.mode},
        }

    def commit(self, job: TrainingRound) -> None:
        result = self.result
        predictions_store(training_round_id=job.pk, predictions=result.predictions, label_names=LABEL_NAMES)
        snapshot = dict(TrainingRound.objects.filter(pk=job.pk).values_list("snapshot", flat=True).get() or {})
        if snapshot.get("variant_ids"):
            snapshot["variant_loss"] = variants_record_view_losses(
                training_round_id=job.pk,
                variant_ids=snapshot["variant_ids"],
                view_losses=result.view_losses,
                round_number=job.number,
            )
            TrainingRound.objects.filter(pk=job.pk).update(snapshot=snapshot)
        model_version_create(
            training_round=job, path=str(result.model_dir), threshold=result.threshold, metrics=result.metrics
        )

    @classmethod
    def cleanup(cls, job, status: str) -> None:
        shutil.rmtree(round_artifact_dir(round_id=job.pk), ignore_errors=True)


def training_round_execute(*, round_id: int, worker: str = "") -> str:
    """Run a queued round on this worker (the task's body); "skipped" when it was not claimable."""
    return job_execute(runner_name=TrainingRoundRunner.name, job_id=round_id, worker=worker)
