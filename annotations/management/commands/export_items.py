from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.models import Project
from annotations.services.exports import items_export


class Command(BaseCommand):
    help = "Export a project's items as JSONL with current human label, history count and latest prediction."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--out", required=True, help="Output .jsonl path ('-' for stdout).")

    def handle(self, *args, **opts):
        try:
            project = Project.objects.get(slug=opts["project"])
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {opts['project']!r}.") from None
        if opts["out"] == "-":
            n = items_export(project=project, out=self.stdout._out.buffer)
            return
        out = Path(opts["out"])
        tmp = out.with_name(out.name + ".partial")
        with tmp.open("wb") as fh:
            n = items_export(project=project, out=fh)
        tmp.replace(out)  # never leave a half-written export under the final name
        self.stdout.write(f"Exported {n} items to {out}")
