"""Augmentation, adversarial mining, LLM-judge labeling and UU refinement pages.

Reviewers and admins may look (reviewers review the variants these jobs produce);
only admins start, resume or cancel (checked by the gate on each view).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from annotations.charts import refine_charts
from annotations.forms.augment import AdversarialStartForm, AugmentationStartForm, JudgeLabelsForm, RefineStartForm
from annotations.models import BackgroundJob, Role
from annotations.permissions import has_role, project_role_required
from annotations.selectors import jobs as job_queries
from annotations.selectors.jobs import AUGMENT_PAGE_KINDS, job_get, jobs_for
from annotations.selectors.labels import weak_label_counts
from annotations.selectors.variants import job_variant_counts, job_variants_sample
from annotations.services.adversarial import adversarial_evaluation_start, adversarial_job_start
from annotations.services.augmentation import augmentation_job_start
from annotations.services.jobs import job_cancel, job_resume
from annotations.services.refinement import judge_labels_job_start, uu_refine_start
from annotations.views.common import HtmxHttpRequest, polled_fragment
from annotations.views.errors import form_error, service_errors

PAGE = "annotations/augment.html"
JOB = "annotations/augment_job.html"
REFINE = "annotations/refine.html"
REFINE_DETAIL = "annotations/refine_detail.html"
ACTIVE = (BackgroundJob.Status.QUEUED, BackgroundJob.Status.RUNNING)


def _augment_job(request: HtmxHttpRequest, job_id: int) -> BackgroundJob:
    job = job_get(project=request.project, job_id=job_id, kinds=AUGMENT_PAGE_KINDS)
    if job is None:
        raise Http404("No such job in this project.")
    return job


def _refine_job(request: HtmxHttpRequest, job_id: int) -> BackgroundJob:
    job = job_get(project=request.project, job_id=job_id, kinds=[BackgroundJob.Kind.REFINE])
    if job is None:
        raise Http404("No such refinement job in this project.")
    return job


def _page_context(request: HtmxHttpRequest, **forms) -> dict:
    project = request.project
    jobs = job_queries.with_wait_reasons(jobs_for(project=project, kinds=AUGMENT_PAGE_KINDS, limit=50))
    return {
        "project": project,
        "jobs": jobs,
        "has_active": any(j.status in ACTIVE for j in jobs),
        "can_manage": has_role(request.user, project, Role.ADMIN),
        "augment_form": forms.get("augment_form") or AugmentationStartForm(),
        "adversarial_form": forms.get("adversarial_form") or AdversarialStartForm(),
        "judge_form": forms.get("judge_form") or JudgeLabelsForm(),
        "weak_counts": weak_label_counts(project=project),
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
    messages.success(request, f"{job.label} queued.")
    return redirect(url)


FORMS = {"augment_form": AugmentationStartForm, "adversarial_form": AdversarialStartForm, "judge_form": JudgeLabelsForm}


def _start_refused(form_name: str):
    """The augmentation page again, with the service's reason under the form (or its field)."""

    def page(request: HtmxHttpRequest, slug: str, *, error, status: int) -> HttpResponse:
        form = FORMS[form_name](request.POST)
        form.is_valid()
        form_error(form, error)
        return render(request, PAGE, _page_context(request, **{form_name: form}), status=status)

    return page


def _start(request: HtmxHttpRequest, form_name: str, start) -> HttpResponse:
    form = FORMS[form_name](request.POST)
    if not form.is_valid():
        return render(request, PAGE, _page_context(request, **{form_name: form}), status=422)
    return _started(request, start(form.cleaned_data, form))


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(form_page=_start_refused("augment_form"))
def augment_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start an augmentation job from the dashboard form."""

    def start(d, form):
        config = (
            {"models": d["backtranslation_models"]}
            if d["method"] == "backtranslation" and d["backtranslation_models"]
            else {}
        )
        judge = {"judges": [form.provider()]} if d.get("judge") else None
        return augmentation_job_start(
            project=request.project,
            user=request.user,
            method=d["method"],
            per_item=d["per_item"],
            items=d["items"],
            limit=d.get("limit"),
            provider=form.provider(),
            config=config,
            judge=judge,
        )

    return _start(request, "augment_form", start)


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(form_page=_start_refused("adversarial_form"))
def adversarial_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start an adversarial-mining job against the active model."""

    def start(d, form):
        judge = {"judges": [form.provider()]} if d.get("judge") else None
        return adversarial_job_start(
            project=request.project,
            user=request.user,
            direction=d["direction"],
            iterations=d["iterations"],
            per_item=d["per_item"],
            provider=form.provider(),
            judge=judge,
            limit=d.get("limit"),
        )

    return _start(request, "adversarial_form", start)


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(form_page=_start_refused("judge_form"))
def judge_labels_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Start an LLM-judge labeling job (weak labels for UU refinement)."""

    def start(d, form):
        return judge_labels_job_start(
            project=request.project, user=request.user, provider=form.provider(), limit=d.get("limit")
        )

    return _start(request, "judge_form", start)


def _job_context(request: HtmxHttpRequest, job: BackgroundJob) -> dict:
    job_queries.with_wait_reasons([job])
    return {"project": request.project, "job": job, "can_manage": has_role(request.user, request.project, Role.ADMIN)}


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.REVIEWER)
def augment_job_detail(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    """One job: progress bar and actions (htmx-polled fragment), result, per-iteration mining stats, variants."""
    job = _augment_job(request, job_id)
    context = _job_context(request, job)
    if request.htmx:
        return polled_fragment(request, f"{JOB}#job-progress", context, active=job.status in ACTIVE)
    context.update(
        counts=job_variant_counts(job=job),
        variants=job_variants_sample(job=job),
        params=sorted((job.params or {}).items()),
    )
    return render(request, JOB, context)


def _job_url(request: HtmxHttpRequest, slug: str, job_id: int) -> str:
    return reverse("annotations:augment_job_detail", kwargs={"slug": slug, "job_id": job_id})


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(back=_job_url)
def augment_job_resume(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    job = job_resume(job=_augment_job(request, job_id), user=request.user)
    messages.success(request, f"{job.label} re-queued.")
    return redirect(_job_url(request, slug, job_id))


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(back=_job_url)
def augment_job_cancel(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    job = job_cancel(job=_augment_job(request, job_id), user=request.user)
    messages.success(
        request,
        f"{job.label} cancelled."
        if job.status == "cancelled"
        else f"{job.label}: cancellation requested; it stops after its current item.",
    )
    return redirect(_job_url(request, slug, job_id))


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(back=_job_url)
def adversarial_evaluate(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    ev = adversarial_evaluation_start(job=_augment_job(request, job_id), user=request.user)
    messages.success(request, f"Re-scoring queued as {ev.label}.")
    return redirect(_job_url(request, slug, job_id))


# --- UU refinement ------------------------------------------------------------------------


def _refine_context(request: HtmxHttpRequest, form: RefineStartForm | None = None) -> dict:
    project = request.project
    jobs = job_queries.with_wait_reasons(jobs_for(project=project, kinds=[BackgroundJob.Kind.REFINE], limit=50))
    return {
        "project": project,
        "jobs": jobs,
        "form": form or RefineStartForm(),
        "can_manage": has_role(request.user, project, Role.ADMIN),
        "has_active": any(j.is_active for j in jobs),
        "weak_counts": weak_label_counts(project=project),
    }


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.REVIEWER)
def refine_page(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Refinement jobs and the start form; htmx polls refresh the jobs table."""
    context = _refine_context(request)
    if request.htmx:
        return polled_fragment(request, f"{REFINE}#refine-table", context, active=context["has_active"])
    return render(request, REFINE, context)


def _refine_refused(request: HtmxHttpRequest, slug: str, *, error, status: int) -> HttpResponse:
    form = RefineStartForm(request.POST)
    form.is_valid()
    form_error(form, error)
    return render(request, REFINE, _refine_context(request, form), status=status)


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(form_page=_refine_refused)
def refine_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    form = RefineStartForm(request.POST)
    if not form.is_valid():
        return render(request, REFINE, _refine_context(request, form), status=422)
    job = uu_refine_start(project=request.project, user=request.user, **form.cleaned_data)
    url = reverse("annotations:refine_detail", kwargs={"slug": request.project.slug, "job_id": job.pk})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    messages.success(request, f"{job.label} queued.")
    return redirect(url)


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.REVIEWER)
def refine_detail(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    """One refinement job: θ̂ with intervals, labels changed and held-out agreement per iteration."""
    job = _refine_job(request, job_id)
    job_queries.with_wait_reasons([job])
    context = {
        "project": request.project,
        "job": job,
        "uu": job.result or {},
        "charts": refine_charts(result=job.result),
        "can_manage": has_role(request.user, request.project, Role.ADMIN),
    }
    if request.htmx:
        return polled_fragment(request, f"{REFINE_DETAIL}#refine-status", context, active=job.is_active)
    return render(request, REFINE_DETAIL, context)


def _refine_url(request: HtmxHttpRequest, slug: str, job_id: int) -> str:
    return reverse("annotations:refine_detail", kwargs={"slug": slug, "job_id": job_id})


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(back=_refine_url)
def refine_cancel(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    job = job_cancel(job=_refine_job(request, job_id), user=request.user)
    messages.success(
        request, f"{job.label} cancelled." if job.status == "cancelled" else f"{job.label}: cancellation requested."
    )
    return redirect(_refine_url(request, slug, job_id))
