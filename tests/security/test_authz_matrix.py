"""Authorization matrix generated from the URL conf: every route × method × role.

The expected access rule of each route lives in RULES below. The test walks
``get_resolver()``; a route without a row fails, so a new route needs a rule before it
ships. Each route is requested with GET and POST by anonymous, annotator, reviewer,
admin and an outsider (admin of another project) against real fixture ids:

- allowed: anything but an auth denial, a 405 or a 5xx (a 409/422 for a body the action
  refuses is fine: the request got past the gate);
- denied: anonymous → 302 to the login page (HTML) / 401 (API), a member with a lower
  role → 403, a non-member → 404 (a project's existence is not revealed);
- a method the route does not list: never 2xx, never 5xx.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from security.conftest import build_world

from annotations.models import ROLE_RANK

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "annotator", "reviewer", "admin", "outsider")

PUBLIC, USER, ANN, REV, ADM, STAFF = "public", "user", "annotator", "reviewer", "admin", "staff"
SITE_STAFF = "site-staff"  # a staff user (none of the five roles): others get the styled 403
TOKEN_OWNER = "token-owner"  # the annotator who owns the token, or an admin of a project they belong to

# route name → ({method: rule}, url kwargs → world id key, POST body)
RULES: dict[str, tuple[dict[str, str], dict[str, str], dict]] = {
    "login": ({"GET": PUBLIC, "POST": PUBLIC}, {}, {"username": "nobody", "password": "wrong"}),
    "logout": ({"POST": PUBLIC}, {}, {}),  # always ends on the login page
    "api-schema": ({"GET": PUBLIC}, {}, {}),
    "api-docs": ({"GET": PUBLIC}, {}, {}),
    # --- HTML pages and actions ---
    "annotations:home": ({"GET": USER}, {}, {}),
    "annotations:project_dashboard": ({"GET": ANN}, {}, {}),
    "annotations:project_guidelines": ({"GET": ANN}, {}, {}),
    "annotations:item_import": ({"GET": ADM, "POST": ADM}, {}, {"split": "pool"}),
    "annotations:import_jobs": ({"GET": ADM}, {}, {}),
    "annotations:round_list": ({"GET": ANN}, {}, {}),
    "annotations:round_start": ({"POST": ADM}, {}, {"algorithm": "supervised", "config": "{}", "seed": "0"}),
    "annotations:round_detail": ({"GET": ANN}, {"round_id": "round"}, {}),
    "annotations:round_cancel": ({"POST": ADM}, {"round_id": "failed_round"}, {}),
    "annotations:model_version_activate": ({"POST": ADM}, {"version_id": "version"}, {}),
    "annotations:labeling_next": ({"GET": ANN, "POST": ANN}, {}, {"item": "{item}", "label": "harmful"}),
    "annotations:labeling_skip": ({"POST": ANN}, {}, {"item": "{item}"}),
    "annotations:labeling_undo": ({"POST": ANN}, {}, {}),
    "annotations:labeling_recent": ({"GET": ANN}, {}, {}),
    "annotations:review_queue": ({"GET": REV}, {}, {}),
    "annotations:prediction_review_bulk": ({"POST": REV}, {}, {}),
    "annotations:prediction_review_undo": ({"POST": REV}, {}, {}),
    "annotations:prediction_review": ({"POST": REV}, {"pk": "prediction"}, {"action": "skip"}),
    "annotations:prediction_similar": ({"GET": REV}, {"pk": "prediction"}, {}),
    "annotations:item_list": ({"GET": ANN}, {}, {}),
    "annotations:item_detail": ({"GET": ANN, "POST": ANN}, {"item_id": "item"}, {"label": "harmful"}),
    "annotations:item_similar": ({"GET": ANN}, {"item_id": "item"}, {}),
    "annotations:variant_list": ({"GET": REV}, {}, {}),
    "annotations:variant_review": ({"POST": REV}, {"pk": "variant"}, {"action": "bogus"}),
    "annotations:dashboard_stats": ({"GET": ANN}, {}, {}),
    "annotations:augment_page": ({"GET": REV}, {}, {}),
    "annotations:augment_start": ({"POST": ADM}, {}, {}),
    "annotations:adversarial_start": ({"POST": ADM}, {}, {}),
    "annotations:judge_labels_start": ({"POST": ADM}, {}, {}),
    "annotations:augment_job_detail": ({"GET": REV}, {"job_id": "augment_job"}, {}),
    "annotations:augment_job_resume": ({"POST": ADM}, {"job_id": "augment_job"}, {}),
    "annotations:augment_job_cancel": ({"POST": ADM}, {"job_id": "augment_job"}, {}),
    "annotations:adversarial_evaluate": ({"POST": ADM}, {"job_id": "adversarial_job"}, {}),
    "annotations:refine_page": ({"GET": REV}, {}, {}),
    "annotations:refine_start": ({"POST": ADM}, {}, {}),
    "annotations:seed_suggestion_start": ({"POST": ADM}, {}, {"n": "0"}),
    "annotations:refine_detail": ({"GET": REV}, {"job_id": "refine_job"}, {}),
    "annotations:refine_cancel": ({"POST": ADM}, {"job_id": "refine_job"}, {}),
    "annotations:token_list": ({"GET": USER, "POST": USER}, {}, {"name": "laptop"}),
    "annotations:token_revoke": ({"POST": TOKEN_OWNER}, {"token_id": "annotator_token"}, {}),
    "annotations:project_token_list": ({"GET": ADM, "POST": ADM}, {}, {"name": "ci"}),
    "annotations:project_new": ({"GET": SITE_STAFF, "POST": SITE_STAFF}, {}, {"name": "New one"}),
    "annotations:guidelines_preview": ({"POST": USER}, {}, {"guidelines": "# Hi"}),
    "annotations:project_settings": ({"GET": ADM, "POST": ADM}, {}, {}),
    "annotations:project_member_save": ({"POST": ADM}, {}, {"username": "nobody", "role": "annotator"}),
    "annotations:project_member_delete": ({"POST": ADM}, {"user_id": "admin_user"}, {}),
    "annotations:project_exports": ({"GET": ADM}, {}, {}),
    "annotations:project_export_start": ({"POST": ADM}, {}, {"kind": "nonsense"}),
    "annotations:project_export_download": ({"GET": ADM}, {"job_id": "export_job"}, {}),
    # --- JSON API ---
    "annotations-api:projects-list": ({"GET": USER}, {}, {}),
    "annotations-api:projects-detail": ({"GET": ANN}, {}, {}),
    "annotations-api:items-list": ({"GET": ANN}, {}, {}),
    "annotations-api:items-detail": ({"GET": ANN}, {"pk": "item"}, {}),
    "annotations-api:annotation-create": ({"POST": ANN}, {"item_id": "item"}, {"label": "harmful"}),
    "annotations-api:annotation-undo": ({"POST": ANN}, {}, {}),
    "annotations-api:seed-suggestion-start": ({"POST": ADM}, {}, {"n": 0}),
    "annotations-api:training-rounds-list": ({"GET": ANN}, {}, {}),
    "annotations-api:training-round-start": ({"POST": ADM}, {}, {"algorithm": "supervised"}),
    "annotations-api:training-rounds-detail": ({"GET": ANN}, {"pk": "round"}, {}),
    "annotations-api:training-round-cancel": ({"POST": ADM}, {"round_id": "failed_round"}, {}),
    "annotations-api:predictions-list": ({"GET": REV}, {"round_id": "round"}, {}),
    "annotations-api:predictions-detail": ({"GET": REV}, {"round_id": "round", "pk": "prediction"}, {}),
    "annotations-api:prediction-review": ({"POST": REV}, {"prediction_id": "prediction"}, {"action": "approve"}),
    "annotations-api:variants-list": ({"GET": REV}, {}, {}),
    "annotations-api:variants-detail": ({"GET": REV}, {"pk": "variant"}, {}),
    "annotations-api:variant-approve": ({"POST": REV}, {"variant_id": "variant"}, {}),
    "annotations-api:variant-reject": ({"POST": REV}, {"variant_id": "variant"}, {"reason": "gibberish"}),
    "annotations-api:model-versions-list": ({"GET": ANN}, {}, {}),
    "annotations-api:model-versions-detail": ({"GET": ANN}, {"pk": "version"}, {}),
    "annotations-api:model-version-activate": ({"POST": ADM}, {"version_id": "version"}, {}),
    "annotations-api:exports-list": ({"GET": ADM}, {}, {}),
    "annotations-api:export-start": ({"POST": ADM}, {}, {"kind": "labels_jsonl"}),
    "annotations-api:exports-detail": ({"GET": ADM}, {"pk": "export_job"}, {}),
    "annotations-api:export-download": ({"GET": ADM}, {"job_id": "export_job"}, {}),
    "annotations-api:tokens-list": ({"GET": USER}, {}, {}),
    "annotations-api:token-create": ({"POST": USER}, {}, {"name": "ci"}),
    "annotations-api:tokens-detail": ({"GET": TOKEN_OWNER}, {"pk": "annotator_token"}, {}),
    "annotations-api:token-revoke": ({"POST": TOKEN_OWNER}, {"token_id": "annotator_token"}, {}),
    "moderations": ({"POST": ANN}, {}, {"input": "hello there", "project": "safety"}),
}
# The Django admin: staff only (none of the five roles is staff); its login page is public and its
# logout only ends the caller's own session.
ADMIN_PUBLIC = {"admin:login", "admin:logout"}
ADMIN_KWARGS = {
    "app_label": "annotations",
    "object_id": "1",
    "content_type_id": "1",
    "id": "1",
    "url": "nowhere/",
    "model_name": "item",
}


def _walk(patterns, ns: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, ns + (f"{p.namespace}:" if p.namespace else ""))
        elif isinstance(p, URLPattern):
            yield ns + (p.name or ""), p


def all_routes() -> list[tuple[str, URLPattern]]:
    return list(_walk(get_resolver().url_patterns))


def _is_api(name: str) -> bool:
    return name.startswith("annotations-api:") or name == "moderations"


def _allowed(rule: str, role: str) -> bool:
    if rule == PUBLIC:
        return True
    if role == "anonymous" or rule in (STAFF, SITE_STAFF):
        return False
    if rule == USER:
        return True
    if rule == TOKEN_OWNER:
        return role in ("annotator", "admin")
    return role != "outsider" and ROLE_RANK[role] >= ROLE_RANK[rule]


def _denial(name: str, rule: str, role: str) -> set[int]:
    """The status codes a denied request may get."""
    if role == "anonymous":
        return {401} if _is_api(name) else {302}
    if rule == STAFF:
        return {302}
    if rule == SITE_STAFF:
        return {403}
    if rule in (TOKEN_OWNER, USER) or role == "outsider":
        return {404}
    return {403}


@pytest.fixture
def world(project, response_project, users, tiny_model_dir):
    return build_world(project, response_project, users, hostile=False, model_dir=tiny_model_dir)


def _client(users, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        client.force_login(users[role])
    return client


def test_every_route_has_a_rule():
    names = {name for name, _ in all_routes()}
    missing = {n for n in names if n not in RULES and not n.startswith("admin:")}
    assert not missing, f"routes without an authorization rule (add them to RULES): {sorted(missing)}"
    assert not set(RULES) - names, f"rules for routes that no longer exist: {sorted(set(RULES) - names)}"


def _fill(body: dict, ids: dict) -> dict:
    """``"{item}"``-style placeholders in a POST body replaced by world ids."""
    return {k: (ids[v[1:-1]] if isinstance(v, str) and v[1:-1] in ids and v[0] == "{" else v) for k, v in body.items()}


def _request(client: Client, name: str, method: str, url: str, body: dict, ids: dict):
    if method == "GET":
        return client.get(url)
    body = _fill(body, ids)
    if _is_api(name):
        return client.post(url, body, content_type="application/json")
    return client.post(url, body)


def test_route_role_matrix(world, users):
    ids = world.ids
    failures = []
    clients = {role: _client(users, role) for role in ROLES}
    for name, pattern in all_routes():
        if name.startswith("admin:"):
            continue
        methods, kwarg_keys, body = RULES[name]
        kwargs = {}
        for key in pattern.pattern.converters:
            kwargs[key] = ids["slug"] if key == "slug" else ids[kwarg_keys[key]]
        url = reverse(name, kwargs=kwargs)
        for method in ("GET", "POST"):
            rule = methods.get(method)
            for role in ROLES:
                if name == "logout" and role != "anonymous":
                    clients[role] = _client(users, role)  # logging out ends the session; start a fresh one
                response = _request(clients[role], name, method, url, body, ids)
                status = response.status_code
                location = response.get("Location", "")
                if status >= 500:
                    failures.append((name, method, role, status, "server error"))
                elif rule is None:
                    if status < 300 and name != "login":
                        failures.append((name, method, role, status, "unlisted method succeeded"))
                elif _allowed(rule, role):
                    login_redirect = status == 302 and "/accounts/login/" in location and name != "logout"
                    if status in (401, 403, 404, 405) or login_redirect:
                        failures.append((name, method, role, status, "should be allowed"))
                else:
                    if status not in _denial(name, rule, role):
                        failures.append((name, method, role, status, f"should be denied {_denial(name, rule, role)}"))
                    elif status == 302 and "login" not in location:
                        failures.append((name, method, role, status, f"redirects to {location}, not the login"))
                if name == "logout" and role != "anonymous":
                    clients[role] = _client(users, role)
    assert not failures, "\n".join(map(str, failures))


def test_admin_site_is_staff_only(db, users, make_user):
    """Every Django-admin route redirects the five roles (none is staff) to the admin login."""
    failures = []
    clients = {role: _client(users, role) for role in ROLES}
    for name, pattern in all_routes():
        if not name.startswith("admin:") or name in ADMIN_PUBLIC:
            continue
        keys = getattr(pattern.pattern, "converters", {}) or pattern.pattern.regex.groupindex
        # The unnamed catch-all (``admin:``) is reached through any unknown admin path.
        url = reverse(name, kwargs={k: ADMIN_KWARGS[k] for k in keys}) if name != "admin:" else "/admin/nowhere/"
        for method in ("GET", "POST"):
            for role in ROLES:
                response = getattr(clients[role], method.lower())(url)
                if response.status_code != 302 or "/admin/login/" not in response["Location"]:
                    failures.append((name, method, role, response.status_code, response.get("Location")))
    assert not failures, "\n".join(map(str, failures))
    staff = make_user("staffer", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize(
    "name",
    [
        "annotations:labeling_next",
        "annotations:round_start",
        "annotations:token_list",
        "annotations-api:token-create",
        "annotations-api:training-round-start",
    ],
)
def test_session_posts_need_a_csrf_token(world, users, name):
    """Browser-session POSTs without the CSRF token are refused (HTML and session-authenticated API)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["admin"])
    url = reverse(name, kwargs={"slug": "safety"} if "<slug" in str(dict(all_routes())[name].pattern) else {})
    body = _fill(RULES[name][2], world.ids)
    kwargs = {"content_type": "application/json"} if _is_api(name) else {}
    response = client.post(url, body, **kwargs)
    assert response.status_code == 403
