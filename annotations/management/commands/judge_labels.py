"""Label items with an LLM judge (weak labels, source llm_judge) as a background job."""

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
from annotations.services.refinement import judge_labels_job_start


class Command(BaseCommand):
    help = "Queue an LLM-judge labeling job over seed/pool/test items (noisy labels for UU refinement)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--limit", type=int)
        parser.add_argument(
            "--method",
            choices=["auto", "score", "generate"],
            default="auto",
            help="score = log-probabilities of the two answers (local models); generate = parse",
        )
        parser.add_argument("--user")
        parser.add_argument("--wait", action="store_true")
        add_provider_arguments(parser)

    def handle(self, *args, **o):
        project = project_get(o["project"])
        try:
            job = judge_labels_job_start(
                project=project,
                user=user_get(project, o["user"]),
                provider=provider_from(o),
                limit=o["limit"],
                method=o["method"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{job.label} (id {job.pk}) queued for {project.slug}.")
        if o["wait"]:
            job = follow(self.stdout, job, final={"succeeded", "failed", "cancelled"})
            if job.status != "succeeded":
                raise CommandError(f"{job.label} {job.status}: {job.error}")
            self.stdout.write(self.style.SUCCESS(f"{job.result['labeled']} items labeled."))
