"""Training rounds: start, cancel, run on a worker, store results, activate model versions.

Lifecycle: ``training_round_start`` (web or API) creates a queued row and enqueues
``annotations.training_round_run`` after commit; the worker claims the row with one
conditional UPDATE (queued -> running), feeds plain data to ``ssl_engine`` and stores
the result.

Visibility rule: a round's ``Prediction`` rows, its ``ModelVersion`` and its metrics are
written in the same transaction that flips it to ``succeeded``. A round that fails, is
cancelled or is lost therefore never has any prediction rows. Readers still go through
``annotations.queries.rounds.predictions_visible`` (which also filters on
status=succeeded) so that rule holds even for rows written some other way.

The web process never imports torch: ``ssl_engine.engine`` is imported only inside
``training_round_execute``, which runs on the worker.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotations.errors import ApplicationError, PermissionDenied
from annotations.models import (
    Annotation,
    AugmentedVariant,
    Item,
    ModelVersion,
    Project,
    Role,
    TrainingRound,
)
from annotations.permissions import has_role
from annotations.services.augmentation import variants_record_view_losses
from annotations.services.scoring import predictions_store

logger = logging.getLogger(__name__)

LABEL_NAMES = ("unharmful", "harmful")  # index = engine label id (1 = harmful)
_FIELD_RE = re.compile(r"field '([^']+)'")


class RoundLost(Exception):
    """The round is no longer ``running`` (swept as stale or cancelled while queued)."""


# --- web-side services -------------------------------------------------------


def _require_admin(*, user, project: Project, action: str) -> None:
    if user is None or not has_role(user, project, Role.ADMIN):
        raise PermissionDenied(f"Only project admins can {action}.")


def round_config_validate(*, algorithm: str, config: dict[str, Any] | None) -> dict[str, Any]:
    """The full, normalised engine config for ``algorithm``; ApplicationError names the bad field."""
    from ssl_engine.configs import validate_config  # light module: no torch

    if algorithm not in TrainingRound.Algorithm.values:
        raise ApplicationError(
            f"Unknown algorithm {algorithm!r}; choose one of {', '.join(TrainingRound.Algorithm.values)}.",
            extra={"field": "algorithm"},
        )
    if config is not None and not isinstance(config, dict):
        raise ApplicationError("The config must be a JSON object.", extra={"field": "config"})
    try:
        return validate_config(algorithm, config or {})
    except ValueError as exc:
        match = _FIELD_RE.search(str(exc))
        extra = {"field": "config", "config_field": match.group(1)} if match else {"field": "config"}
        raise ApplicationError(f"Invalid config: {exc}", extra=extra) from exc


def _label_counts(project: Project) -> dict[str, int]:
    trainable = Item.objects.filter(project=project, split__in=[Item.Split.SEED, Item.Split.POOL], excluded=False)
    return trainable.aggregate(**{name: Count("id", filter=Q(human_label=name)) for name in LABEL_NAMES})


def _active_round(project: Project) -> TrainingRound | None:
    return TrainingRound.objects.filter(project=project, status__in=TrainingRound.ACTIVE_STATUSES).first()


def _already_running_error(project: Project) -> ApplicationError:
    active = _active_round(project)
    which = f" (round #{active.pk} is {active.status})" if active else ""
    return ApplicationError(
        f"A training round is already queued or running for this project{which}; "
        "wait for it to finish or cancel it first.",
        extra={"code": "round_active"},
    )


@transaction.atomic
def training_round_start(
    *, project: Project, user, algorithm: str, config: dict[str, Any] | None = None, kind: str = "ssl",
    seed: int = 0,
) -> TrainingRound:
    """Create a queued round (admins only) and enqueue it on the training queue after commit."""
    from annotations.tasks.rounds import training_round_run as training_round_run_task

    _require_admin(user=user, project=project, action="start training rounds")
    if kind != TrainingRound.Kind.SSL:
        raise ApplicationError(f"Round kind {kind!r} is not supported here; only 'ssl' rounds can be started.",
                               extra={"field": "kind"})
    full_config = round_config_validate(algorithm=algorithm, config=config)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise ApplicationError("The seed must be an integer in [0, 2^31).", extra={"field": "seed"})
    if _active_round(project) is not None:
        raise _already_running_error(project)
    counts = _label_counts(project)
    missing = [name for name, n in counts.items() if n == 0]
    if missing:
        raise ApplicationError(
            f"A round needs at least one human label of each class; none yet for: {', '.join(missing)}.",
            extra={"code": "no_labels"},
        )
    try:
        # The partial unique constraint is the real guard: two concurrent starts -> one round.
        with transaction.atomic():
            training_round = TrainingRound.objects.create(
                project=project, kind=kind, algorithm=algorithm, config=full_config, seed=seed, started_by=user,
                progress={"phase": "queued"},
            )
    except IntegrityError as exc:
        raise _already_running_error(project) from exc
    round_id = training_round.pk
    transaction.on_commit(lambda: _enqueue_or_fail(training_round_run_task, round_id))
    return training_round


def _enqueue_or_fail(task, round_id: int) -> None:
    """Send the round to the training queue; with the broker down, fail the round and say so.

    Runs after the commit, so the row exists: left ``queued`` it would never run and would
    block every later start.
    """
    from kombu.exceptions import OperationalError as BrokerError

    try:
        task.delay(round_id)
    except (BrokerError, OSError) as exc:
        error = (f"Could not reach the task queue (Redis) to start round #{round_id}: {exc}. "
                 "The round was not started; try again when the broker is back.")
        TrainingRound.objects.filter(pk=round_id, status=TrainingRound.Status.QUEUED).update(
            status=TrainingRound.Status.FAILED, finished_at=timezone.now(), error=error)
        logger.error("round %s: broker unreachable at enqueue: %s", round_id, exc)
        raise ApplicationError(error, extra={"code": "broker_unavailable", "http_status": 503}) from exc


def training_round_cancel(*, training_round: TrainingRound, user) -> TrainingRound:
    """Cancel a queued round at once, or ask the worker to stop a running one (admins only)."""
    _require_admin(user=user, project=training_round.project, action="cancel training rounds")
    now = timezone.now()
    rows = TrainingRound.objects.filter(pk=training_round.pk)
    if rows.filter(status=TrainingRound.Status.QUEUED).update(
        status=TrainingRound.Status.CANCELLED, cancel_requested=True, finished_at=now,
        progress={"phase": "cancelled"},
    ):
        pass
    elif not rows.filter(status=TrainingRound.Status.RUNNING).update(cancel_requested=True):
        training_round.refresh_from_db()
        raise ApplicationError(f"Round #{training_round.pk} has already {training_round.status}; nothing to cancel.")
    training_round.refresh_from_db()
    return training_round


def _activate(*, model_version: ModelVersion) -> None:
    # Lock the project row so concurrent activations (admin + auto) serialise.
    Project.objects.select_for_update().filter(pk=model_version.project_id).first()
    ModelVersion.objects.filter(project_id=model_version.project_id, is_active=True).exclude(
        pk=model_version.pk
    ).update(is_active=False)
    ModelVersion.objects.filter(pk=model_version.pk).update(is_active=True)
    model_version.is_active = True


@transaction.atomic
def model_version_activate(*, model_version: ModelVersion, user) -> ModelVersion:
    """Make ``model_version`` the project's active model (admins only); the previous one is retired."""
    _require_admin(user=user, project=model_version.project, action="activate model versions")
    if model_version.training_round.status != TrainingRound.Status.SUCCEEDED:
        raise ApplicationError("Only the model of a succeeded round can be activated.")
    _activate(model_version=model_version)
    return model_version


def training_rounds_sweep_stale(*, timeout_seconds: int | None = None) -> int:
    """Mark running rounds whose heartbeat is too old as failed ("worker lost"); returns how many."""
    timeout = int(timeout_seconds if timeout_seconds is not None else settings.UMBRA_ROUND_HEARTBEAT_TIMEOUT)
    now = timezone.now()
    cutoff = now - timedelta(seconds=timeout)
    stale = TrainingRound.objects.filter(status=TrainingRound.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    n = stale.update(
        status=TrainingRound.Status.FAILED, finished_at=now,
        error=f"Worker lost: no heartbeat for more than {timeout} s (the worker died or was killed); "
              "marked failed by the stale-round sweep.",
    )
    if n:
        logger.warning("marked %d stale training round(s) failed", n)
    return n


# --- worker-side -------------------------------------------------------------


class DbProgressCallback:
    """Engine callback: throttled progress + heartbeat writes, and cancellation.

    Writes at most once per ``min_interval`` seconds. Sets ``control.should_stop`` when
    an admin asked to cancel, or when the row is no longer running (swept as stale).
    """

    def __init__(self, round_id: int, *, min_interval: float = 1.0) -> None:
        self.round_id = round_id
        self.min_interval = min_interval
        self._last: float | None = None
        self.cancelled = False
        self.lost = False
        self.writes = 0

    def _write(self, progress: dict[str, Any]) -> None:
        self._last = time.monotonic()
        self.writes += 1
        rows = TrainingRound.objects.filter(pk=self.round_id, status=TrainingRound.Status.RUNNING)
        if not rows.update(progress=progress, heartbeat_at=timezone.now()):
            self.lost = True
            return
        if rows.filter(cancel_requested=True).exists():
            self.cancelled = True

    def beat(self, phase: str, **extra: Any) -> None:
        """Force a progress/heartbeat write for phases the engine does not see (DB reads, storing)."""
        self._write({"phase": phase, **extra})

    def on_step_end(self, state, control) -> None:
        now = time.monotonic()
        if self._last is None or now - self._last >= self.min_interval:
            self._write({
                "phase": state.phase, "step": int(state.step), "total": int(state.total_steps),
                "epoch": int(state.epoch), "loss": round(float(state.loss), 5),
                "mask_ratio": round(float(state.mask_ratio), 4),
            })
        if self.cancelled or self.lost:
            control.should_stop = True


def training_round_claim(*, round_id: int, worker: str = "") -> bool:
    """queued -> running in one conditional UPDATE; False if another delivery got it first."""
    now = timezone.now()
    return bool(
        TrainingRound.objects.filter(pk=round_id, status=TrainingRound.Status.QUEUED, cancel_requested=False).update(
            status=TrainingRound.Status.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200],
            progress={"phase": "prepare", "step": 0, "total": 0},
        )
    )


def training_round_fail(*, round_id: int, error: str) -> bool:
    """running -> failed with the error text; the previous active model is untouched."""
    return bool(
        TrainingRound.objects.filter(pk=round_id, status=TrainingRound.Status.RUNNING).update(
            status=TrainingRound.Status.FAILED, error=error[:10000], finished_at=timezone.now()
        )
    )


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
            usable, item__project=project, item__excluded=False, kind=AugmentedVariant.Kind.AUGMENTATION,
            item__split__in=[Item.Split.POOL, Item.Split.SEED],
        ).order_by("item_id", "variant_index", "id").values_list("id", "item_id", "text")
    ):
        views[item_id].append(text)
        variant_ids.append(vid)

    labeled: list[LabeledText] = []
    labeled_rows: list[list] = []
    for pk, text, prompt, label in (
        items.filter(split__in=[Item.Split.SEED, Item.Split.POOL]).exclude(human_label="")
        .values_list("id", "text", "prompt", "human_label").iterator(chunk_size=5000)
    ):
        labeled.append(LabeledText(example_id=str(pk), text=text, label=label_index[label], prompt=_prompt(prompt),
                                   strong_views=tuple(views.get(pk, ()))))
        labeled_rows.append([pk, label])

    # UU-refined labels of unlabeled pool items, as weighted pseudo-labels (Project.use_refined_labels).
    from annotations.services.refinement import refined_pseudo_labels

    refined_round, refined, refined_weight = refined_pseudo_labels(project=project)
    unlabeled = []
    for pk, text, prompt in (items.filter(split=Item.Split.POOL, human_label="")
                             .values_list("id", "text", "prompt").iterator(chunk_size=5000)):
        if pk in refined:
            labeled.append(LabeledText(example_id=str(pk), text=text, label=label_index[refined[pk]],
                                       prompt=_prompt(prompt), weight=refined_weight,
                                       strong_views=tuple(views.get(pk, ()))))
        else:
            unlabeled.append(UnlabeledText(example_id=str(pk), text=text, prompt=_prompt(prompt),
                                           strong_views=tuple(views.get(pk, ()))))

    eval_sets: dict[str, list[LabeledText]] = defaultdict(list)
    for pk, text, prompt, label, split, bench in (
        items.filter(split__in=[Item.Split.TEST, Item.Split.BENCH]).exclude(human_label="")
        .values_list("id", "text", "prompt", "human_label", "split", "bench_name").iterator(chunk_size=5000)
    ):
        name = "test" if split == Item.Split.TEST else f"bench:{bench}"
        eval_sets[name].append(LabeledText(example_id=str(pk), text=text, label=label_index[label],
                                           prompt=_prompt(prompt)))

    annotation_ids = list(
        Annotation.objects.filter(item_id__in=[row[0] for row in labeled_rows]).order_by("id")
        .values_list("id", flat=True)
    ) if labeled_rows else []
    snapshot = {
        "labels": labeled_rows,  # [item_id, label] per labeled example
        "annotation_ids": annotation_ids,  # the label history those labels derive from
        "variant_ids": variant_ids,
        "unlabeled_count": len(unlabeled),
        "eval_sets": {name: len(rows) for name, rows in sorted(eval_sets.items())},
        "label_counts": {name: sum(1 for r in labeled_rows if r[1] == name) for name in LABEL_NAMES},
        "use_unreviewed_curated_variants": project.use_unreviewed_curated_variants,
        "refined_labels": {"round": refined_round, "count": len(refined), "weight": refined_weight},
    }
    inp = RoundInput(
        labeled=labeled, unlabeled=unlabeled, out_dir=out_dir, algorithm=training_round.algorithm,
        config=dict(training_round.config), eval_sets=dict(eval_sets), label_names=LABEL_NAMES,
        backbone=settings.SSL_ENGINE_BACKBONE or None, device=settings.SSL_ENGINE_DEVICE or None,
        seed=training_round.seed,
    )
    return inp, snapshot


def artifact_dir(round_id: int) -> Path:
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


def training_round_store_result(*, round_id: int, result, callback: DbProgressCallback | None = None) -> str:
    """Store predictions, register the model version, flip to succeeded: one transaction.

    Returns the final status. Raises RoundLost (and writes nothing) if the round is no
    longer running.
    """
    if callback is not None:
        callback.beat("store", step=0, total=len(result.predictions))
    with transaction.atomic():
        training_round = TrainingRound.objects.select_for_update().select_related("project").get(pk=round_id)
        if training_round.status != TrainingRound.Status.RUNNING:
            raise RoundLost(f"round {round_id} is {training_round.status}")
        now = timezone.now()
        if training_round.cancel_requested:
            TrainingRound.objects.filter(pk=round_id).update(
                status=TrainingRound.Status.CANCELLED, finished_at=now, progress={"phase": "cancelled"}
            )
            return TrainingRound.Status.CANCELLED
        n = predictions_store(training_round_id=round_id, predictions=result.predictions, label_names=LABEL_NAMES)
        snapshot = dict(training_round.snapshot or {})
        if snapshot.get("variant_ids"):
            snapshot["variant_loss"] = variants_record_view_losses(
                training_round_id=round_id, variant_ids=snapshot["variant_ids"],
                view_losses=result.view_losses,
            )
        version = ModelVersion.objects.create(
            project=training_round.project, training_round=training_round, path=str(result.model_dir),
            threshold=min(1.0, max(0.0, float(result.threshold))), metrics=result.metrics,
        )
        if not ModelVersion.objects.filter(project=training_round.project, is_active=True).exists():
            _activate(model_version=version)
        TrainingRound.objects.filter(pk=round_id).update(
            status=TrainingRound.Status.SUCCEEDED, finished_at=now, heartbeat_at=now, metrics=result.metrics,
            train_log=list(result.train_log), snapshot=snapshot,
            progress={"phase": "done", "step": n, "total": n, "timings": dict(result.timings)},
        )
    return TrainingRound.Status.SUCCEEDED


def training_round_execute(*, round_id: int, worker: str = "") -> str:
    """Run a queued round on this worker; a second delivery of the same round does nothing.

    Returns the final status, or "skipped" when the round was not claimable.
    """
    if not training_round_claim(round_id=round_id, worker=worker):
        logger.info("round %s not claimable (already claimed, finished or cancelled)", round_id)
        return "skipped"
    out_dir = artifact_dir(round_id)
    callback = DbProgressCallback(round_id)
    status = TrainingRound.Status.FAILED
    try:
        # Everything after the claim is inside the try: a claimed round must end failed, never stay running.
        training_round = TrainingRound.objects.select_related("project").get(pk=round_id)
        _check_writable(out_dir)
        callback.beat("prepare", step=0, total=0, detail="reading data")
        inp, snapshot = round_input_build(training_round=training_round, out_dir=str(out_dir))
        TrainingRound.objects.filter(pk=round_id).update(
            # n_labeled counts human labels only (the learning curve's x axis), not refined pseudo-labels.
            snapshot=snapshot, n_labeled=len(snapshot["labels"]), n_unlabeled=len(inp.unlabeled),
            heartbeat_at=timezone.now(),
        )
        from ssl_engine.engine import run_round  # worker only: imports torch lazily

        result = run_round(inp, callbacks=[callback])
        if callback.lost:
            raise RoundLost(f"round {round_id} stopped running while training")
        if result.stopped_early:
            TrainingRound.objects.filter(pk=round_id, status=TrainingRound.Status.RUNNING).update(
                status=TrainingRound.Status.CANCELLED, finished_at=timezone.now(), progress={"phase": "cancelled"}
            )
            status = TrainingRound.Status.CANCELLED
        else:
            _check_artifacts(result.model_dir)
            status = training_round_store_result(round_id=round_id, result=result, callback=callback)
    except RoundLost as exc:
        logger.warning("%s; result discarded", exc)
        status = "lost"
    except ApplicationError as exc:
        training_round_fail(round_id=round_id, error=exc.message)
    except Exception as exc:  # noqa: BLE001 - any engine/DB error ends the round as failed, with its text
        logger.exception("training round %s failed", round_id)
        training_round_fail(round_id=round_id, error=_error_text(exc))
    if status != TrainingRound.Status.SUCCEEDED:
        shutil.rmtree(out_dir, ignore_errors=True)
    return status


def _error_text(exc: BaseException) -> str:
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        return "The round ran past its time limit and was stopped."
    return f"{type(exc).__name__}: {exc}"
