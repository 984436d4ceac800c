"""Project list, project dashboard, and the import upload (admins)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from annotations import selectors
from annotations.errors import ApplicationError
from annotations.forms.imports import ImportForm
from annotations.models import BackgroundJob, Item, Role
from annotations.permissions import project_role_required
from annotations.services.jobs import import_job_start
from annotations.views.common import HtmxHttpRequest


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


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
def item_import(request: HtmxHttpRequest, slug: str):
    project = request.project
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        split = form.cleaned_data["split"]
        try:
            job = import_job_start(
                project=project, user=request.user, uploaded=form.cleaned_data["file"],
                split=Item.Split.BENCH if split == "bench" else split,
                bench_name=form.cleaned_data["bench_name"] or "", skip_invalid=form.cleaned_data["skip_invalid"],
            )
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Import job {job.pk} queued.")
            return redirect("annotations:item_import", slug=project.slug)
    jobs = selectors.jobs_for(project=project, kind=BackgroundJob.Kind.IMPORT)
    status = 422 if request.method == "POST" else 200
    return render(request, "annotations/item_import.html", {"project": project, "form": form, "jobs": jobs},
                  status=status)


@require_GET
@project_role_required(Role.ADMIN)
def import_jobs(request: HtmxHttpRequest, slug: str):
    jobs = selectors.jobs_for(project=request.project, kind=BackgroundJob.Kind.IMPORT)
    return render(request, "annotations/item_import.html#import-jobs", {"project": request.project, "jobs": jobs})
