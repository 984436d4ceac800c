"""Pseudo-label review: one active card, one-key actions and undo, bulk mode on filtered pages, similar items.

Every htmx action answers with the whole review stage (the next active card, the queue
count, the "just reviewed" strip), so what the keys act on is always the one card on screen.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from django.contrib import messages
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from annotations.errors import FieldError
from annotations.forms.review import BulkReviewForm, QueueFilterForm, ReviewActionForm, UndoForm
from annotations.models import Prediction, Role
from annotations.permissions import project_role_required
from annotations.selectors.explorer import similar_labeled_items
from annotations.selectors.predictions import (
    QUEUE_PAGE_SIZE,
    QueueFilters,
    active_review_round,
    prediction_for_item,
    prediction_in_project,
    predictions_in_queue,
    recent_decisions,
    review_queue,
)
from annotations.services.labels import annotation_withdraw, prediction_review, predictions_review_bulk
from annotations.views.common import HtmxHttpRequest
from annotations.views.errors import service_errors

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


def _queue_filters(request: HtmxHttpRequest, back: str) -> tuple[QueueFilterForm, QueueFilters]:
    """The queue's filters: from the query string (GET) or from the ``next`` URL an action came from."""
    data = request.GET if request.method == "GET" else QueryDict(urlsplit(back).query)
    form = QueueFilterForm(data or None)
    return form, form.filters()


def _stage(
    request: HtmxHttpRequest,
    *,
    here: str,
    filters: QueueFilters,
    front: Prediction | None = None,
    error: str = "",
    notice: str = "",
) -> dict:
    """Context of the review stage: the one active card, what waits behind it, the recent decisions.

    ``front`` (an item just brought back by undo) becomes the active card ahead of the queue.
    """
    project = request.project
    training_round = active_review_round(project=project)
    predictions, more = [], False
    if training_round is not None:
        skipped = [i for i in request.session.get(_skips_key(project), []) if front is None or i != front.pk]
        queue = review_queue(training_round=training_round, filters=filters, exclude_ids=skipped)
        if front is not None:
            queue = queue.exclude(pk=front.pk)
        # One row past the page says whether more wait; an exact count of a large pool costs
        # more than the page itself (see benchmarks/results/workbench_speed.md).
        predictions = list(queue[: QUEUE_PAGE_SIZE + 1])
        if front is not None:
            predictions.insert(0, front)
        more = len(predictions) > QUEUE_PAGE_SIZE
        predictions = predictions[:QUEUE_PAGE_SIZE]
    recent = recent_decisions(user=request.user, project=project)
    return {
        "project": project,
        "training_round": training_round,
        "filtered": not filters.is_empty(),
        "active": predictions[0] if predictions else None,
        "predictions": predictions,
        "queue_size": len(predictions),
        "queue_more": more,
        "recent": recent,
        "last_standing": next((d for d in recent if d.standing), None),
        "client_token": uuid.uuid4().hex,
        "here": here,
        "error": error,
        "notice": notice,
        # card URLs are built from one reversed prefix
        "review_base": reverse("annotations:review_queue", kwargs={"slug": project.slug}),
    }


def _render_stage(request: HtmxHttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    return render(request, "annotations/review.html#review-queue", context, status=status)


@require_GET
@project_role_required(Role.REVIEWER)
def review_queue_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The focused review page (or its stage fragment for htmx filter changes)."""
    here = request.get_full_path()
    filter_form, filters = _queue_filters(request, here)
    context = _stage(request, here=here, filters=filters)
    if request.htmx:
        return _render_stage(request, context)
    return render(request, "annotations/review.html", {**context, "filter_form": filter_form})


def _prediction(request: HtmxHttpRequest, pk: int):
    prediction = prediction_in_project(project=request.project, prediction_id=pk)
    if prediction is None:
        raise Http404("No such prediction in this project.")
    return prediction


def _back_url(request: HtmxHttpRequest, slug: str, *args, **kwargs) -> str:
    return _back(request, slug)


def _stage_refused(request: HtmxHttpRequest, slug: str, *args, error, status: int, **kwargs) -> HttpResponse:
    """A refused review action or undo: the stage again with the message over the active card (htmx),
    else a page message and the queue (the in-card pattern of ``views.errors``, for the one-card stage)."""
    back = _back(request, slug)
    if not request.htmx:
        messages.error(request, error.message)
        return redirect(back)
    _, filters = _queue_filters(request, back)
    context = _stage(request, here=back, filters=filters, error=error.message)
    return _render_stage(request, context, status=422)


@require_POST
@project_role_required(Role.REVIEWER)
@service_errors(form_page=_stage_refused)
def prediction_review_action(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Approve, correct, reject or skip one pseudo-label; htmx gets the stage with the next card."""
    prediction = _prediction(request, pk)
    form = ReviewActionForm(request.POST)
    if not form.is_valid():
        raise FieldError("Unknown action.", field="action")
    notice = ""
    action = form.cleaned_data["action"]
    if action == "skip":
        key = _skips_key(request.project)
        request.session[key] = ([i for i in request.session.get(key, []) if i != pk] + [pk])[-SKIPS_KEPT:]
        notice = f"Skipped item {prediction.item_id}; it comes back after the rest of the queue."
    else:
        prediction_review(
            prediction=prediction,
            user=request.user,
            role=request.role,
            action=action,
            client_token=form.cleaned_data["client_token"],
        )
    back = _back(request, slug)
    if not request.htmx:
        return redirect(back)
    _, filters = _queue_filters(request, back)
    return _render_stage(request, _stage(request, here=back, filters=filters, notice=notice))


@require_POST
@project_role_required(Role.REVIEWER)
@service_errors(form_page=_stage_refused)
def prediction_review_undo(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Undo one of the reviewer's recent decisions (an undo row); its item becomes the active card again."""
    form = UndoForm(request.POST)
    if not form.is_valid():
        raise FieldError("Which decision to undo?", field="annotation")
    undo = annotation_withdraw(
        user=request.user, project=request.project, annotation_id=form.cleaned_data["annotation"]
    )
    notice = f"Undid your decision on item {undo.item_id}; decide it again."
    training_round = active_review_round(project=request.project)
    front = (
        prediction_for_item(training_round=training_round, item_id=undo.item_id) if training_round is not None else None
    )
    back = _back(request, slug)
    if not request.htmx:
        messages.info(request, notice)
        return redirect(back)
    _, filters = _queue_filters(request, back)
    return _render_stage(request, _stage(request, here=back, filters=filters, front=front, notice=notice))


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
    done = predictions_review_bulk(
        predictions=predictions,
        user=request.user,
        role=request.role,
        action=form.cleaned_data["action"],
        client_token=form.cleaned_data["client_token"],
    )
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
