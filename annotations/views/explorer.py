"""The data explorer: search, filter and sort every item of a project; an item's label history and correction."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from annotations.forms.explorer import CorrectLabelForm, ItemFilterForm
from annotations.models import Item, Role
from annotations.permissions import project_role_required
from annotations.selectors.explorer import explorer_items, item_in_project, item_label_history, similar_labeled_items
from annotations.selectors.projects import project_members
from annotations.services.labels import annotation_submit
from annotations.views.common import HtmxHttpRequest
from annotations.views.errors import form_error, service_errors


@require_GET
@project_role_required(Role.ANNOTATOR)
def item_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Items under the filters, one keyset page at a time (``?cursor=`` continues after the last row)."""
    project = request.project
    form = ItemFilterForm(request.GET or None, project=project, members=project_members(project=project))
    page = explorer_items(project=project, filters=form.filters(), cursor=request.GET.get("cursor", ""))
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "project": project,
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "first_page": not request.GET.get("cursor"),
        # row links from one reversed prefix: 50 reverse() calls per page add up
        "items_base": reverse("annotations:item_list", kwargs={"slug": project.slug}),
    }
    template = "annotations/explorer.html#explorer-results" if request.htmx else "annotations/explorer.html"
    return render(request, template, context)


def _item(request: HtmxHttpRequest, item_id: int) -> Item:
    item = item_in_project(project=request.project, item_id=item_id)
    if item is None:
        raise Http404("No such item in this project.")
    return item


def _detail_page(request: HtmxHttpRequest, item: Item, form: CorrectLabelForm, *, status: int = 200) -> HttpResponse:
    context = {"project": request.project, "item": item, "history": item_label_history(item=item), "form": form}
    return render(request, "annotations/item_detail.html", context, status=status)


def _correction_refused(request: HtmxHttpRequest, slug: str, item_id: int, *, error, status: int) -> HttpResponse:
    item = _item(request, item_id)
    form = CorrectLabelForm(request.POST, project=request.project)
    form.is_valid()
    form_error(form, error)
    return _detail_page(request, item, form, status=status)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ANNOTATOR)
@service_errors(form_page=_correction_refused)
def item_detail(request: HtmxHttpRequest, slug: str, item_id: int) -> HttpResponse:
    """GET: the item, its full label history (human and machine) and a correction form. POST: a new label row."""
    item = _item(request, item_id)
    if request.method == "GET":
        initial = {"label": item.human_label, "category": item.human_category}
        return _detail_page(request, item, CorrectLabelForm(initial=initial, project=request.project))
    form = CorrectLabelForm(request.POST, project=request.project)
    if not form.is_valid():
        return _detail_page(request, item, form, status=422)
    annotation_submit(
        item=item,
        user=request.user,
        role=request.role,
        label=form.cleaned_data["label"],
        category=form.cleaned_data["category"],
        note=form.cleaned_data["note"],
    )
    messages.success(
        request,
        f"Item {item.pk}: your label {form.cleaned_data['label']} is recorded (a new row; "
        "the earlier ones stay in the history).",
    )
    return redirect("annotations:item_detail", slug=slug, item_id=item.pk)


@require_GET
@project_role_required(Role.ANNOTATOR)
def item_similar(request: HtmxHttpRequest, slug: str, item_id: int) -> HttpResponse:
    """Labeled items that read like this one (fragment for htmx, or a page)."""
    item = _item(request, item_id)
    similar, how = similar_labeled_items(item=item)
    context = {"project": request.project, "item": item, "similar": similar, "how": how}
    template = "annotations/item_similar.html#similar-items" if request.htmx else "annotations/item_similar.html"
    return render(request, template, context)
