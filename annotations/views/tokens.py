"""API token pages: everyone manages their own tokens; project admins manage their members' tokens."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from annotations.errors import ApplicationError
from annotations.forms.tokens import MemberTokenCreateForm, TokenCreateForm
from annotations.models import Role
from annotations.permissions import project_role_required
from annotations.queries.api import tokens_visible_to
from annotations.services.tokens import api_token_create, api_token_revoke
from annotations.views.common import HtmxHttpRequest


@require_http_methods(["GET", "POST"])
@login_required
def token_list(request: HtmxHttpRequest):
    form = TokenCreateForm(request.POST or None)
    issued = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                issued = api_token_create(user=request.user, name=form.cleaned_data["name"], created_by=request.user)
                form = TokenCreateForm()
            except ApplicationError as exc:
                form.add_error(None, exc.message)
        if issued is None:
            status = 422
    tokens = tokens_visible_to(user=request.user).filter(user=request.user)
    return render(request, "annotations/tokens.html", {"form": form, "issued": issued, "tokens": tokens},
                  status=status)


@require_http_methods(["GET", "POST"])
@project_role_required(Role.ADMIN)
def project_token_list(request: HtmxHttpRequest, slug: str):
    project = request.project
    members = get_user_model().objects.filter(memberships__project=project, is_active=True).order_by("username")
    form = MemberTokenCreateForm(request.POST or None, members=members)
    issued = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                issued = api_token_create(user=form.cleaned_data["user"], name=form.cleaned_data["name"],
                                          created_by=request.user)
                form = MemberTokenCreateForm(members=members)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
        if issued is None:
            status = 422
    tokens = tokens_visible_to(user=request.user, project=project)
    return render(request, "annotations/project_tokens.html",
                  {"project": project, "form": form, "issued": issued, "tokens": tokens}, status=status)


@require_POST
@login_required
def token_revoke(request: HtmxHttpRequest, token_id: int):
    token = get_object_or_404(tokens_visible_to(user=request.user), pk=token_id)
    try:
        api_token_revoke(token=token, user=request.user)
        messages.success(request, f"Token “{token.name}” ({token.prefix}…) revoked.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "annotations:token_list"
    return redirect(target)
