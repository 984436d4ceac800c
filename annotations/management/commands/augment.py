"""Start an augmentation job: ``manage.py augment --project SLUG --method llm_rewrite --per-item 2``."""

from __future__ import annotations

import json

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
from annotations.services.augmentation import ITEM_SCOPES, METHODS, augmentation_job_start
from annotations.services.jobs import job_resume


class Command(BaseCommand):
    help = "Queue an augmentation job (a Celery worker on the 'augment' queue runs it)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--method", choices=METHODS, default="llm_rewrite")
        parser.add_argument("--per-item", type=int, default=2, help="variants per item")
        parser.add_argument("--items", choices=list(ITEM_SCOPES), default="seed")
        parser.add_argument("--limit", type=int, help="at most this many items")
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument(
            "--config",
            default="{}",
            help="generator settings as JSON (e.g. backtranslation "
            '{"pivots": ["de"], "models": {"de": [EN_DE, DE_EN]}})',
        )
        parser.add_argument(
            "--curation", default="{}", help='curation thresholds as JSON, e.g. {"similarity_low": 0.6}'
        )
        parser.add_argument("--judge", action="store_true", help="LLM-judge vote per variant (same provider)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--resume", type=int, metavar="JOB_ID", help="re-queue a failed/stale job instead")
        parser.add_argument("--user")
        parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
        add_provider_arguments(parser)

    def handle(self, *args, **o):
        project = project_get(o["project"])
        user = user_get(project, o["user"])
        try:
            if o["resume"]:
                job = job_resume(job=BackgroundJob.objects.get(pk=o["resume"], project=project), user=user)
            else:
                provider = provider_from(o)
                job = augmentation_job_start(
                    project=project,
                    user=user,
                    method=o["method"],
                    per_item=o["per_item"],
                    items=o["items"],
                    limit=o["limit"],
                    provider=provider,
                    config=json.loads(o["config"]),
                    curation=json.loads(o["curation"]),
                    judge={"judges": [provider]} if o["judge"] else None,
                    batch_size=o["batch_size"],
                    seed=o["seed"],
                )
        except (ApplicationError, BackgroundJob.DoesNotExist, json.JSONDecodeError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        self.stdout.write(
            f"{job.label} (id {job.pk}) queued ({job.params['method']} x {job.params['per_item']}, "
            f"{job.params['items']} items) for {project.slug}."
        )
        if o["wait"]:
            job = follow(self.stdout, job, final={"succeeded", "failed", "cancelled"})
            if job.status != "succeeded":
                raise CommandError(f"{job.label} {job.status}: {job.error}")
            r = job.result
            self.stdout.write(
                self.style.SUCCESS(
                    f"{job.label} succeeded: {r.get('created')} new variants, {r.get('kept')} kept, "
                    f"{r.get('dropped')} dropped, {r.get('items_skipped')} items already done."
                )
            )
