"""Typing helpers shared by the HTML views."""

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def polled_fragment(request: HttpRequest, template: str, context: dict, *, active: bool) -> HttpResponse:
    """Render an htmx-polled fragment; once nothing is active, answer 286 so htmx stops polling."""
    response_class = HttpResponse if active else HttpResponseStopPolling
    return response_class(render_to_string(template, context, request=request))
