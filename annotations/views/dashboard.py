"""Workbench statistics on the project dashboard: reviews, rounds, agreement, activity, next step."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotations.models import Role
from annotations.permissions import project_role_required
from annotations.selectors import projects as selectors
from annotations.selectors.labels import annotator_agreement, label_timeline, review_activity, review_counts
from annotations.selectors.projects import next_step_hint
from annotations.selectors.rounds import rounds_for
from annotations.views.common import HtmxHttpRequest


@require_GET
@project_role_required(Role.ANNOTATOR)
def dashboard_stats(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The dashboard with its statistics (full page), or the statistics section alone for htmx."""
    project = request.project
    counts = selectors.project_counts(project=project)
    reviews = review_counts(project=project)
    stats = {
        "reviews": reviews,
        "rounds": rounds_for(project=project, limit=5),
        "agreement": annotator_agreement(project=project),
        "activity": review_activity(project=project),
        "timeline": label_timeline(project=project),
        "hint": next_step_hint(project=project, counts=counts, variants_pending=reviews["variants_pending"]),
    }
    context = {"project": project, "counts": counts, "stats": stats}
    if request.htmx:
        return render(request, "annotations/project_dashboard.html#workbench-stats", context)
    context["members"] = selectors.project_members(project=project)
    return render(request, "annotations/project_dashboard.html", context)
