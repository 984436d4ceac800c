"""Augmentation review: original and variant side by side, approve or reject with one key."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotations.errors import FieldError
from annotations.forms.review import VariantFilterForm, VariantReviewForm
from annotations.models import AugmentedVariant, Role
from annotations.permissions import project_role_required
from annotations.selectors.variants import (
    VARIANT_PAGE_SIZE,
    judge_votes,
    variant_in_project,
    variant_methods,
    variant_queue,
    word_diff,
)
from annotations.services.variants import REJECT_REASONS, variant_review
from annotations.views.common import HtmxHttpRequest
from annotations.views.errors import in_card, service_errors


def _card(variant: AugmentedVariant) -> dict:
    left, right = word_diff(variant.item.text, variant.text)
    return {"variant": variant, "left": left, "right": right, "votes": judge_votes(variant)}


@require_GET
@project_role_required(Role.REVIEWER)
def variant_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Variants to review, adversarial ones first; filters by status, kind and method."""
    data = request.GET.copy()
    data.setdefault("status", AugmentedVariant.Status.PENDING)
    filter_form = VariantFilterForm(data)
    page = Paginator(variant_queue(project=request.project, filters=filter_form.filters()), VARIANT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "project": request.project,
        "filter_form": filter_form,
        "methods": variant_methods(project=request.project),
        "page": page,
        "cards": [_card(v) for v in page.object_list],
        "reasons": REJECT_REASONS,
        "here": request.get_full_path(),
    }
    template = "annotations/variants.html#variant-list" if request.htmx else "annotations/variants.html"
    return render(request, template, context)


def _variant(request: HtmxHttpRequest, pk: int) -> AugmentedVariant:
    variant = variant_in_project(project=request.project, variant_id=pk)
    if variant is None:
        raise Http404("No such variant in this project.")
    return variant


def _variant_card(
    request: HtmxHttpRequest,
    slug: str,
    pk: int,
    *,
    variant: AugmentedVariant | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "project": request.project,
        "variant": variant or _variant(request, pk),
        "error": error,
        "reasons": REJECT_REASONS,
    }
    return render(request, "annotations/variants.html#variant-done", context, status=status)


def _variant_list_url(request: HtmxHttpRequest, slug: str, *args, **kwargs) -> str:
    """The list URL the reviewer came from (filters kept), never another page."""
    target = request.POST.get("next", "")
    base = reverse("annotations:variant_list", kwargs={"slug": slug})
    return target if target.startswith(base) else base


@require_POST
@project_role_required(Role.REVIEWER)
@service_errors(form_page=in_card(_variant_card, back=_variant_list_url))
def variant_review_action(request: HtmxHttpRequest, slug: str, pk: int) -> HttpResponse:
    """Approve or reject one variant (a reject carries a reason; errors come back inside the card)."""
    variant = _variant(request, pk)
    form = VariantReviewForm(request.POST)
    if not form.is_valid():
        raise FieldError("Unknown action or reason.", field="action")
    variant = variant_review(
        variant=variant, user=request.user, action=form.cleaned_data["action"], reason=form.cleaned_data["reason"]
    )
    if not request.htmx:
        return redirect(_variant_list_url(request, slug))
    return _variant_card(request, slug, pk, variant=variant)
