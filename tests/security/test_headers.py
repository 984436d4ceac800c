"""Security headers on every response, and the cookie/transport settings of production mode."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse
from security.conftest import build_world
from security.test_authz_matrix import RULES, all_routes
from test_settings import PROD, run_manage

pytestmark = pytest.mark.django_db


def _script_src(policy: str) -> str:
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in policy.split(";") if d.strip())
    return directives.get("script-src", directives.get("default-src", ""))


def test_every_html_page_has_a_strict_csp_and_frame_denial(project, response_project, users):
    """GET every route as an admin: HTML responses carry CSP without inline script, and XFO DENY."""
    world = build_world(project, response_project, users, hostile=True)
    client = Client()
    client.force_login(users["admin"])
    checked = 0
    for name, pattern in all_routes():
        if name.startswith("admin:") or "GET" not in RULES[name][0]:
            continue
        kwargs = {
            k: world.ids["slug"] if k == "slug" else world.ids[RULES[name][1][k]] for k in pattern.pattern.converters
        }
        for extra in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = client.get(reverse(name, kwargs=kwargs), **extra)
            assert response.status_code < 500, name
            policy = response.get("Content-Security-Policy", "")
            assert policy, f"{name}: no Content-Security-Policy"
            script_src = _script_src(policy)
            assert "'self'" in script_src and "unsafe-inline" not in script_src and "unsafe-eval" not in script_src
            assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
            assert response["X-Frame-Options"] == "DENY", name
            assert response["X-Content-Type-Options"] == "nosniff", name
            if response["Content-Type"].startswith("text/html"):
                checked += 1
                body = response.content.decode()
                # The app's own markup: no inline script and no style="" (the CSP would block them anyway).
                assert "<script>" not in body.replace("&lt;script&gt;", ""), name
    assert checked >= 30


def test_production_settings_make_cookies_secure_and_redirect_to_https():
    code = (
        "import json; from django.conf import settings as s; print(json.dumps({k: getattr(s, k) for k in "
        "['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SECURE_SSL_REDIRECT', "
        "'SECURE_HSTS_SECONDS', 'X_FRAME_OPTIONS', 'SECURE_CONTENT_TYPE_NOSNIFF', 'DEBUG']}))"
    )
    result = run_manage("shell", "-c", code, env=PROD)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "DEBUG": False,
    }


def test_static_files_carry_the_csp_and_frame_denial_too(client):
    """Issue 15, defect 13: WhiteNoise answered static files before the CSP / X-Frame-Options middleware."""
    response = client.get("/static/css/umbra.css")
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY" and response["X-Content-Type-Options"] == "nosniff"
