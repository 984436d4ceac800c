"""The project run from the browser: create it, change its settings, manage members, export.

Views only parse forms and render; the services (``annotations.services.projects``,
``label_exports``) check roles and rules and raise typed errors that ``service_errors`` turns
into responses.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from annotations.errors import PermissionDenied
from annotations.forms.projects import ExportStartForm, MemberForm, ProjectCreateForm, ProjectSettingsForm
from annotations.models import BackgroundJob, Project, Role
from annotations.permissions import project_role_required
from annotations.selectors.jobs import jobs_for, with_wait_reasons
from annotations.selectors.projects import project_members
from annotations.services.label_exports import export_file_for, export_job_start
from annotations.services.projects import (
    project_create_by,
    project_member_remove,
    project_member_set,
    project_settings_update,
)
from annotations.templatetags.umbra import markdown_safe
from annotations.views.common import HtmxHttpRequest, polled_fragment
from annotations.views.errors import form_error, service_errors

SETTINGS = "annotations/project_settings.html"
EXPORTS = "annotations/project_exports.html"


# --- create --------------------------------------------------------------------------


def _create_refused(request: HtmxHttpRequest, *, error, status: int) -> HttpResponse:
    form = ProjectCreateForm(request.POST)
    form.is_valid()
    form_error(form, error)
    return render(request, "annotations/project_new.html", {"form": form}, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@service_errors(form_page=_create_refused)
def project_new(request: HtmxHttpRequest) -> HttpResponse:
    """Create a project (site staff); its creator becomes its admin."""
    if not (request.user.is_staff or request.user.is_superuser):
        raise PermissionDenied("Only site staff can create projects; ask a site admin.")
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        project = project_create_by(
            user=request.user,
            slug=d["slug"],
            name=d["name"],
            task=d["task"],
            categories=d["categories"],
            guidelines=d["guidelines"],
        )
        messages.success(request, f"Project {project.name} created; you are its admin. Add members below.")
        return redirect("annotations:project_settings", slug=project.slug)
    return render(
        request, "annotations/project_new.html", {"form": form}, status=422 if request.method == "POST" else 200
    )


@require_POST
@login_required
def guidelines_preview(request: HtmxHttpRequest) -> HttpResponse:
    """The guidelines Markdown as the guidelines page will show it (sanitised), for the preview."""
    html = markdown_safe(request.POST.get("guidelines", "")[:100_000])
    return HttpResponse(html or '<p class="muted">Nothing to preview yet.</p>')


# --- settings and members --------------------------------------------------------------


def _settings_context(request: HtmxHttpRequest, *, form=None, member_form=None) -> dict:
    project = request.project
    return {
        "project": project,
        "form": form or ProjectSettingsForm(instance=project),
        "member_form": member_form or MemberForm(),
        "members": project_members(project=project),
        "roles": Role.choices,
    }


def _settings_refused(request: HtmxHttpRequest, slug: str, *, error, status: int) -> HttpResponse:
    form = ProjectSettingsForm(request.POST, instance=Project.objects.get(pk=request.project.pk))
    form.is_valid()
    form_error(form, error)
    return render(request, SETTINGS, _settings_context(request, form=form), status=status)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
@service_errors(form_page=_settings_refused)
def project_settings(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    project = request.project
    if request.method != "POST":
        return render(request, SETTINGS, _settings_context(request))
    # a copy: a bound ModelForm writes the posted values into its instance while it validates
    form = ProjectSettingsForm(request.POST, instance=Project.objects.get(pk=project.pk))
    if not form.is_valid():
        return render(request, SETTINGS, _settings_context(request, form=form), status=422)
    changes = {name: form.cleaned_data[name] for name in form.changed_data}
    project_settings_update(project=project, user=request.user, **changes)
    messages.success(request, "Settings saved." if changes else "Nothing changed.")
    return redirect("annotations:project_settings", slug=slug)


def _settings_url(request: HtmxHttpRequest, slug: str, *args, **kwargs) -> str:
    return reverse("annotations:project_settings", kwargs={"slug": slug})


def _member_refused(request: HtmxHttpRequest, slug: str, *, error, status: int) -> HttpResponse:
    member_form = MemberForm(request.POST)
    member_form.is_valid()
    form_error(member_form, error)
    return render(request, SETTINGS, _settings_context(request, member_form=member_form), status=status)


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(form_page=_member_refused)
def project_member_save(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """Add a member, or change a member's role (the same form, per row or at the bottom)."""
    form = MemberForm(request.POST)
    if not form.is_valid():
        return render(request, SETTINGS, _settings_context(request, member_form=form), status=422)
    m = project_member_set(
        project=request.project,
        actor=request.user,
        username=form.cleaned_data["username"],
        role=form.cleaned_data["role"],
    )
    messages.success(request, f"{m.user.username} is now {m.get_role_display().lower()} in {request.project.name}.")
    return redirect("annotations:project_settings", slug=slug)


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(back=_settings_url)
def project_member_delete(request: HtmxHttpRequest, slug: str, user_id: int) -> HttpResponse:
    project_member_remove(project=request.project, actor=request.user, user_id=user_id)
    messages.success(request, "Member removed.")
    return redirect("annotations:project_settings", slug=slug)


# --- exports ---------------------------------------------------------------------------


def _export_jobs(project):
    return with_wait_reasons(list(jobs_for(project=project, kinds=[BackgroundJob.Kind.EXPORT])))


def _exports_context(request: HtmxHttpRequest, form=None) -> dict:
    jobs = _export_jobs(request.project)
    return {
        "project": request.project,
        "jobs": jobs,
        "form": form or ExportStartForm(),
        "has_active": any(j.is_active for j in jobs),
        "has_model": request.project.model_versions.filter(is_active=True).exists(),
    }


@require_GET
@vary_on_headers("HX-Request")
@project_role_required(Role.ADMIN)
def project_exports(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    context = _exports_context(request)
    if request.htmx:
        return polled_fragment(request, f"{EXPORTS}#export-jobs", context, active=context["has_active"])
    return render(request, EXPORTS, context)


def _exports_url(request: HtmxHttpRequest, slug: str, *args, **kwargs) -> str:
    return reverse("annotations:project_exports", kwargs={"slug": slug})


@require_POST
@project_role_required(Role.ADMIN)
@service_errors(back=_exports_url)
def project_export_start(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    form = ExportStartForm(request.POST)
    if not form.is_valid():
        return render(request, EXPORTS, _exports_context(request, form), status=422)
    job = export_job_start(project=request.project, user=request.user, kind=form.cleaned_data["kind"])
    messages.success(request, f"{job.label} queued; the download link appears here when it is done.")
    return redirect("annotations:project_exports", slug=slug)


@require_GET
@project_role_required(Role.ADMIN)
@service_errors(back=_exports_url)
def project_export_download(request: HtmxHttpRequest, slug: str, job_id: int) -> HttpResponse:
    job = get_object_or_404(BackgroundJob, pk=job_id, project=request.project, kind=BackgroundJob.Kind.EXPORT)
    path, filename = export_file_for(job=job)
    content_type = "application/x-ndjson" if filename.endswith(".jsonl") else "application/gzip"
    return FileResponse(open(path, "rb"), as_attachment=True, filename=filename, content_type=content_type)
