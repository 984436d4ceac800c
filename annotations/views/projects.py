"""Project list, project dashboard, and the import upload (admins)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.forms.imports import ImportForm, SeedSuggestionForm
from annotations.models import BackgroundJob, Item, Role
from annotations.permissions import project_role_required
from annotations.selectors import projects as selectors
from annotations.selectors.jobs import jobs_for, with_wait_reasons
from annotations.services.imports import import_job_start
from annotations.services.seeds import seed_suggestion_start
from annotations.views.common import HtmxHttpRequest
from annotations.views.errors import form_error, service_errors


@require_GET
@login_required
def home(request: HtmxHttpRequest):
    projects = selectors.projects_for(user=request.user)
    return render(request, "annotations/home.html", {"projects": projects})


@require_GET
@project_role_required(Role.ANNOTATOR)
def project_dashboard(request: HtmxHttpRequest, slug: str):
    project = request.project
    context = {
        "project": project,
        "counts": selectors.project_counts(project=project),
        "members": selectors.project_members(project=project),
    }
    return render(request, "annotations/project_dashboard.html", context)


@require_GET
@project_role_required(Role.ANNOTATOR)
def project_guidelines(request: HtmxHttpRequest, slug: str):
    return render(request, "annotations/guidelines.html", {"project": request.project})


def _import_page(
    request: HtmxHttpRequest, form: ImportForm, *, status: int, seed_form: SeedSuggestionForm | None = None
):
    jobs = with_wait_reasons(jobs_for(project=request.project, kinds=[BackgroundJob.Kind.IMPORT], limit=20))
    seed_jobs = with_wait_reasons(jobs_for(project=request.project, kinds=[BackgroundJob.Kind.SEEDS], limit=5))
    return render(
        request,
        "annotations/item_import.html",
        {
            "project": request.project,
            "form": form,
            "jobs": jobs,
            "seed_jobs": seed_jobs,
            "seed_form": seed_form or SeedSuggestionForm(),
        },
        status=status,
    )


def _import_refused(request: HtmxHttpRequest, slug: str, *, error, status: int):
    """The import page again with the reason (a bad file, or the task queue down: 503)."""
    form = ImportForm(request.POST, request.FILES)
    form.is_valid()
    form_error(form, error)
    return _import_page(request, form, status=status)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
@service_errors(form_page=_import_refused)
def item_import(request: HtmxHttpRequest, slug: str):
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        split = form.cleaned_data["split"]
        job = import_job_start(
            project=request.project,
            user=request.user,
            uploaded=form.cleaned_data["file"],
            split=Item.Split.BENCH if split == "bench" else split,
            bench_name=form.cleaned_data["bench_name"] or "",
            skip_invalid=form.cleaned_data["skip_invalid"],
        )
        messages.success(request, f"{job.label} queued.")
        return redirect("annotations:item_import", slug=slug)
    return _import_page(request, form, status=422 if request.method == "POST" else 200)


@require_GET
@project_role_required(Role.ADMIN)
def import_jobs(request: HtmxHttpRequest, slug: str):
    jobs = with_wait_reasons(jobs_for(project=request.project, kinds=[BackgroundJob.Kind.IMPORT], limit=20))
    return render(request, "annotations/item_import.html#import-jobs", {"project": request.project, "jobs": jobs})


def _seed_suggestion_refused(request: HtmxHttpRequest, slug: str, *, error, status: int):
    """The import page again with the reason next to the seed-suggestion field (or the form's top)."""
    seed_form = SeedSuggestionForm(request.POST)
    seed_form.is_valid()
    form_error(seed_form, error)
    return _import_page(request, ImportForm(), status=status, seed_form=seed_form)


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(form_page=_seed_suggestion_refused)
def seed_suggestion_start_view(request: HtmxHttpRequest, slug: str):
    """Queue a seed-suggestion job: which pool items to label first, chosen without labels."""
    seed_form = SeedSuggestionForm(request.POST)
    if not seed_form.is_valid():
        return _import_page(request, ImportForm(), status=422, seed_form=seed_form)
    job = seed_suggestion_start(
        project=request.project,
        user=request.user,
        n=seed_form.cleaned_data["n"],
        seed=seed_form.cleaned_data["seed"] or 0,
    )
    messages.success(request, f"{job.label} queued: the suggested items will appear in the labeling queue.")
    return redirect("annotations:item_import", slug=slug)
