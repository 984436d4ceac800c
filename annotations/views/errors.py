"""Typed service errors -> HTML responses, in one place (the API's twin is ``api.exceptions``).

A view decorated with ``@service_errors(...)`` lets services raise; the decorator turns

- ``PermissionDenied`` into Django's 403 page and ``NotFound`` into the 404 page;
- any other ``ApplicationError`` into either the view's own form page re-rendered with the
  message (``form_page``), or a page message and a redirect back (``back``); htmx requests
  get the message as a plain-text body with the error's status code instead.

Status codes come from the error classes (``Conflict`` 409, ``Unavailable`` 503, …); a
bad field value (400) re-renders its form with 422. htmx swaps only 2xx and 422
(``base.html``), so form fragments for htmx are answered with 422 whatever the error.

In-card messages (the one other pattern): review and variant cards are posted one at a
time by htmx and swapped in place, so their errors belong inside the card, not on a
status page. Such a view passes ``form_page=in_card(card, back=url)``: htmx gets the card
fragment again with the message (422), a plain POST gets a page message and a redirect.
A view's own bad input goes the same way: it raises ``FieldError`` rather than building
an error response itself. No view catches ``ApplicationError`` or reads ``exc.extra``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from annotations.errors import ApplicationError, NotFound, PermissionDenied

FormPage = Callable[..., HttpResponse]  # (request, *args, error=exc, status=int, **kwargs) -> response
BackUrl = Callable[..., str]  # (request, *args, **kwargs) -> url
CardPage = Callable[..., HttpResponse]  # (request, *args, error=str, status=int, **kwargs) -> card fragment


def html_status(request: HttpRequest, exc: ApplicationError) -> int:
    """The status of a page (or htmx fragment) that shows ``exc`` next to its form."""
    if getattr(request, "htmx", False) or exc.status_code == 400:
        return 422
    return exc.status_code


def form_error(form, exc: ApplicationError) -> None:
    """Put ``exc``'s message under its field when the form has one, else at the top of the form."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def service_errors(*, form_page: FormPage | None = None, back: BackUrl | None = None):
    """View decorator: translate typed service errors into a response (see the module docstring)."""

    def deco(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except PermissionDenied as exc:
                raise DjangoPermissionDenied(exc.message) from exc
            except NotFound as exc:
                raise Http404(exc.message) from exc
            except ApplicationError as exc:
                if form_page is not None:
                    return form_page(request, *args, error=exc, status=html_status(request, exc), **kwargs)
                if getattr(request, "htmx", False):
                    return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain; charset=utf-8")
                messages.error(request, exc.message)
                return redirect(back(request, *args, **kwargs) if back else request.path)

        return wrapper

    return deco


def in_card(card: CardPage, *, back: BackUrl) -> FormPage:
    """``form_page`` for htmx cards: the card fragment with the message, or a page message and a redirect."""

    def page(request, *args, error: ApplicationError, status: int, **kwargs) -> HttpResponse:
        if not getattr(request, "htmx", False):
            messages.error(request, error.message)
            return redirect(back(request, *args, **kwargs))
        return card(request, *args, error=error.message, status=status, **kwargs)

    return page
