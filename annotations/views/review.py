"""Pseudo-label review: the active model's queue, one-key actions, bulk mode, similar items."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from annotations.errors import FieldError
from annotations.forms.review import BulkReviewForm, QueueFilterForm, ReviewActionForm
from annotations.models import Role
from annotations.permissions import project_role_required
from annotations.selectors.predictions import (
    QUEUE_PAGE_SIZE,
    active_review_round,
    prediction_in_project,
    predictions_in_queue,
    review_queue,
    similar_labeled_items,
)
from annotations.services.labels import prediction_review, predictions_review_bulk
from annotations.views.common import HtmxHttpRequest
from annotations.views.errors import in_card, service_errors

SKIPS_KEPT = 200


def _skips_key(project) -> str:
    return f"umbra_review_skips_{project.pk}"


def _back(request: HtmxHttpRequest, slug: str) -> str:
    """The queue URL the user came from (filters kept), never another host."""
    target = request.POST.get("next", "")
    queue_url = reverse("annotations:review_queue", kwargs={"slug": slug})
    if target.startswith(queue_url) and url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        return target
    return queue_url


@require_GET
@project_role_required(Role.REVIEWER)
def review_queue_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The queue page (or its list fragment for htmx filter changes)."""
    project = request.project
    filter_form = QueueFilterForm(request.GET or None)
    filters = filter_form.filters()
    training_round = active_review_round(project=project)
    predictions, size, more = [], 0, False
    if training_round is not None:
        queue = review_queue(training_round=training_round, filters=filters,
                             exclude_ids=request.session.get(_skips_key(project), []))
        # One row past the page says whether more wait; an exact count of a large pool costs
        # more than the page itself (see benchmarks/results/workbench_speed.md).
        predictions = list(queue[: QUEUE_PAGE_SIZE + 1])
        more = len(predictions) > QUEUE_PAGE_SIZE
        predictions = predictions[:QUEUE_PAGE_SIZE]
        size = len(predictions)
    context = {
        "project": project,
        "training_round": training_round,
        "filter_form": filter_form,
        "filtered": not filters.is_empty(),
        "predictions": predictions,
        "queue_size": size,
        "queue_more": more,
        "client_token": uuid.uuid4().hex,
        "here": request.get_full_path(),
        # card URLs are built from one reversed prefix: 60 reverse() calls per page add up
        "review_base": reverse("annotations:review_queue", kwargs={"slug": project.slug}),
    }
    template = "annotations/review.html#review-queue" if request.htmx else "annotations/review.html"
    return render(request, template, context)


def _prediction(request: HtmxHttpRequest, pk: int):
    prediction = prediction_in_project(project=request.project, prediction_id=pk)
    if prediction is None:
        raise Http404("No such prediction in this project.")
    return prediction


def _review_card(request: HtmxHttpRequest, slug: str, pk: int, *, error: str = "", action: str = "",
                 status: int = 200) -> HttpResponse:
    context = {"project": request.project, "prediction": _prediction(request, pk), "action": action, "error": error}
    return render(request, "annotations/review.html#review-done", context, status=status)


def _back_url(request: HtmxHttpRequest, slug: str, *args, **kwargs) -> str:
    return _back(request, slug)


@require_POST
@project_role_required(Role.REVIEWER)
@service_errors(form_page=in_card(_review_card, back=_back_url))
def prediction_review_action(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Approve, correct, reject or skip one pseudo-label (errors come back inside the card)."""
    prediction = _prediction(request, pk)
    form = ReviewActionForm(request.POST)
    if not form.is_valid():
        raise FieldError("Unknown action.", field="action")
    action = form.cleaned_data["action"]
    if action == "skip":
        key = _skips_key(request.project)
        request.session[key] = ([i for i in request.session.get(key, []) if i != pk] + [pk])[-SKIPS_KEPT:]
    else:
        prediction_review(prediction=prediction, user=request.user, role=request.role, action=action,
                          client_token=form.cleaned_data["client_token"])
    if not request.htmx:
        return redirect(_back(request, slug))
    context = {"project": request.project, "prediction": prediction, "action": action, "error": ""}
    return render(request, "annotations/review.html#review-done", context)


@require_POST
@project_role_required(Role.REVIEWER)
@service_errors(back=_back_url)
def prediction_review_bulk(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Approve or correct every pseudo-label shown on the page (after one confirmation)."""
    form = BulkReviewForm(request.POST)
    training_round = active_review_round(project=request.project)
    if not form.is_valid() or training_round is None:
        raise FieldError("Nothing to review in bulk.", field="ids")
    predictions = predictions_in_queue(training_round=training_round, ids=form.cleaned_data["ids"])
    done = predictions_review_bulk(predictions=predictions, user=request.user, role=request.role,
                                   action=form.cleaned_data["action"],
                                   client_token=form.cleaned_data["client_token"])
    verb = "Approved" if form.cleaned_data["action"] == "approve" else "Corrected"
    messages.success(request, f"{verb} {len(done)} pseudo-label(s).")
    return redirect(_back(request, slug))


@require_GET
@project_role_required(Role.REVIEWER)
def prediction_similar(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Already-labeled items that read like this one (page, or fragment inside the card)."""
    prediction = _prediction(request, pk)
    similar, how = similar_labeled_items(item=prediction.item)
    context = {"project": request.project, "prediction": prediction, "similar": similar, "how": how}
    template = "annotations/review_similar.html#similar-items" if request.htmx else "annotations/review_similar.html"
    return render(request, template, context)
