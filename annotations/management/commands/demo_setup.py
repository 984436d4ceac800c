"""Create the demo accounts and projects and import the shipped synthetic demo data (idempotent)."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotations.models import Item, Project, Role
from annotations.services.imports import items_import
from annotations.services.projects import membership_set

DEMO_DIR = Path(settings.BASE_DIR) / "demo_data"
ACCOUNTS = [("annotator", Role.ANNOTATOR), ("reviewer", Role.REVIEWER), ("admin", Role.ADMIN)]
CATEGORIES = ["violence", "weapons", "cybercrime", "fraud", "theft", "harassment", "hate", "privacy", "drugs"]
GUIDELINES = """\
# Is this request harmful?

Label **harmful** when fulfilling the request would meaningfully help someone hurt people, break
the law, violate privacy or harass others — judge the *intent*, not scary words.
Label **unharmful** for everyday, educational or safety-seeking requests, even when they mention
sensitive topics ("how do I report a phishing email").

Keys: `h` harmful · `u` unharmful · `s` skip · `z` undo · `1`–`9` harm category.
"""


class Command(BaseCommand):
    help = "Set up the demo: accounts (annotator, reviewer, admin), two projects, synthetic demo data."

    def handle(self, *args, **opts):
        User = get_user_model()
        created_passwords = {}
        with transaction.atomic():
            prompts, _ = Project.objects.get_or_create(
                slug="demo-prompts",
                defaults={
                    "name": "Demo: prompt harmfulness",
                    "task": Project.Task.PROMPT,
                    "categories": CATEGORIES,
                    "guidelines": GUIDELINES,
                },
            )
            responses, _ = Project.objects.get_or_create(
                slug="demo-responses",
                defaults={
                    "name": "Demo: response harmfulness",
                    "task": Project.Task.RESPONSE,
                    "categories": CATEGORIES,
                    "guidelines": GUIDELINES.replace("request", "response"),
                },
            )
            for username, role in ACCOUNTS:
                user = User.objects.filter(username=username).first()
                if user is None:
                    password = os.environ.get(f"UMBRA_DEMO_{username.upper()}_PASSWORD") or secrets.token_urlsafe(9)
                    user = User.objects.create_user(
                        username=username,
                        password=password,
                        is_staff=(role == Role.ADMIN),
                        is_superuser=(role == Role.ADMIN),
                    )
                    created_passwords[username] = password
                for project in (prompts, responses):
                    membership_set(project=project, user=user, role=role)
        imports = [
            (prompts, "prompts_seed.jsonl", Item.Split.SEED),
            (prompts, "prompts_to_label.jsonl", Item.Split.SEED),
            (prompts, "prompts_test.jsonl", Item.Split.TEST),
            (prompts, "prompts_pool.jsonl", Item.Split.POOL),
            (responses, "responses.jsonl", Item.Split.SEED),
        ]
        for project, name, split in imports:
            with (DEMO_DIR / name).open("rb") as fh:
                report = items_import(project=project, stream=fh, fmt="jsonl", split=split)
            self.stdout.write(f"{project.slug} ← {name}: {report.summary()}")
        if created_passwords:
            path = write_passwords(created_passwords)
            self.stdout.write(self.style.WARNING("Demo accounts created (passwords are shown only this once):"))
            for username, password in created_passwords.items():
                self.stdout.write(f"  {username:10s} {password}")
            self.stdout.write(f"Passwords written to {path} (readable only by you).")
        else:
            self.stdout.write("Demo accounts already exist (annotator, reviewer, admin); passwords unchanged.")


def passwords_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-passwords.txt"


def write_passwords(passwords: dict[str, str]) -> Path:
    """Write the demo passwords to ``var/demo-passwords.txt`` with mode 0600 (created so, never world-readable)."""
    path = passwords_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("# Umbra demo accounts (created by manage.py demo_setup); log in at /accounts/login/\n")
        for username, password in passwords.items():
            fh.write(f"{username} {password}\n")
    return path
