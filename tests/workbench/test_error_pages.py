"""Styled 403/404/405/500 pages that keep the navigation and say why (issue 14.9), form errors in place (14.8),
durations in one style (14.17)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotations.models import TrainingRound

pytestmark = pytest.mark.django_db


def test_403_shows_the_reason_and_keeps_the_project_menu(client_for, project, users, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client_for("annotator").get(reverse("annotations:review_queue", args=[project.slug]))
    assert response.status_code == 403
    html = response.content.decode()
    assert 'data-status="403"' in html and "This needs the reviewer role in Safety prompts." in html
    nav = html.split('class="project-nav"', 1)[1].split("</nav>", 1)[0]
    assert f'href="/p/{project.slug}/label/"' in nav and f'href="/p/{project.slug}/">Safety prompts' in nav
    assert "Back to Safety prompts" in html and 'href="/"' in html


def test_404_is_styled_and_reveals_no_project_to_outsiders(client_for, project, users):
    response = client_for("outsider").get(reverse("annotations:round_list", args=[project.slug]))
    assert response.status_code == 404
    html = response.content.decode()
    assert 'data-status="404"' in html and "No such project." in html
    assert "Safety prompts" not in html and 'class="project-nav"' not in html
    missing = client_for("annotator").get("/no/such/page/")
    assert missing.status_code == 404 and "There is no page at this address." in missing.content.decode()
    assert "tried" not in missing.content.decode().lower()  # never the URL conf


def test_get_on_a_post_only_url_shows_a_styled_405(client_for, project, users):
    response = client_for("admin").get(reverse("annotations:round_start", args=[project.slug]))
    assert response.status_code == 405 and response["Allow"] == "POST"
    html = response.content.decode()
    assert 'data-status="405"' in html and "only takes POST requests" in html and 'class="topbar"' in html
    api = client_for("admin").get(reverse("annotations-api:training-round-start", args=[project.slug]))
    assert api.status_code == 405 and api["Content-Type"].startswith("application/json")


def test_500_page_is_styled_without_a_request_context():
    from annotations.views.error_pages import server_error

    response = server_error(None)
    assert response.status_code == 500 and b'data-status="500"' in response.content and b'href="/"' in response.content


def test_refused_requests_are_logged_without_a_traceback(client_for, project, users):
    from annotations.logs import ClientErrorsWithoutTraceback

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep()
    handler.addFilter(ClientErrorsWithoutTraceback())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        client_for("annotator").get(reverse("annotations:review_queue", args=[project.slug]))
    finally:
        logger.removeHandler(handler)
    forbidden = [r for r in records if r.status_code == 403]
    assert len(forbidden) == 1 and forbidden[0].exc_info is None
    assert "This needs the reviewer role" in forbidden[0].getMessage()


def test_adversarial_form_errors_sit_under_their_own_field_once(client_for, project, users):
    """Issue 14.8: candidates 0 and limit -3 showed errors under Iterations and Candidates, none under Limit."""
    response = client_for("admin").post(
        reverse("annotations:adversarial_start", args=[project.slug]),
        {"provider_kind": "local", "direction": "evade", "iterations": "1", "per_item": "0", "limit": "-3"},
    )
    assert response.status_code == 422
    html = response.content.decode()
    form = html.split(f'action="/p/{project.slug}/augment/adversarial/"', 1)[1].split("</form>", 1)[0]
    blocks = re.split(r'<div class="field', form)[1:]
    by_name = {re.search(r'name="([a-z_]+)"', b).group(1): b for b in blocks if re.search(r'name="([a-z_]+)"', b)}
    assert "greater than or equal to 1" in by_name["per_item"]
    assert "greater than or equal to 1" in by_name["limit"]
    assert "greater than or equal" not in by_name["iterations"]
    assert form.count("greater than or equal to 1") == 2


def test_durations_read_the_same_while_running_and_when_done(client_for, project, users):
    now = timezone.now()
    TrainingRound.objects.create(
        project=project, algorithm="supervised", status="running", number=2, started_at=now - timedelta(seconds=207)
    )
    TrainingRound.objects.create(
        project=project,
        algorithm="supervised",
        status="succeeded",
        number=1,
        started_at=now - timedelta(seconds=500),
        finished_at=now - timedelta(seconds=293),
    )
    html = client_for("annotator").get(reverse("annotations:round_list", args=[project.slug])).content.decode()
    running = html.split('id="round-', 1)[1].split("</tr>", 1)[0]  # newest first: the running round
    assert re.search(r'<td class="num">3 min (2[7-9]|[3-5]\d) s</td>', running)  # 207 s and a few more
    assert '<td class="num">3 min 27 s</td>' in html  # the finished one, in the same words
    assert "0 minutes" not in html and "207 s" not in html
