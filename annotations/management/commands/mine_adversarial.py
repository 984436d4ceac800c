"""Start an adversarial hard-example mining job against the project's active model."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotations.errors import ApplicationError
from annotations.management.commands._augment_common import (
    add_provider_arguments,
    follow,
    project_get,
    provider_from,
    user_get,
)
from annotations.models import BackgroundJob
from annotations.services.adversarial import adversarial_evaluation_start, adversarial_job_start


class Command(BaseCommand):
    help = "Queue adversarial mining (evade: harmful -> fools the model; alarm: benign -> false-positive probes)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--direction", choices=["evade", "alarm", "both"], default="evade")
        parser.add_argument("--iterations", type=int, default=1)
        parser.add_argument("--per-item", type=int, default=3, help="candidates per source item and iteration")
        parser.add_argument("--limit", type=int, help="at most this many source items")
        parser.add_argument("--judge", action="store_true", help="keep only candidates a judge says keep the label")
        parser.add_argument(
            "--evaluate",
            type=int,
            metavar="JOB_ID",
            help="re-score JOB_ID's confirmed hard examples with the active model instead",
        )
        parser.add_argument("--user")
        parser.add_argument("--wait", action="store_true")
        add_provider_arguments(parser)

    def handle(self, *args, **o):
        project = project_get(o["project"])
        user = user_get(project, o["user"])
        try:
            if o["evaluate"]:
                job = adversarial_evaluation_start(
                    job=BackgroundJob.objects.get(pk=o["evaluate"], project=project), user=user
                )
            else:
                provider = provider_from(o)
                job = adversarial_job_start(
                    project=project,
                    user=user,
                    direction=o["direction"],
                    iterations=o["iterations"],
                    per_item=o["per_item"],
                    provider=provider,
                    judge={"judges": [provider]} if o["judge"] else None,
                    limit=o["limit"],
                )
        except (ApplicationError, BackgroundJob.DoesNotExist) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        self.stdout.write(f"{job.label} (id {job.pk}) queued for {project.slug}.")
        if o["wait"]:
            job = follow(self.stdout, job, final={"succeeded", "failed", "cancelled"})
            if job.status != "succeeded":
                raise CommandError(f"{job.label} {job.status}: {job.error}")
            for direction, d in (job.result.get("directions") or {}).items():
                for it in d["iterations"]:
                    self.stdout.write(
                        f"{direction} iteration {it['iteration']}: {it['candidates']} candidates, "
                        f"{it['fooled']} fooled the model"
                    )
                self.stdout.write(f"{direction}: {d['stored']} stored for review")
