"""Suggest the pool items to label first: ``suggest_seeds --project SLUG --n 200 [--wait]``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotations.errors import ApplicationError
from annotations.management.commands._augment_common import follow, project_get, user_get
from annotations.services.seeds import seed_suggestion_start


class Command(BaseCommand):
    help = (
        "Queue a seed-suggestion job: N pool items chosen without labels (typical, diverse, suspect ones "
        "over-sampled) move to the seed set for annotators. A worker on the 'augment' queue runs it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--n", type=int, default=200)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--user")
        parser.add_argument("--wait", action="store_true")

    def handle(self, *args, **o):
        project = project_get(o["project"])
        try:
            job = seed_suggestion_start(project=project, user=user_get(project, o["user"]), n=o["n"], seed=o["seed"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{job.label} queued ({o['n']} seed items).")
        if o["wait"]:
            job = follow(self.stdout, job, final={"succeeded", "failed", "cancelled"})
            if job.status != "succeeded":
                raise CommandError(f"{job.label} {job.status}: {job.error}")
            r = job.result
            self.stdout.write(
                f"{r['suggested']} pool items moved to the seed set "
                f"({r['strata'].get('suspect', 0)} from the suspect stratum)."
            )
