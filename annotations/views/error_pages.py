"""Styled error pages (403, 404, 405, 500) that keep the navigation and say why.

``handler403`` / ``handler404`` (``moderation_app.urls``) show the server's own message, e.g.
"This needs the reviewer role in Safety prompts.", and the project menu when the user is a
member of the project in the URL (a non-member sees none: a project's existence is not revealed).
A 405 (a GET on a POST-only URL) gets the same page from ``ErrorPageMiddleware``. The 500 page
renders without a request context on purpose: it must work when the error was in the context.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from annotations.models import Project
from annotations.permissions import role_in

API_PREFIXES = ("/api/", "/v1/")


def _project_context(request: HttpRequest) -> dict:
    project = getattr(request, "project", None)
    match = getattr(request, "resolver_match", None)
    slug = match.kwargs.get("slug") if match else None
    user = getattr(request, "user", None)
    if project is None and slug and user is not None and user.is_authenticated:
        candidate = Project.objects.filter(slug=slug).first()
        if candidate is not None and role_in(user, candidate) is not None:
            project = candidate
    if project is None:
        return {}
    request.project = project  # for the menu's role context processor
    return {"project": project}


def _message(exception, default: str) -> str:
    text = str(exception or "").strip() if exception is not None else ""
    # Django's own resolver 404 carries a dict (path, tried patterns): never show that.
    return text if text and not text.startswith("{") else default


def error_page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    titles = {403: "Not allowed", 404: "Not found", 405: "Not this way"}
    context = {"status": status, "title": titles.get(status, "Error"), "message": message, **_project_context(request)}
    return HttpResponse(render_to_string("error.html", context, request=request), status=status)


def permission_denied(request: HttpRequest, exception=None) -> HttpResponse:
    return error_page(request, 403, _message(exception, "You do not have the role this page needs."))


def page_not_found(request: HttpRequest, exception=None) -> HttpResponse:
    return error_page(request, 404, _message(exception, "There is no page at this address."))


def server_error(request: HttpRequest) -> HttpResponse:
    return HttpResponse(render_to_string("500.html"), status=500)


class ErrorPageMiddleware:
    """A bare 405 from ``require_POST`` & co. becomes the styled page (API answers stay as they are)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 405 and not response.content and not request.path.startswith(API_PREFIXES):
            allowed = response.get("Allow", "")
            styled = error_page(
                request,
                405,
                f"This address only takes {allowed or 'other'} requests; "
                f"use the page's buttons instead of opening it directly.",
            )
            styled["Allow"] = allowed
            return styled
        return response
