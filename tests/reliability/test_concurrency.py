"""Many people at once against a live server on loopback, each with their own HTTP session.

20 annotators/reviewers label 1,000 seed items through the real labeling page (GET the
card, POST the label over htmx and get the next card): no item is handed to two people,
no label is lost or doubled, the counts add up exactly. A double-clicked submit is stored
once; two admins pressing "start round" at the same moment create one round.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.test import Client

from annotations.models import Annotation, Item, Role, TrainingRound
from annotations.services.hashing import content_hash

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

N_ITEMS = 1000
N_PEOPLE = 20
ITEM_RE = re.compile(r'data-item="(\d+)"')
TOKEN_RE = re.compile(r'name="client_token" value="([0-9a-f]*)"')


@pytest.fixture(autouse=True)
def _hosts(settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]


def _session(live_server, user) -> requests.Session:
    client = Client()
    client.force_login(user)
    session = requests.Session()
    session.cookies.set("sessionid", client.cookies["sessionid"].value)
    session.get(f"{live_server.url}/p/safety/label/", timeout=60)  # sets the CSRF cookie
    session.headers["X-CSRFToken"] = session.cookies["csrftoken"]
    return session


def _card(html: str) -> tuple[int | None, str]:
    item, token = ITEM_RE.search(html), TOKEN_RE.search(html)
    return (int(item.group(1)) if item else None), (token.group(1) if token else "")


def test_twenty_people_label_a_thousand_items_exactly_once(live_server, project, make_user):
    Item.objects.bulk_create(
        [
            Item(
                project=project,
                text=f"concurrent item {i}",
                split=Item.Split.SEED,
                content_hash=content_hash(f"concurrent item {i}", ""),
            )
            for i in range(N_ITEMS)
        ]
    )
    people = [make_user(f"worker{i}", Role.REVIEWER if i % 2 else Role.ANNOTATOR, project) for i in range(N_PEOPLE)]
    sessions = [_session(live_server, user) for user in people]
    url = f"{live_server.url}/p/safety/label/"
    start = threading.Barrier(N_PEOPLE)

    def work(session: requests.Session) -> dict:
        handed, errors = [], []
        start.wait()
        item, token = _card(session.get(url, headers={"HX-Request": "true"}, timeout=60).text)
        while item is not None:
            handed.append(item)
            label = "harmful" if item % 2 else "unharmful"
            response = session.post(
                url, {"item": item, "label": label, "client_token": token}, headers={"HX-Request": "true"}, timeout=60
            )
            if response.status_code != 200:
                errors.append((item, response.status_code, response.text[:200]))
                break
            item, token = _card(response.text)
        return {"handed": handed, "errors": errors}

    with ThreadPoolExecutor(N_PEOPLE) as pool:
        results = list(pool.map(work, sessions))

    assert [r["errors"] for r in results if r["errors"]] == []
    handed = Counter(i for r in results for i in r["handed"])
    assert len(handed) == N_ITEMS and max(handed.values()) == 1, "an item was handed to two people"
    assert sum(len(r["handed"]) for r in results) == N_ITEMS
    assert sum(1 for r in results if r["handed"]) >= N_PEOPLE // 2  # the work really was shared
    labels = Annotation.objects.filter(item__project=project, kind=Annotation.Kind.LABEL)
    assert labels.count() == N_ITEMS
    assert labels.values("item").distinct().count() == N_ITEMS
    items = Item.objects.filter(project=project, split=Item.Split.SEED)
    assert items.filter(annotation_count=1).count() == N_ITEMS
    assert items.filter(human_label="harmful").count() == len([i for i in handed if i % 2])
    assert items.filter(human_label="unharmful").count() == len([i for i in handed if not i % 2])


def test_double_clicked_submit_is_stored_once(live_server, project, users, make_user):
    Item.objects.create(
        project=project, text="double click me", split=Item.Split.SEED, content_hash=content_hash("double click me", "")
    )
    session = _session(live_server, users["annotator"])
    url = f"{live_server.url}/p/safety/label/"
    item, token = _card(session.get(url, timeout=60).text)
    body = {"item": item, "label": "harmful", "client_token": token}
    clicks = threading.Barrier(4)

    def click(_):
        clicks.wait()
        return session.post(url, body, headers={"HX-Request": "true"}, timeout=60).status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(click, range(4)))
    assert all(s in (200, 422) for s in statuses), statuses
    assert Annotation.objects.filter(item_id=item, kind=Annotation.Kind.LABEL).count() == 1
    assert Item.objects.get(pk=item).annotation_count == 1


def test_two_admins_starting_a_round_at_once_create_one_round(live_server, project, users, make_user):
    import io

    from annotations.services.imports import items_import

    items_import(
        project=project,
        fmt="jsonl",
        stream=io.BytesIO(
            b'{"text": "how to make a bomb", "label": "harmful"}\n{"text": "bake a cake", "label": "unharmful"}\n'
            b'{"text": "pool text"}\n'
        ),
        split=Item.Split.SEED,
    )
    admins = [users["admin"], make_user("second-admin", Role.ADMIN, project)]
    sessions = [_session(live_server, admin) for admin in admins]
    url = f"{live_server.url}/p/safety/rounds/start/"
    go = threading.Barrier(len(sessions))

    def press(session):
        go.wait()
        return session.post(
            url, {"algorithm": "supervised", "config": "{}", "seed": "0"}, allow_redirects=False, timeout=60
        )

    with ThreadPoolExecutor(len(sessions)) as pool:
        responses = list(pool.map(press, sessions))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [302, 409], statuses  # one queued (redirect to the list), one refused
    refused = next(r for r in responses if r.status_code == 409)
    created = TrainingRound.objects.get(project=project)
    assert f"Round #{created.number} is queued, waiting for a worker; only one round" in refused.text
    assert TrainingRound.objects.filter(project=project).count() == 1


def test_twenty_annotators_on_five_items_over_the_api_respect_the_overlap(live_server, project, make_user):
    """Issue 15, defect 4: with a cap of 2, 20 annotators got 100 x 201 and 20 rows per item."""
    from annotations.services.tokens import api_token_create

    project.annotations_per_item = 2
    project.save(update_fields=["annotations_per_item"])
    items = [
        Item.objects.create(
            project=project,
            text=f"overlap item {i}",
            split=Item.Split.SEED,
            content_hash=content_hash(f"overlap item {i}", ""),
        )
        for i in range(5)
    ]
    people = [make_user(f"api-annotator{i}", Role.ANNOTATOR, project) for i in range(20)]
    keys = [api_token_create(user=u, name="script", created_by=u).key for u in people]
    go = threading.Barrier(len(keys))

    def work(key: str) -> list[int]:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        go.wait()
        return [
            session.post(
                f"{live_server.url}/api/projects/safety/items/{item.pk}/annotations/",
                json={"label": "harmful"},
                timeout=60,
            ).status_code
            for item in items
        ]

    with ThreadPoolExecutor(len(keys)) as pool:
        statuses = Counter(s for r in pool.map(work, keys) for s in r)

    assert statuses == {201: 10, 409: 90}, statuses
    for item in items:
        assert Annotation.objects.filter(item=item, kind=Annotation.Kind.LABEL).count() == 2
        item.refresh_from_db()
        assert item.annotation_count == 2


def test_six_admins_starting_a_round_at_once_get_one_round_and_five_clear_409s(live_server, project, users, make_user):
    """Issue 14.3 under load: the API said 400 (README promises 409) and the message misnamed the state."""
    import io

    from annotations.services.imports import items_import
    from annotations.services.tokens import api_token_create

    items_import(
        project=project,
        fmt="jsonl",
        split=Item.Split.SEED,
        stream=io.BytesIO(
            b'{"text": "how to make a bomb", "label": "harmful"}\n{"text": "bake a cake", "label": "unharmful"}\n'
        ),
    )
    admins = [users["admin"], *[make_user(f"admin{i}", Role.ADMIN, project) for i in range(5)]]
    keys = [api_token_create(user=a, name="ci", created_by=a).key for a in admins]
    go = threading.Barrier(len(keys))

    def press(key: str) -> requests.Response:
        go.wait()
        return requests.post(
            f"{live_server.url}/api/projects/safety/rounds/start/",
            json={"algorithm": "supervised"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    with ThreadPoolExecutor(len(keys)) as pool:
        responses = list(pool.map(press, keys))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5
    created = TrainingRound.objects.get(project=project)
    for r in responses:
        if r.status_code == 409:
            assert r.json()["message"].startswith(f"Round #{created.number} is queued, waiting for a worker;")
