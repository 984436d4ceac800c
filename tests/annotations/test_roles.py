"""Role enforcement: a table of URL × role → expected status, for every page that exists."""

import pytest
from django.urls import reverse

ROLES = ["anonymous", "annotator", "reviewer", "admin", "outsider"]

# expected status per role, in ROLES order. 302 = redirect to login; 404 = not a member.
PAGES = [
    ("annotations:home", {}, [302, 200, 200, 200, 200]),
    ("annotations:project_dashboard", {"slug": "safety"}, [302, 200, 200, 200, 404]),
    ("annotations:project_guidelines", {"slug": "safety"}, [302, 200, 200, 200, 404]),
    ("annotations:item_import", {"slug": "safety"}, [302, 403, 403, 200, 404]),
    ("annotations:import_jobs", {"slug": "safety"}, [302, 403, 403, 200, 404]),
]


@pytest.mark.django_db
@pytest.mark.parametrize("name, kwargs, expected", PAGES, ids=[p[0] for p in PAGES])
def test_page_role_matrix(client_for, name, kwargs, expected):
    url = reverse(name, kwargs=kwargs)
    got = [client_for(None if role == "anonymous" else role).get(url).status_code for role in ROLES]
    assert got == expected


@pytest.mark.django_db
def test_import_upload_is_admin_only_and_queues_a_job(client_for, project, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from annotations.models import BackgroundJob

    url = reverse("annotations:item_import", kwargs={"slug": "safety"})
    upload = SimpleUploadedFile("items.jsonl", b'{"text": "hello"}\n')
    assert client_for("reviewer").post(url, {"file": upload, "split": "pool"}).status_code == 403
    upload = SimpleUploadedFile("items.jsonl", b'{"text": "hello"}\n')
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_for("admin").post(url, {"file": upload, "split": "pool"})
    assert response.status_code == 302
    job = BackgroundJob.objects.get()
    assert job.kind == "import" and job.params["name"] == "items.jsonl" and len(callbacks) == 1
