from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.errors import ApplicationError
from annotations.models import Project
from annotations.services.label_exports import PROVENANCES, export_write


class Command(BaseCommand):
    help = (
        "Export a project's labels with provenance: JSONL (--format jsonl) or a Hugging Face "
        "datasets folder as .tar.gz (--format hf)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--out", required=True, help="Output file (.jsonl or .tar.gz).")
        parser.add_argument("--format", choices=["jsonl", "hf"], default="jsonl")
        parser.add_argument(
            "--include",
            default=",".join(PROVENANCES),
            help="Comma-separated provenances to export (human,refined,pseudo).",
        )

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        include = tuple(p.strip() for p in opts["include"].split(",") if p.strip())
        kind = "labels_jsonl" if opts["format"] == "jsonl" else "labels_hf"
        try:
            result = export_write(project=project, kind=kind, include=include, dest=Path(opts["out"]).resolve())
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Exported {sum(_flat(result['counts']))} labels to {result['file']}")


def _flat(counts: dict):
    for v in counts.values():
        if isinstance(v, dict):
            yield from _flat(v)
        else:
            yield v
