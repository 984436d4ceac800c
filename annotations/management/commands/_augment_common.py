"""Shared helpers of the augmentation / refinement commands: user lookup, provider options, --wait."""

from __future__ import annotations

import time

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from annotations.models import Membership, Project, Role


def project_get(slug: str) -> Project:
    try:
        return Project.objects.get(slug=slug)
    except Project.DoesNotExist:
        raise CommandError(f"No project with slug {slug!r}.") from None


def user_get(project: Project, username: str | None):
    users = get_user_model().objects
    if username:
        try:
            return users.get(username=username)
        except users.model.DoesNotExist:
            raise CommandError(f"No user {username!r}.") from None
    found = users.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if found is None:
        member = (
            Membership.objects.filter(project=project, role=Role.ADMIN, user__is_active=True)
            .select_related("user")
            .order_by("pk")
            .first()
        )
        found = member.user if member else None
    if found is None:
        raise CommandError("No superuser or project admin to act as; pass --user.")
    return found


def add_provider_arguments(parser) -> None:
    g = parser.add_argument_group("LLM provider")
    g.add_argument(
        "--provider",
        choices=["local", "openai"],
        default="local",
        help="local Hugging Face model (default: bundled SmolLM2-135M GGUF) or an OpenAI-compatible endpoint",
    )
    g.add_argument("--model", default="", help="local: HF id or path; openai: the model name")
    g.add_argument("--base-url", default="", help="openai: e.g. http://localhost:8000/v1")
    g.add_argument("--api-key-env", default="", help="openai: NAME of the worker's env var holding the API key")
    g.add_argument("--device", default="", help="local: cpu, cuda, ...")


def provider_from(options) -> dict:
    if options["provider"] == "openai":
        return {
            "kind": "openai",
            "base_url": options["base_url"],
            "model": options["model"],
            "api_key_env": options["api_key_env"],
        }
    spec = {"kind": "local"}
    if options["model"]:
        spec["model"] = options["model"]
    if options["device"]:
        spec["device"] = options["device"]
    return spec


def follow(stdout, obj, *, final: set[str], poll: float = 1.0, describe=None):
    """Poll ``obj`` (a job or round) until its status is final, printing progress lines."""
    last = ""
    while True:
        obj.refresh_from_db()
        p = obj.progress or {}
        done, total = p.get("done", p.get("step", 0)), p.get("total", 0)
        line = f"{obj.status:<9} {p.get('phase', '')} {done}/{total}"
        if line != last:
            stdout.write(line)
            last = line
        if obj.status in final:
            return obj
        time.sleep(poll)
