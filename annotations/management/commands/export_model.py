from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotations.errors import ApplicationError
from annotations.models import ModelVersion, Project
from annotations.services.label_exports import export_write


class Command(BaseCommand):
    help = "Export a model version (default: the project's active one) as a .tar.gz of its Hugging Face folder."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True)
        parser.add_argument("--out", required=True, help="Output .tar.gz path.")
        parser.add_argument("--model-version", type=int, help="Model version id (default: the active one).")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"No project with slug {opts['project']!r}.")
        mv = None
        if opts["model_version"]:
            mv = (
                ModelVersion.objects.filter(project=project, pk=opts["model_version"])
                .select_related("training_round")
                .first()
            )
            if mv is None:
                raise CommandError(f"No model version {opts['version']} in {project.slug}.")
        try:
            result = export_write(project=project, kind="model", model_version=mv, dest=Path(opts["out"]).resolve())
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Exported {result['model']} to {result['file']} ({result['bytes']} bytes)")
