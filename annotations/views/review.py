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

from annotations.errors import ApplicationError, NotFound
from annotations.forms.review import BulkReviewForm, QueueFilterForm, ReviewActionForm, UndoForm
from annotations.models import Prediction, Role
from annotations.permissions import project_role_required
from annotations.queries.items import similar_labeled_items
from annotations.queries.review import (
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


def _stage(request: HtmxHttpRequest, *, here: str, filters: QueueFilters, front: Prediction | None = None,
           error: str = "", notice: str = "") -> dict:
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


@require_POST
@project_role_required(Role.REVIEWER)
def prediction_review_action(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Approve, correct, reject or skip one pseudo-label; htmx gets the stage with the next card."""
    prediction = prediction_in_project(project=request.project, prediction_id=pk)
    if prediction is None:
        raise Http404("No such prediction in this project.")
    form = ReviewActionForm(request.POST)
    error, notice = "", ""
    if not form.is_valid():
        error = "Unknown action."
    else:
        action = form.cleaned_data["action"]
        if action == "skip":
            key = _skips_key(request.project)
            request.session[key] = ([i for i in request.session.get(key, []) if i != pk] + [pk])[-SKIPS_KEPT:]
            notice = f"Skipped item {prediction.item_id}; it comes back after the rest of the queue."
        else:
            try:
                prediction_review(prediction=prediction, user=request.user, role=request.role, action=action,
                                  client_token=form.cleaned_data["client_token"])
            except ApplicationError as exc:
                error = exc.message
    back = _back(request, slug)
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect(back)
    _, filters = _queue_filters(request, back)
    context = _stage(request, here=back, filters=filters, error=error, notice=notice)
    return _render_stage(request, context, status=422 if error else 200)


@require_POST
@project_role_required(Role.REVIEWER)
def prediction_review_undo(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Undo one of the reviewer's recent decisions (an undo row); its item becomes the active card again."""
    form = UndoForm(request.POST)
    error, notice, front = "", "", None
    if not form.is_valid():
        error = "Which decision to undo?"
    else:
        try:
            undo = annotation_withdraw(user=request.user, project=request.project,
                                       annotation_id=form.cleaned_data["annotation"])
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except ApplicationError as exc:
            error = exc.message
        else:
            notice = f"Undid your decision on item {undo.item_id}; decide it again."
            training_round = active_review_round(project=request.project)
            if training_round is not None:
                front = prediction_for_item(training_round=training_round, item_id=undo.item_id)
    back = _back(request, slug)
    if not request.htmx:
        (messages.error if error else messages.info)(request, error or notice)
        return redirect(back)
    _, filters = _queue_filters(request, back)
    context = _stage(request, here=back, filters=filters, front=front, error=error, notice=notice)
    return _render_stage(request, context, status=422 if error else 200)


@require_POST
@project_role_required(Role.REVIEWER)
def prediction_review_bulk(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Approve or correct every pseudo-label shown on the page (after one confirmation)."""
    form = BulkReviewForm(request.POST)
    training_round = active_review_round(project=request.project)
    if not form.is_valid() or training_round is None:
        messages.error(request, "Nothing to review in bulk.")
        return redirect(_back(request, slug))
    predictions = predictions_in_queue(training_round=training_round, ids=form.cleaned_data["ids"])
    try:
        done = predictions_review_bulk(predictions=predictions, user=request.user, role=request.role,
                                       action=form.cleaned_data["action"],
                                       client_token=form.cleaned_data["client_token"])
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        verb = "Approved" if form.cleaned_data["action"] == "approve" else "Corrected"
        messages.success(request, f"{verb} {len(done)} pseudo-label(s).")
    return redirect(_back(request, slug))


@require_GET
@project_role_required(Role.REVIEWER)
def prediction_similar(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Already-labeled items that read like this one (page, or fragment inside the card)."""
    prediction = prediction_in_project(project=request.project, prediction_id=pk)
    if prediction is None:
        raise Http404("No such prediction in this project.")
    similar, how = similar_labeled_items(item=prediction.item)
    context = {"project": request.project, "prediction": prediction, "similar": similar, "how": how}
    template = "annotations/review_similar.html#similar-items" if request.htmx else "annotations/review_similar.html"
    return render(request, template, context)
