"""Augmentation, adversarial mining, LLM-judge labeling and UU refinement pages.

Reviewers and admins may look (reviewers review the variants these jobs produce);
only admins start, resume or cancel (checked here and again in the services).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from annotations.errors import ApplicationError, PermissionDenied
from annotations.forms.augment import AdversarialStartForm, AugmentationStartForm, JudgeLabelsForm, RefineStartForm
from annotations.models import BackgroundJob, Role
from annotations.permissions import has_role, project_role_required
from annotations.queries import augment as q
from annotations.services.adversarial import adversarial_evaluation_start, adversarial_job_start
from annotations.services.augmentation import augmentation_job_start, job_cancel, job_resume
from annotations.services.refinement import judge_labels_job_start, uu_refine_start
from annotations.views.common import HtmxHttpRequest, polled_fragment

PAGE = "annotations/augment.html"
JOB = "annotations/augment_job.html"
REFINE = "annotations/refine.html"
REFINE_DETAIL = "annotations/refine_detail.html"
ACTIVE = (BackgroundJob.Status.QUEUED, BackgroundJob.Status.RUNNING)


def _page_context(request: HtmxHttpRequest, **forms) -> dict:
    project = request.project
    jobs = list(q.augment_jobs_for(project=project))
    return {
        "project": project, "jobs": jobs, "has_active": any(j.status in ACTIVE for j in jobs),
        "can_manage": has_role(request.user, project, Role.ADMIN),
        "augment_form": forms.get("augment_form") or AugmentationStartForm(),
        "adversarial_form": forms.get("adversarial_form") or AdversarialStartForm(),
        "judge_form": forms.get("judge_form") or JudgeLabelsForm(),
        "weak_counts": q.weak_label_counts(project=project),
    }


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.REVIEWER)
def augment_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Jobs list and start forms; htmx polls refresh only the jobs table, and stop when idle."""
    context = _page_context(request)
    if request.htmx:
        return polled_fragment(request, f"{PAGE}#job-table", context, active=context["has_active"])
    return render(request, PAGE, context)


def _started(request: HtmxHttpRequest, job: BackgroundJob) -> HttpResponse:
    url = reverse("annotations:augment_job_detail", kwargs={"slug": request.project.slug, "job_id": job.pk})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    messages.success(request, f"Job #{job.pk} queued.")
    return redirect(url)


def _start(request: HtmxHttpRequest, form, form_name: str, start) -> HttpResponse:
    if form.is_valid():
        try:
            job = start(form.cleaned_data, form)
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            field = exc.extra.get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            return _started(request, job)
    return render(request, PAGE, _page_context(request, **{form_name: form}), status=422)


@require_POST
@project_role_required(Role.ADMIN)
def augment_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start an augmentation job from the dashboard form."""

    def start(d, form):
        config = {"models": d["backtranslation_models"]} if d["method"] == "backtranslation" and d[
            "backtranslation_models"] else {}
        judge = {"judges": [form.provider()]} if d.get("judge") else None
        return augmentation_job_start(project=request.project, user=request.user, method=d["method"],
                                      per_item=d["per_item"], items=d["items"], limit=d.get("limit"),
                                      provider=form.provider(), config=config, judge=judge)

    return _start(request, AugmentationStartForm(request.POST), "augment_form", start)


@require_POST
@project_role_required(Role.ADMIN)
def adversarial_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start an adversarial-mining job against the active model."""

    def start(d, form):
        judge = {"judges": [form.provider()]} if d.get("judge") else None
        return adversarial_job_start(project=request.project, user=request.user, direction=d["direction"],
                                     iterations=d["iterations"], per_item=d["per_item"], provider=form.provider(),
                                     judge=judge, limit=d.get("limit"))

    return _start(request, AdversarialStartForm(request.POST), "adversarial_form", start)


@require_POST
@project_role_required(Role.ADMIN)
def judge_labels_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start an LLM-judge labeling job (weak labels for UU refinement)."""

    def start(d, form):
        return judge_labels_job_start(project=request.project, user=request.user, provider=form.provider(),
                                      limit=d.get("limit"))

    return _start(request, JudgeLabelsForm(request.POST), "judge_form", start)


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.REVIEWER)
def augment_job_detail(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    """One job: progress bar (htmx-polled fragment), result, per-iteration mining stats, variants."""
    job = q.augment_job_get(project=request.project, job_id=job_id)
    context = {"project": request.project, "job": job, "can_manage": has_role(request.user, request.project, Role.ADMIN)}
    if request.htmx:
        return polled_fragment(request, f"{JOB}#job-progress", context, active=job.status in ACTIVE)
    context.update(counts=q.job_variant_counts(job=job), variants=q.job_variants_sample(job=job),
                   params=sorted((job.params or {}).items()))
    return render(request, JOB, context)


def _job_action(request: HtmxHttpRequest, job_id: int, action) -> HttpResponse:
    job = q.augment_job_get(project=request.project, job_id=job_id)
    try:
        msg = action(job)
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from exc
    except ApplicationError as exc:
        if request.htmx:
            return HttpResponse(exc.message, status=409)
        messages.error(request, exc.message)
    else:
        messages.success(request, msg)
    return redirect("annotations:augment_job_detail", slug=request.project.slug, job_id=job.pk)


@require_POST
@project_role_required(Role.ADMIN)
def augment_job_resume(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    return _job_action(request, job_id, lambda job: f"Job #{job_resume(job=job, user=request.user).pk} re-queued.")


@require_POST
@project_role_required(Role.ADMIN)
def augment_job_cancel(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    return _job_action(request, job_id, lambda job: f"Job #{job_cancel(job=job, user=request.user).pk} cancelled.")


@require_POST
@project_role_required(Role.ADMIN)
def adversarial_evaluate(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    return _job_action(request, job_id, lambda job: "Re-scoring queued as job "
                       f"#{adversarial_evaluation_start(job=job, user=request.user).pk}.")


# --- UU refinement ------------------------------------------------------------------------


def _refine_context(request: HtmxHttpRequest, form: RefineStartForm | None = None) -> dict:
    project = request.project
    rounds = list(q.uu_rounds_for(project=project))
    return {"project": project, "rounds": rounds, "form": form or RefineStartForm(),
            "can_manage": has_role(request.user, project, Role.ADMIN),
            "has_active": any(r.is_active for r in rounds), "weak_counts": q.weak_label_counts(project=project)}


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.REVIEWER)
def refine_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """UU refinement rounds and the start form; htmx polls refresh the rounds table."""
    context = _refine_context(request)
    if request.htmx:
        return polled_fragment(request, f"{REFINE}#refine-table", context, active=context["has_active"])
    return render(request, REFINE, context)


@require_POST
@project_role_required(Role.ADMIN)
def refine_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    form = RefineStartForm(request.POST)
    if form.is_valid():
        try:
            rnd = uu_refine_start(project=request.project, user=request.user, **form.cleaned_data)
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            field = exc.extra.get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            url = reverse("annotations:refine_detail", kwargs={"slug": request.project.slug, "round_id": rnd.pk})
            if request.htmx:
                return HttpResponseClientRedirect(url)
            messages.success(request, f"Refinement round #{rnd.pk} queued.")
            return redirect(url)
    return render(request, REFINE, _refine_context(request, form), status=422)


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.REVIEWER)
def refine_detail(request: HtmxHttpRequest, slug: str, round_id: int) -> HttpResponse:
    """One refinement round: θ̂ with intervals, labels changed and held-out agreement per iteration."""
    rnd = q.uu_round_get(project=request.project, round_id=round_id)
    context = {"project": request.project, "r": rnd, "uu": (rnd.metrics or {}).get("uu") or {}}
    if request.htmx:
        return polled_fragment(request, f"{REFINE_DETAIL}#refine-status", context, active=rnd.is_active)
    return render(request, REFINE_DETAIL, context)


