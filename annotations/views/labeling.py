"""Seed labeling: one leased item at a time, keyboard-first; the next item arrives via htmx."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from annotations.forms.labeling import LabelForm, SkipForm
from annotations.forms.review import UndoForm
from annotations.models import Annotation, Item, Role
from annotations.permissions import project_role_required
from annotations.selectors.labels import labeling_progress
from annotations.selectors.predictions import recent_decisions
from annotations.services.claims import item_claim_for, item_claim_next, item_claim_release
from annotations.services.labels import annotation_submit, annotation_undo_last, annotation_withdraw
from annotations.views.common import HtmxHttpRequest
from annotations.views.errors import service_errors

SKIPS_KEPT = 50


def _skips_key(project) -> str:
    return f"umbra_label_skips_{project.pk}"


def _item_in_project(project, item_id: int) -> Item:
    item = Item.objects.filter(pk=item_id, project=project).select_related("project").first()
    if item is None:
        raise Http404("No such item in this project.")
    return item


def _render_card(request: HtmxHttpRequest, *, notice: str = "", error: str = "", status: int = 200) -> HttpResponse:
    project = request.project
    skipped = request.session.get(_skips_key(project), [])
    item = item_claim_next(project=project, user=request.user, skipped_ids=skipped)
    context = {
        "project": project,
        "item": item,
        "categories": list(enumerate(project.categories or [], start=1))[:9],
        "client_token": uuid.uuid4().hex,
        "progress": labeling_progress(project=project, user=request.user),
        "notice": notice,
        "error": error,
    }
    template = "annotations/labeling.html#labeling-card" if request.htmx else "annotations/labeling.html"
    return render(request, template, context, status=status)


def _label_refused(request: HtmxHttpRequest, slug: str, *, error, status: int) -> HttpResponse:
    """The card again (the next item for this user), with the reason the label was not stored."""
    return _render_card(request, error=error.message, status=422)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ANNOTATOR)
@service_errors(form_page=_label_refused)
def labeling_next(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """GET: the leased item (page, or the card fragment for htmx). POST: store a label, then the next item."""
    if request.method == "GET":
        return _render_card(request)
    form = LabelForm(request.POST, categories=request.project.categories)
    if not form.is_valid():
        return _render_card(request, error="Choose harmful or unharmful (and a known category).", status=422)
    item = _item_in_project(request.project, form.cleaned_data["item"])
    annotation_submit(
        item=item,
        user=request.user,
        role=request.role,
        label=form.cleaned_data["label"],
        category=form.cleaned_data["category"],
        client_token=form.cleaned_data["client_token"],
        leased_only=True,
    )
    notice = f"Item {item.pk} labeled {form.cleaned_data['label']}."
    if not request.htmx:
        messages.success(request, notice)
        return redirect("annotations:labeling_next", slug=slug)
    return _render_card(request, notice=notice)


@require_POST
@project_role_required(Role.ANNOTATOR)
def labeling_skip(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Release the lease on the shown item and hand the next one; skipped items come back later."""
    form = SkipForm(request.POST)
    if form.is_valid():
        item = _item_in_project(request.project, form.cleaned_data["item"])
        item_claim_release(item=item, user=request.user)
        key = _skips_key(request.project)
        skips = [i for i in request.session.get(key, []) if i != item.pk] + [item.pk]
        request.session[key] = skips[-SKIPS_KEPT:]
    if not request.htmx:
        messages.info(request, "Skipped; it comes back later.")
        return redirect("annotations:labeling_next", slug=slug)
    return _render_card(request, notice="Skipped; it comes back later.")


@require_POST
@project_role_required(Role.ANNOTATOR)
@service_errors(form_page=_label_refused)
def labeling_undo(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Withdraw the user's last label (or, with ``annotation``, any recent one) and show that item again."""
    form = SkipForm(request.POST)
    which = UndoForm(request.POST)
    if which.is_valid():
        undo = annotation_withdraw(
            user=request.user, project=request.project, annotation_id=which.cleaned_data["annotation"]
        )
    else:
        undo = annotation_undo_last(user=request.user, project=request.project)
    notice = "Nothing to undo."
    if undo is not None:
        if form.is_valid():  # the item on screen goes back to the queue
            item_claim_release(item=_item_in_project(request.project, form.cleaned_data["item"]), user=request.user)
        item_claim_for(item=undo.item, user=request.user)
        key = _skips_key(request.project)
        request.session[key] = [i for i in request.session.get(key, []) if i != undo.item_id]
        notice = f"Undid your label on item {undo.item_id}; label it again."
    if not request.htmx:
        messages.info(request, notice)
        return redirect("annotations:labeling_next", slug=slug)
    return trigger_client_event(_render_card(request, notice=notice), "labels-changed")


@require_GET
@project_role_required(Role.ANNOTATOR)
def labeling_recent(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The user's last labels in this project, each with undo and a link to correct it on the item page."""
    recent = recent_decisions(user=request.user, project=request.project, kinds=(Annotation.Kind.LABEL,))
    return render(request, "annotations/labeling_recent.html", {"project": request.project, "recent": recent})
