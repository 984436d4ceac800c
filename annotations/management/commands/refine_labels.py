"""Start a robust UU label-refinement round: ``refine_labels --project SLUG --source llm_judge``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotations.errors import ApplicationError
from annotations.management.commands._augment_common import follow, project_get, user_get
from annotations.services.refinement import uu_refine_start


class Command(BaseCommand):
    help = "Queue a UU label-refinement job (a Celery worker on the 'training' queue runs it)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--source", choices=["llm_judge", "model", "imported"], required=True)
        parser.add_argument("--iterations", type=int, default=5)
        parser.add_argument("--variant", choices=["robust", "unbiased", "pn"], default="robust")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--user")
        parser.add_argument("--wait", action="store_true")

    def handle(self, *args, **o):
        project = project_get(o["project"])
        try:
            job = uu_refine_start(
                project=project,
                user=user_get(project, o["user"]),
                source=o["source"],
                iterations=o["iterations"],
                variant=o["variant"],
                seed=o["seed"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{job.label} queued ({o['source']}, {o['iterations']} iterations).")
        if o["wait"]:
            job = follow(self.stdout, job, final={"succeeded", "failed", "cancelled"})
            if job.status != "succeeded":
                raise CommandError(f"{job.label} {job.status}: {job.error}")
            for it in job.result["iterations"]:
                t = it.get("test") or {}
                self.stdout.write(
                    f"iteration {it['iteration']}: changed {it['changed']}, held-out accuracy "
                    f"{t.get('accuracy', '-')}, F1 {t.get('f1', '-')}"
                )
