import json

from django.core.management.base import BaseCommand, CommandError

from annotations.errors import ApplicationError
from annotations.models import Project
from annotations.services.moderation import ModerationInput, model_version_resolve, moderation_create


class Command(BaseCommand):
    help = "Score texts with a project's active model and print the /v1/moderations JSON."

    def add_arguments(self, parser):
        parser.add_argument("texts", nargs="+", help="Texts to judge (the response, for the response task).")
        parser.add_argument("--project", help="Project slug (default: the only project).")
        parser.add_argument("--model", help="A model version name '<slug>-v<id>' (default: the active one).")
        parser.add_argument("--prompt", help="The user prompt, for response-task projects.")

    def handle(self, *args, **opts):
        project = None
        if opts["project"]:
            project = Project.objects.filter(slug=opts["project"]).first()
            if project is None:
                raise CommandError(f"No project with slug {opts['project']!r}.")
        elif not opts["model"]:
            projects = list(Project.objects.all()[:2])
            if len(projects) != 1:
                raise CommandError("Several projects exist: pass --project <slug> or --model <slug>-v<id>.")
            project = projects[0]
        inputs = [ModerationInput(text=t, prompt=opts["prompt"] or None) for t in opts["texts"]]
        try:
            mv = model_version_resolve(project=project, model=opts["model"])
            body = moderation_create(model_version=mv, inputs=inputs)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(body, indent=2))
