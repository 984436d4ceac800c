"""Import weak labels from JSONL: one {"id"|"external_id"|"text", "label", "score"?} per line."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotations.errors import ApplicationError
from annotations.management.commands._augment_common import project_get
from annotations.services.refinement import weak_labels_import


class Command(BaseCommand):
    help = "Import noisy weak labels (source 'imported') for UU refinement; all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--file", required=True, help="JSONL file")

    def handle(self, *args, project, file, **o):
        try:
            with open(file, "rb") as fh:
                report = weak_labels_import(project=project_get(project), lines=fh)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"{report['imported']} weak labels imported, {report['unmatched']} lines matched no item.")
