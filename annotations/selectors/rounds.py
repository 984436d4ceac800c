"""Training rounds, model versions, the prediction-visibility rule and the learning curve."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import QuerySet

from annotations.models import ModelVersion, Prediction, Project, TrainingRound


def rounds_for(*, project: Project, status: str | None = None, limit: int | None = 50) -> QuerySet[TrainingRound]:
    """The project's rounds (of ``status`` if given), newest first, with who started them and their model.

    The snapshot and the train log stay unread (the detail page reads them through ``round_get``).
    """
    qs = (TrainingRound.objects.filter(project=project)
          .select_related("started_by", "model_version")
          .defer("snapshot", "train_log"))
    if status:
        qs = qs.filter(status=status)
    return qs[:limit] if limit is not None else qs


def round_get(*, project: Project, round_id: int, status: str | None = None) -> TrainingRound | None:
    """One round of ``project`` (of ``status`` if given), or None."""
    qs = TrainingRound.objects.select_related("started_by", "model_version", "project").filter(
        project=project, pk=round_id)
    if status:
        qs = qs.filter(status=status)
    return qs.first()


def model_versions_for(*, project: Project) -> QuerySet[ModelVersion]:
    """The project's model versions with their round (and who started it)."""
    return ModelVersion.objects.filter(project=project).select_related(
        "project", "training_round", "training_round__started_by")


def model_version_get(*, project: Project, version_id: int) -> ModelVersion | None:
    return ModelVersion.objects.select_related("training_round", "project").filter(
        project=project, pk=version_id).first()


def active_model_version(*, project: Project) -> ModelVersion | None:
    return ModelVersion.objects.filter(project=project, is_active=True).select_related("training_round").first()


def pseudo_label_round(*, project: Project) -> TrainingRound | None:
    """The round whose predictions count as the project's current ones (exports): the active
    model's round, else the latest succeeded round."""
    mv = active_model_version(project=project)
    if mv is not None:
        return mv.training_round
    return (TrainingRound.objects.filter(project=project, status=TrainingRound.Status.SUCCEEDED)
            .order_by("-finished_at", "-id").first())


def predictions_visible(*, project: Project | None = None, training_round: TrainingRound | None = None
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


# --- learning curve (inline SVG, laid out here so the template only draws) ---------

@dataclass
class CurveSeries:
    name: str
    index: int
    points: str = ""
    dots: list[dict] = field(default_factory=list)


@dataclass
class LearningCurve:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    series: list[CurveSeries]
    x_ticks: list[dict]
    y_ticks: list[dict]

    @property
    def empty(self) -> bool:
        return not any(s.dots for s in self.series)


def learning_curve(*, project: Project, width: int = 640, height: int = 260) -> LearningCurve:
    """Harmful-class F1 per succeeded round against the number of human labels it used."""
    rounds = list(
        TrainingRound.objects.filter(project=project, status=TrainingRound.Status.SUCCEEDED)
        .order_by("n_labeled", "created_at", "id").only("id", "number", "n_labeled", "metrics", "algorithm")
    )
    left, right, top, bottom = 48, width - 16, 12, height - 36
    names = sorted({name for r in rounds for name in (r.metrics or {})}, key=lambda n: (n != "test", n))
    max_x = max([r.n_labeled for r in rounds] + [1])

    def sx(x: float) -> float:
        return round(left + (right - left) * (x / max_x), 1)

    def sy(y: float) -> float:
        return round(bottom - (bottom - top) * y, 1)

    series = []
    for i, name in enumerate(names):
        s = CurveSeries(name=name, index=i % 6)
        coords = []
        for r in rounds:
            f1 = (r.metrics or {}).get(name, {}).get("f1")
            if f1 is None:
                continue
            x, y = sx(r.n_labeled), sy(float(f1))
            coords.append(f"{x},{y}")
            s.dots.append({"x": x, "y": y, "round": r.number or r.pk, "n": r.n_labeled, "f1": float(f1),
                           "algorithm": r.algorithm})
        s.points = " ".join(coords)
        series.append(s)
    x_ticks = [{"x": sx(max_x * k / 4), "label": round(max_x * k / 4)} for k in range(5)]
    y_ticks = [{"y": sy(k / 4), "label": f"{k / 4:.2f}"} for k in range(5)]
    return LearningCurve(width, height, left, right, top, bottom, series, x_ticks, y_ticks)
