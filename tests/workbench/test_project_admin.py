"""The project run from the browser: create, settings, members, exports, guidelines preview (issue 14)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotations.models import BackgroundJob, Membership, Project, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_user):
    return make_user("lead", is_staff=True)


def _client(client, user):
    client.force_login(user)
    return client


def test_staff_creates_a_project_and_becomes_its_admin(client, staff):
    response = _client(client, staff).post(
        reverse("annotations:project_new"),
        {
            "name": "Chat safety",
            "slug": "",
            "task": "response",
            "categories": "violence\nfraud",
            "guidelines": "# Rules\n<script>alert(1)</script>",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/p/chat-safety/settings/"
    project = Project.objects.get(slug="chat-safety")
    assert (project.task, project.categories) == ("response", ["violence", "fraud"])
    assert Membership.objects.get(project=project, user=staff).role == Role.ADMIN
    guidelines = client.get(reverse("annotations:project_guidelines", args=["chat-safety"])).content.decode()
    assert "<script>alert(1)" not in guidelines and "<h1>Rules</h1>" in guidelines


def test_project_creation_errors_sit_next_to_their_field(client, staff, project):
    response = _client(client, staff).post(
        reverse("annotations:project_new"),
        {"name": "Again", "slug": project.slug, "task": "prompt", "categories": "\n".join(f"c{i}" for i in range(10))},
    )
    assert response.status_code == 422
    html = response.content.decode()
    categories = html.split('name="categories"', 1)[1].split('<div class="field', 1)[0]
    assert "At most 9 harm categories" in categories and html.count("At most 9 harm categories") == 1


def test_non_staff_cannot_create_projects(client_for, project, users):
    response = client_for("admin").post(reverse("annotations:project_new"), {"name": "x", "task": "prompt"})
    assert response.status_code == 403
    assert "Only site staff can create projects" in response.content.decode()
    assert not Project.objects.filter(name="x").exists()


def test_guidelines_preview_is_sanitised(client_for, project, users):
    response = client_for("annotator").post(
        reverse("annotations:guidelines_preview"),
        {"guidelines": "**bold** <img src=x onerror=alert(1)> [x](javascript:alert(1))"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>bold</strong>" in html and "<img" not in html and "javascript:" not in html


def test_admin_changes_settings_from_the_browser(client_for, project, users):
    """Issue 14.15: use_refined_labels could only be changed in Django admin."""
    client = client_for("admin")
    page = client.get(reverse("annotations:project_settings", args=[project.slug]))
    assert page.status_code == 200
    data = {
        "name": project.name,
        "categories": "violence\nfraud",
        "guidelines": project.guidelines,
        "annotations_per_item": "2",
        "min_labels_per_class": "30",
        "use_refined_labels": "on",
        "refined_label_weight": "0.3",
    }
    response = client.post(reverse("annotations:project_settings", args=[project.slug]), data)
    assert response.status_code == 302
    project.refresh_from_db()
    assert (
        project.annotations_per_item,
        project.min_labels_per_class,
        project.use_refined_labels,
        project.refined_label_weight,
        project.categories,
    ) == (2, 30, True, 0.3, ["violence", "fraud"])
    refine = client.get(reverse("annotations:refine_page", args=[project.slug])).content.decode()
    assert "is on (off)" not in refine and "feed the next SSL round as weighted pseudo-labels (weight 0.3)" in refine

    bad = client.post(
        reverse("annotations:project_settings", args=[project.slug]),
        {**data, "annotations_per_item": "12", "refined_label_weight": "3"},
    )
    assert bad.status_code == 422
    html = bad.content.decode()
    overlap = html.split('name="annotations_per_item"', 1)[1].split('<div class="field', 1)[0]
    assert "less than or equal to 9" in overlap
    project.refresh_from_db()
    assert project.annotations_per_item == 2


@pytest.mark.parametrize("role", ["annotator", "reviewer"])
def test_only_admins_change_settings_or_members(client_for, project, users, role):
    client = client_for(role)
    assert client.get(reverse("annotations:project_settings", args=[project.slug])).status_code == 403
    response = client.post(
        reverse("annotations:project_member_save", args=[project.slug]),
        {"username": users[role].username, "role": "admin"},
    )
    assert response.status_code == 403
    assert Membership.objects.get(project=project, user=users[role]).role == role


def test_admin_adds_changes_and_removes_members_but_keeps_one_admin(client_for, project, users, make_user):
    newcomer = make_user("newcomer")
    client = client_for("admin")
    url = reverse("annotations:project_member_save", args=[project.slug])
    assert client.post(url, {"username": "newcomer", "role": "reviewer"}).status_code == 302
    assert Membership.objects.get(project=project, user=newcomer).role == "reviewer"
    missing = client.post(url, {"username": "ghost", "role": "annotator"})
    assert missing.status_code == 422 and "No user called &#x27;ghost&#x27;" in missing.content.decode()
    demote = client.post(url, {"username": users["admin"].username, "role": "annotator"}, follow=True)
    assert "the project&#x27;s only admin" in demote.content.decode()
    assert Membership.objects.get(project=project, user=users["admin"]).role == "admin"
    remove = client.post(reverse("annotations:project_member_delete", args=[project.slug, newcomer.pk]))
    assert remove.status_code == 302 and not Membership.objects.filter(project=project, user=newcomer).exists()


def test_tokens_link_for_every_role(client_for, project, users):
    for role, href in (("annotator", "/tokens/"), ("reviewer", "/tokens/"), ("admin", f"/p/{project.slug}/tokens/")):
        html = client_for(role).get(reverse("annotations:project_dashboard", args=[project.slug])).content.decode()
        nav = html.split('class="project-nav"', 1)[1].split("</nav>", 1)[0]
        assert f'href="{href}">Tokens</a>' in nav, role


def test_export_buttons_start_a_job_and_link_the_download(
    client_for, project, users, settings, django_capture_on_commit_callbacks
):
    client = client_for("admin")
    page = client.get(reverse("annotations:project_exports", args=[project.slug])).content.decode()
    assert "Export labels (jsonl)" in page and "Export hugging face dataset" in page
    assert re.search(r"<button type=\"submit\" disabled[^>]*>Export active model", page)  # no model yet
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("annotations:project_export_start", args=[project.slug]), {"kind": "labels_jsonl"}
        )
    assert response.status_code == 302 and len(callbacks) == 1
    job = BackgroundJob.objects.get(kind="export")
    from annotations.services.label_exports import export_job_execute

    assert export_job_execute(job_id=job.pk) == "succeeded"
    page = client.get(reverse("annotations:project_exports", args=[project.slug])).content.decode()
    link = reverse("annotations:project_export_download", args=[project.slug, job.pk])
    assert f'href="{link}"' in page
    download = client.get(link)
    assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")


def test_export_job_reports_per_item_progress(project, users, make_item, monkeypatch):
    from annotations.selectors import labels as label_selectors
    from annotations.services import label_exports
    from annotations.services.jobs import JobProgress

    for i in range(5):
        make_item(project, text=f"export item {i}", human_label="harmful" if i % 2 else "unharmful")
    monkeypatch.setattr(label_selectors, "CHUNK", 2)
    seen = []
    real_update = JobProgress.update

    def spy(self, *, force=False, **progress):
        seen.append((progress.get("done"), progress.get("total")))
        return real_update(self, force=True, **progress)

    monkeypatch.setattr(JobProgress, "update", spy)
    job = label_exports.export_job_start(project=project, user=users["admin"], kind="labels_jsonl")
    assert label_exports.export_job_execute(job_id=job.pk) == "succeeded"
    assert seen[0] == (0, 5) and (5, 5) in seen and len([d for d, _ in seen if d]) >= 2
