"""Training rounds, model versions, the prediction-visibility rule and the learning curve."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from annotations import charts
from annotations.models import ModelVersion, Prediction, Project, TrainingRound


def rounds_for(*, project: Project, status: str | None = None, limit: int | None = 50) -> QuerySet[TrainingRound]:
    """The project's rounds (of ``status`` if given), newest first, with who started them and their model.

    The snapshot and the train log stay unread (the detail page reads them through ``round_get``).
    """
    qs = (
        TrainingRound.objects.filter(project=project)
        .select_related("started_by", "model_version")
        .defer("snapshot", "train_log")
    )
    if status:
        qs = qs.filter(status=status)
    return qs[:limit] if limit is not None else qs


def round_get(*, project: Project, round_id: int, status: str | None = None) -> TrainingRound | None:
    """One round of ``project`` (of ``status`` if given), or None."""
    qs = TrainingRound.objects.select_related("started_by", "model_version", "project").filter(
        project=project, pk=round_id
    )
    if status:
        qs = qs.filter(status=status)
    return qs.first()


def model_versions_for(*, project: Project) -> QuerySet[ModelVersion]:
    """The project's model versions with their round (and who started it)."""
    return ModelVersion.objects.filter(project=project).select_related(
        "project", "training_round", "training_round__started_by"
    )


def model_version_get(*, project: Project, version_id: int) -> ModelVersion | None:
    return (
        ModelVersion.objects.select_related("training_round", "project").filter(project=project, pk=version_id).first()
    )


def active_model_version(*, project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, is_active=True).select_related("training_round").first()


def pseudo_label_round(*, project: Project) -> TrainingRound | None:
    """The round whose predictions count as the project's current ones (exports): the active
    model's round, else the latest succeeded round."""
    mv = active_model_version(project=project)
    if mv is not None:
        return mv.training_round
    return (
        TrainingRound.objects.filter(project=project, status=TrainingRound.Status.SUCCEEDED)
        .order_by("-finished_at", "-id")
        .first()
    )


def predictions_visible(
    *, project: Project | None = None, training_round: TrainingRound | None = None
) -> QuerySet[Prediction]:
    """Predictions readers may use: those of succeeded rounds only (see services.rounds).

    The one place that states the rule: the review queue, the API and exports read through it.
    """
    qs = Prediction.objects.filter(training_round__status=TrainingRound.Status.SUCCEEDED)
    if project is not None:
        qs = qs.filter(training_round__project=project)
    if training_round is not None:
        qs = qs.filter(training_round=training_round)
    return qs


# --- charts (server-rendered SVG, annotations.charts) ---------------------------------


def _algorithm_name(code: str) -> str:
    return TrainingRound.Algorithm(code).label if code in TrainingRound.Algorithm.values else code


def learning_curves(*, project: Project) -> list[dict]:
    """Per evaluation set: harmful-class F1 against human labels used, one line per algorithm."""
    rounds = list(
        TrainingRound.objects.filter(project=project, status=TrainingRound.Status.SUCCEEDED)
        .order_by("n_labeled", "created_at", "id")
        .only("id", "number", "n_labeled", "metrics", "algorithm")
    )
    sets = sorted({name for r in rounds for name in (r.metrics or {})}, key=lambda n: (n != "test", n))
    algorithms = [a for a in TrainingRound.Algorithm.values if any(r.algorithm == a for r in rounds)]
    x_max = charts.nice_ticks(0, max([r.n_labeled for r in rounds] + [1]))[-1]  # the axis starts at 0 labels
    out = []
    for name in sets:
        series = []
        for colour, algorithm in enumerate(algorithms):
            runs = [(r, (r.metrics or {}).get(name, {}).get("f1")) for r in rounds if r.algorithm == algorithm]
            runs = [(r, float(f1)) for r, f1 in runs if f1 is not None]
            if runs:
                series.append(
                    charts.Series(
                        _algorithm_name(algorithm),
                        [(r.n_labeled, f1) for r, f1 in runs],
                        colour=colour,
                        tooltips=[
                            f"Round #{r.number or r.pk} ({_algorithm_name(algorithm)}): F1 {f1:.3f} with "
                            f"{r.n_labeled} labels"
                            for r, f1 in runs
                        ],
                    )
                )
        out.append(
            {
                "name": name,
                "svg": charts.line_chart(
                    series,
                    title=f"Harmful-class F1 on {name} against human labels used, per algorithm",
                    x_label="human labels used",
                    y_label=f"F1 on {name}",
                    x_range=(0, x_max),
                    y_range=(0.0, 1.0),
                    kind="learning-curve",
                ),
            }
        )
    return out


LABEL_COLOURS = (3, 2)  # harmful red, unharmful green (chart-s3, chart-s2)


def pseudo_label_mix(rounds: list[TrainingRound]) -> charts.Svg | None:
    """Class mix of the pseudo-labels each round used (its last epoch), oldest round first."""
    rows = []
    for r in reversed(rounds):
        stats = [s for s in (r.pseudo_labels or []) if isinstance(s, dict)]
        if not stats:
            continue
        last = max(int(s.get("epoch", 0)) for s in stats)
        used = {s.get("label"): int(s.get("used", 0)) for s in stats if int(s.get("epoch", 0)) == last}
        rows.append((f"#{r.number or r.pk}", used))
    if not rows:
        return None
    names = ["harmful", "unharmful"]
    return charts.stacked_bars(
        [g for g, _ in rows],
        [(n, [u.get(n, 0) for _, u in rows]) for n in names],
        title="Class mix of the pseudo-labels each round used (last epoch)",
        y_label="share of used pseudo-labels",
        x_label="round",
        normalize=True,
        kind="pseudo-mix",
        colours=LABEL_COLOURS,
    )


def train_charts(*, training_round: TrainingRound) -> dict | None:
    """Loss and mask ratio over steps: the stored log when done, the live curve while running."""
    log = training_round.train_log or (training_round.progress or {}).get("curve") or []
    log = charts.downsample([e for e in log if isinstance(e, dict) and "step" in e])
    if not log:
        return None
    loss = [
        charts.Series(label, [(e["step"], e[key]) for e in log if e.get(key) is not None], dots=False)
        for key, label in (
            ("loss", "total loss"),
            ("supervised_loss", "supervised"),
            ("unsupervised_loss", "unsupervised"),
        )
    ]
    loss = [s for s in loss if s.points]
    mask = [
        charts.Series(
            "mask ratio", [(e["step"], e["mask_ratio"]) for e in log if e.get("mask_ratio") is not None], dots=False
        )
    ]
    return {
        "loss": charts.line_chart(loss, title="Training loss over steps", x_label="step", y_label="loss", kind="loss"),
        "mask": charts.line_chart(
            mask,
            title="Share of unlabeled items whose pseudo-label passed the mask",
            x_label="step",
            y_label="mask ratio",
            y_range=(0.0, 1.0),
            kind="mask",
        )
        if mask[0].points
        else None,
    }


def eval_charts(metrics: dict | None) -> list[dict]:
    """Per evaluation set: its PR curve with the chosen threshold marked, and its confusion matrix."""
    out = []
    for name, m in (metrics or {}).items():
        if not isinstance(m, dict):
            continue
        curve = m.get("pr_curve") or {}
        pr = None
        if curve.get("recall"):
            mark = []
            if m.get("recall") is not None and m.get("precision") is not None:
                mark = [
                    charts.Mark(
                        float(m["recall"]),
                        float(m["precision"]),
                        f"threshold {float(m.get('threshold', 0)):.3f}: P {float(m['precision']):.2f}, "
                        f"R {float(m['recall']):.2f}",
                    )
                ]
            pr = charts.line_chart(
                [charts.Series(name, list(zip(curve["recall"], curve["precision"], strict=False)), dots=False)],
                title=f"Precision against recall on {name}, the chosen threshold marked",
                x_label="recall",
                y_label="precision",
                x_range=(0.0, 1.0),
                y_range=(0.0, 1.0),
                marks=mark,
                kind="pr",
            )
        out.append({"name": name, "metrics": m, "pr": pr, "confusion": m.get("confusion")})
    return out


# --- pseudo-label quality (issue 13) -------------------------------------------------

# Fewer checked pseudo-labels than this give no verdict: a precision over 3 items says nothing.
MIN_CHECKED = 10
# A fall in precision of at least this much from the first to the last checked epoch is flagged.
PRECISION_DROP = 0.10


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass
class PseudoLabelClass:
    """One class's pseudo-labels in a round: how many were used, and how often they were right."""

    label: str
    prior: float | None  # share of this class among the round's human labels
    used: int = 0  # final epoch, passed the mask
    drawn: int = 0  # final epoch, predicted as this class
    share: float | None = None  # of all used pseudo-labels in the final epoch
    checked: int = 0  # all epochs: used pseudo-labels of items with a withheld label
    correct: int = 0
    epochs: list[dict] = field(default_factory=list)  # {"epoch", "used", "checked", "precision"}
    reviewed: int = 0  # used pseudo-labels of items a human has labeled since the round
    reviewed_correct: int = 0
    flags: list[str] = field(default_factory=list)

    @property
    def mask_rate(self) -> float | None:
        return _ratio(self.used, self.drawn)

    @property
    def precision(self) -> float | None:
        return _ratio(self.correct, self.checked)

    @property
    def reviewed_precision(self) -> float | None:
        return _ratio(self.reviewed_correct, self.reviewed)


@dataclass
class PseudoLabelQuality:
    classes: list[PseudoLabelClass]
    epochs: int

    @property
    def flagged(self) -> bool:
        return any(c.flags for c in self.classes)

    @property
    def checked(self) -> int:
        return sum(c.checked + c.reviewed for c in self.classes)


def _flag(c: PseudoLabelClass) -> None:
    """Say when the round learns from its own mistakes (the reason, in words)."""
    name = c.label
    for what, n, precision in (
        ("checked", c.checked, c.precision),
        ("reviewed since", c.reviewed, c.reviewed_precision),
    ):
        if n >= MIN_CHECKED and c.prior is not None and precision is not None and precision <= c.prior:
            c.flags.append(
                f"Used “{name}” pseudo-labels {what} are right {precision:.0%} of the time, no better "
                f"than the {c.prior:.0%} share of {name} among the human labels: the round "
                f"learns from its own mistakes."
            )
    trend = [e for e in c.epochs if e["checked"] >= MIN_CHECKED]
    if len(trend) >= 2 and trend[0]["precision"] - trend[-1]["precision"] >= PRECISION_DROP:
        c.flags.append(
            f"Precision of “{name}” pseudo-labels fell from {trend[0]['precision']:.0%} (epoch "
            f"{trend[0]['epoch']}) to {trend[-1]['precision']:.0%} (epoch {trend[-1]['epoch']}): "
            f"the round reinforces its own mistakes."
        )
    if (
        c.share is not None
        and c.prior is not None
        and c.used >= MIN_CHECKED
        and (c.share >= 2 * c.prior and c.share - c.prior >= 0.15)
    ):
        c.flags.append(
            f"{c.share:.0%} of the used pseudo-labels are “{name}” against {c.prior:.0%} among the "
            f"human labels: the pseudo-labels drift towards one class."
        )


def pseudo_label_quality(*, training_round: TrainingRound, with_reviews: bool = True) -> PseudoLabelQuality | None:
    """Per class: pseudo-labels used (final epoch) and their precision, from the engine's per-epoch
    stats (``TrainingRound.pseudo_labels``: checked against withheld labels) and from labels humans
    gave to those items after the round (``with_reviews``; without it no query is made, for lists).
    None when the round used no pseudo-labels."""
    from django.db.models import Count, F, Q

    stats = [s for s in (training_round.pseudo_labels or []) if isinstance(s, dict) and "label" in s]
    if not stats:
        return None
    last = max(int(s.get("epoch", 0)) for s in stats)
    counts = (training_round.snapshot or {}).get("label_counts") or {}
    total_human = sum(int(v) for v in counts.values())
    names = list(dict.fromkeys(s["label"] for s in stats))
    classes = {n: PseudoLabelClass(label=n, prior=_ratio(int(counts.get(n, 0)), total_human)) for n in names}
    for s in sorted(stats, key=lambda s: int(s.get("epoch", 0))):
        c = classes[s["label"]]
        checked, correct = int(s.get("checked", 0)), int(s.get("correct", 0))
        c.checked += checked
        c.correct += correct
        c.epochs.append(
            {
                "epoch": int(s.get("epoch", 0)),
                "used": int(s.get("used", 0)),
                "checked": checked,
                "precision": _ratio(correct, checked),
            }
        )
        if int(s.get("epoch", 0)) == last:
            c.used, c.drawn = int(s.get("used", 0)), int(s.get("drawn", 0))
    used_total = sum(c.used for c in classes.values())
    for c in classes.values():
        c.share = _ratio(c.used, used_total)
    reviewed = (
        []
        if not with_reviews
        else (
            predictions_visible(training_round=training_round)
            .filter(used=True)
            .exclude(item__human_label="")
            .values("pseudo_label")
            .annotate(n=Count("id"), right=Count("id", filter=Q(item__human_label=F("pseudo_label"))))
        )
    )
    for row in reviewed:
        if row["pseudo_label"] in classes:
            classes[row["pseudo_label"]].reviewed = row["n"]
            classes[row["pseudo_label"]].reviewed_correct = row["right"]
    for c in classes.values():
        _flag(c)
    return PseudoLabelQuality(classes=list(classes.values()), epochs=last)
