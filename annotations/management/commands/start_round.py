"""Start a training round from the shell; ``--wait`` follows it with a text progress bar."""

from __future__ import annotations

import argparse
import json
import time

from django.core.management.base import BaseCommand, CommandError

from annotations.errors import ApplicationError
from annotations.management.commands._augment_common import user_get
from annotations.models import Project, TrainingRound
from annotations.services.rounds import training_round_start

BAR_WIDTH = 30


def _bar(training_round: TrainingRound) -> str:
    p = training_round.progress or {}
    step, total = int(p.get("step") or 0), int(p.get("total") or 0)
    frac = min(1.0, step / total) if total else 0.0
    filled = int(round(frac * BAR_WIDTH))
    detail = f"{p.get('phase', training_round.status)}"
    if total:
        detail += f" {step}/{total}"
    if p.get("phase") == "train":
        detail += f" loss {float(p.get('loss') or 0):.4f} mask {float(p.get('mask_ratio') or 0):.0%}"
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {frac:4.0%} {training_round.status:<9} {detail}"


class Command(BaseCommand):
    help = "Queue a training round for a project (a Celery worker on the 'training' queue runs it)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--algorithm", required=True, choices=TrainingRound.Algorithm.values)
        parser.add_argument("--config", default="{}", help="engine settings as a JSON object, e.g. '{\"epochs\": 3}'")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--user",
            help="who starts it (a project admin or superuser); default: a superuser, else the project's first admin",
        )
        parser.add_argument("--wait", action="store_true", help="follow the round until it ends")
        parser.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)

    def handle(self, *args, project, algorithm, config, seed, user, wait, poll, **options):
        try:
            project_obj = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {project!r}.") from None
        try:
            raw = json.loads(config)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--config is not valid JSON: {exc}") from exc
        starter = user_get(project_obj, user)
        try:
            training_round = training_round_start(
                project=project_obj, user=starter, algorithm=algorithm, config=raw, seed=seed
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{training_round.label} queued ({algorithm}, seed {seed}) for {project_obj.slug}.")
        if not wait:
            return
        final = self._follow(training_round, poll)
        if final.status == TrainingRound.Status.SUCCEEDED:
            summary = ", ".join(f"{name} F1 {m.get('f1', 0):.3f}" for name, m in (final.metrics or {}).items())
            self.stdout.write(self.style.SUCCESS(f"{final.label} succeeded. {summary}".rstrip()))
            return
        reason = f": {final.error}" if final.error else ""
        raise CommandError(f"{final.label} {final.status}{reason}")

    def _follow(self, training_round: TrainingRound, poll: float) -> TrainingRound:
        tty = hasattr(self.stdout, "isatty") and self.stdout.isatty()
        last = ""
        while True:
            training_round.refresh_from_db()
            line = _bar(training_round)
            if tty:
                self.stdout.write("\r" + line.ljust(100), ending="")
                self.stdout.flush()
            elif line != last:
                self.stdout.write(line)
            last = line
            if not training_round.is_active:
                if tty:
                    self.stdout.write("")
                return training_round
            time.sleep(poll)
