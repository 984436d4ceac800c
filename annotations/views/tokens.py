"""API token pages: everyone manages their own tokens; project admins manage their members' tokens."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from annotations.forms.tokens import MemberTokenCreateForm, TokenCreateForm
from annotations.models import Role
from annotations.permissions import project_role_required
from annotations.selectors.tokens import tokens_visible_to
from annotations.services.tokens import api_token_create, api_token_revoke
from annotations.views.common import HtmxHttpRequest
from annotations.views.errors import form_error, service_errors


def _own_tokens_page(request: HtmxHttpRequest, form: TokenCreateForm, issued=None, status: int = 200):
    tokens = tokens_visible_to(user=request.user).filter(user=request.user)
    return render(request, "annotations/tokens.html", {"form": form, "issued": issued, "tokens": tokens}, status=status)


def _own_token_refused(request: HtmxHttpRequest, *, error, status: int):
    form = TokenCreateForm(request.POST)
    form.is_valid()
    form_error(form, error)
    return _own_tokens_page(request, form, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@service_errors(form_page=_own_token_refused)
def token_list(request: HtmxHttpRequest):
    form = TokenCreateForm(request.POST or None)
    if request.method != "POST":
        return _own_tokens_page(request, form)
    if not form.is_valid():
        return _own_tokens_page(request, form, status=422)
    d = form.cleaned_data
    issued = api_token_create(
        user=request.user,
        name=d["name"],
        created_by=request.user,
        expires_in_days=d.get("expires_in_days"),
        scope=d["scope"],
    )
    return _own_tokens_page(request, TokenCreateForm(), issued=issued)


def _members(project):
    return get_user_model().objects.filter(memberships__project=project, is_active=True).order_by("username")


def _project_tokens_page(request: HtmxHttpRequest, form, issued=None, status: int = 200):
    tokens = tokens_visible_to(user=request.user, project=request.project)
    return render(
        request,
        "annotations/project_tokens.html",
        {"project": request.project, "form": form, "issued": issued, "tokens": tokens},
        status=status,
    )


def _project_token_refused(request: HtmxHttpRequest, slug: str, *, error, status: int):
    form = MemberTokenCreateForm(request.POST, members=_members(request.project))
    form.is_valid()
    form_error(form, error)
    return _project_tokens_page(request, form, status=status)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
@service_errors(form_page=_project_token_refused)
def project_token_list(request: HtmxHttpRequest, slug: str):
    members = _members(request.project)
    form = MemberTokenCreateForm(request.POST or None, members=members)
    if request.method != "POST":
        return _project_tokens_page(request, form)
    if not form.is_valid():
        return _project_tokens_page(request, form, status=422)
    d = form.cleaned_data
    issued = api_token_create(
        user=d["user"],
        name=d["name"],
        created_by=request.user,
        expires_in_days=d.get("expires_in_days"),
        scope=d["scope"],
    )
    return _project_tokens_page(request, MemberTokenCreateForm(members=members), issued=issued)


def _back_to_tokens(request: HtmxHttpRequest, *args, **kwargs) -> str:
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return reverse("annotations:token_list")
    return target


@require_POST
@login_required
@service_errors(back=_back_to_tokens)
def token_revoke(request: HtmxHttpRequest, token_id: int):
    token = get_object_or_404(tokens_visible_to(user=request.user), pk=token_id)
    api_token_revoke(token=token, user=request.user)
    messages.success(request, f"Token “{token.name}” ({token.prefix}…) revoked.")
    return redirect(_back_to_tokens(request))
