"""Training rounds dashboard: start/cancel rounds, watch progress, activate model versions.

Everyone in the project may look; only admins may act (checked by the gate on each view).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from annotations.forms.rounds import RoundStartForm
from annotations.models import Role
from annotations.permissions import has_role, project_role_required
from annotations.selectors import jobs as job_queries
from annotations.selectors import rounds as q
from annotations.services.rounds import (
    activation_warnings,
    model_version_activate,
    training_round_cancel,
    training_round_start,
)
from annotations.views.common import HtmxHttpRequest, polled_fragment
from annotations.views.errors import form_error, service_errors

PAGE = "annotations/rounds.html"
DETAIL = "annotations/round_detail.html"


def _table_context(request: HtmxHttpRequest, *, oob: bool = False) -> dict:
    project = request.project
    rounds = job_queries.with_wait_reasons(q.rounds_for(project=project))
    for r in rounds:  # the engine's own checks only (no query per row); the round page adds reviews
        quality = q.pseudo_label_quality(training_round=r, with_reviews=False)
        r.pseudo_flagged = bool(quality and quality.flagged)
    return {
        "project": project,
        "rounds": rounds,
        "has_active": any(r.is_active for r in rounds),
        "pseudo_mix": q.pseudo_label_mix(rounds),
        "can_manage": has_role(request.user, project, Role.ADMIN),
        "oob": oob,
    }


def _with_warnings(project, versions) -> list:
    """Each version with ``warnings``: why it should not go live unasked (shown, and asked to confirm)."""
    out = list(versions)
    for v in out:
        v.warnings = activation_warnings(project=project, training_round=v.training_round, metrics=v.metrics)
    return out


def _page_context(request: HtmxHttpRequest, form: RoundStartForm | None = None) -> dict:
    project = request.project
    return {
        **_table_context(request),
        "form": form or RoundStartForm(),
        "versions": _with_warnings(project, q.model_versions_for(project=project)),
        "curves": q.learning_curves(project=project),
    }


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.ANNOTATOR)
def round_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """The rounds page; htmx polls serve only the live rounds table, and stop when nothing runs."""
    if request.htmx:
        context = _table_context(request)
        return polled_fragment(request, f"{PAGE}#round-table", context, active=context["has_active"])
    return render(request, PAGE, _page_context(request))


def _start_form_response(request: HtmxHttpRequest, form: RoundStartForm, status: int) -> HttpResponse:
    if not request.htmx:
        return render(request, PAGE, _page_context(request, form), status=status)
    body = render_to_string(f"{PAGE}#start-form", {"project": request.project, "form": form}, request=request)
    if status == 201:
        body += render_to_string(f"{PAGE}#round-table", _table_context(request, oob=True), request=request)
    return HttpResponse(body, status=status)


def _start_refused(request: HtmxHttpRequest, slug: str, *, error, status: int) -> HttpResponse:
    """The start form again, with the service's reason (409 busy, 503 no task queue; 422 for htmx)."""
    form = RoundStartForm(request.POST)
    form.is_valid()
    form_error(form, error)
    return _start_form_response(request, form, status)


def _round(request: HtmxHttpRequest, round_id: int):
    training_round = q.round_get(project=request.project, round_id=round_id)
    if training_round is None:
        raise Http404("No such round in this project.")
    return training_round


def _round_list_url(request: HtmxHttpRequest, slug: str, *args, **kwargs) -> str:
    return reverse("annotations:round_list", kwargs={"slug": slug})


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(form_page=_start_refused)
def round_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start a round from the form; field errors come back in the form with status 422."""
    form = RoundStartForm(request.POST)
    if not form.is_valid():
        return _start_form_response(request, form, 422)
    training_round = training_round_start(
        project=request.project,
        user=request.user,
        algorithm=form.cleaned_data["algorithm"],
        config=form.cleaned_data["config"],
        seed=form.cleaned_data["seed"],
    )
    if not request.htmx:
        messages.success(request, f"{training_round.label} queued.")
        return redirect("annotations:round_list", slug=request.project.slug)
    return _start_form_response(request, RoundStartForm(initial={"algorithm": training_round.algorithm}), 201)


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(back=_round_list_url)
def round_cancel(request: HtmxHttpRequest, slug: str, round_id: int) -> HttpResponse:
    training_round = training_round_cancel(training_round=_round(request, round_id), user=request.user)
    if request.htmx:
        return render(request, f"{PAGE}#round-table", _table_context(request))
    messages.success(
        request,
        f"{training_round.label}: cancellation requested."
        if training_round.status == "running"
        else f"{training_round.label} cancelled.",
    )
    return redirect("annotations:round_list", slug=request.project.slug)


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(back=_round_list_url)
def model_version_activate_view(request: HtmxHttpRequest, slug: str, version_id: int) -> HttpResponse:
    version = q.model_version_get(project=request.project, version_id=version_id)
    if version is None:
        raise Http404("No such model version in this project.")
    model_version_activate(model_version=version, user=request.user, confirm=request.POST.get("confirm") == "1")
    messages.success(request, f"Model {version.name} is now active.")
    return redirect("annotations:round_list", slug=request.project.slug)


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.ANNOTATOR)
def round_detail(request: HtmxHttpRequest, slug: str, round_id: int) -> HttpResponse:
    """One round: status, progress, metrics, snapshot summary and the train log."""
    training_round = _round(request, round_id)
    job_queries.with_wait_reasons([training_round])
    context = {
        "project": request.project,
        "round": training_round,
        "can_manage": has_role(request.user, request.project, Role.ADMIN),
        "pseudo": q.pseudo_label_quality(training_round=training_round),
        "train": q.train_charts(training_round=training_round),
        "evals": q.eval_charts(training_round.metrics),
    }
    if request.htmx:
        return polled_fragment(request, f"{DETAIL}#round-status", context, active=training_round.is_active)
    return render(request, DETAIL, context)
