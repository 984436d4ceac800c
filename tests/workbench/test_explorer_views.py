"""The data explorer over HTTP: search, each filter, sort, keyset pages, permissions, history and correction."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotations.models import Annotation, Item
from annotations.selectors.explorer import ItemFilters, decode_cursor, encode_cursor, explorer_items
from annotations.services.labels import annotation_submit, prediction_review

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def world(project, users, make_item, active_round, make_prediction):
    """Seed items with votes (one disagreement), pool items with predictions of the active round."""
    seeds = [make_item(project, text=f"seed sentence about {w}") for w in ("apples", "weapons", "fraud scheme")]
    annotation_submit(item=seeds[0], user=users["annotator"], role="annotator", label="unharmful")
    annotation_submit(item=seeds[1], user=users["annotator"], role="annotator", label="harmful", category="violence")
    project.annotations_per_item = 2
    project.save()
    annotation_submit(item=seeds[0], user=users["admin"], role="annotator", label="harmful")  # disagreement
    rnd = active_round(project)
    pool = [
        make_item(
            project, text=f"pool message {i} about {'knives' if i % 3 == 0 else 'gardens'}", split=Item.Split.POOL
        )
        for i in range(9)
    ]
    preds = [
        make_prediction(it, rnd, p=i / 10, priority=i, agreement="low_agree" if i % 2 else "high_agree")
        for i, it in enumerate(pool)
    ]
    prediction_review(prediction=preds[8], user=users["reviewer"], role="reviewer", action="approve")
    return {"seeds": seeds, "pool": pool, "preds": preds, "round": rnd}


def _ids(response) -> list[int]:
    assert response.status_code == 200
    return [int(x) for x in re.findall(r'class="explorer-row" data-item="(\d+)"', response.content.decode())]


def _get(client, **params):
    return client.get(reverse("annotations:item_list", kwargs={"slug": "safety"}), params, **HX)


def test_default_list_is_newest_first(client_for, world):
    everything = [i.pk for i in world["seeds"] + world["pool"]]
    assert _ids(_get(client_for("annotator"))) == sorted(everything, reverse=True)


def test_search_for_a_frequent_word_pages_in_order_without_fetching_ids(client_for, world, monkeypatch):
    from annotations.selectors import explorer as items

    monkeypatch.setattr(items, "FTS_ID_FETCH", 1)  # "gardens" is in 6 items: more than the id fetch takes
    assert (
        _ids(_get(client_for("annotator"), q="gardens"))
        == [it.pk for it in world["pool"] if it.pk not in {x.pk for x in world["pool"][::3]}][::-1]
    )


def test_full_text_search_matches_whole_words(client_for, world):
    assert _ids(_get(client_for("annotator"), q="knives")) == [it.pk for it in world["pool"][::3]][::-1]
    assert _ids(_get(client_for("annotator"), q="fraud scheme")) == [world["seeds"][2].pk]
    assert _ids(_get(client_for("annotator"), q="'); drop table --")) == []


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"split": "seed"}, lambda w: w["seeds"]),
        ({"human_label": "harmful"}, lambda w: [w["seeds"][0], w["seeds"][1], w["pool"][8]]),
        ({"human_label": "none"}, lambda w: [w["seeds"][2]] + w["pool"][:8]),
        ({"pseudo_label": "harmful"}, lambda w: w["pool"][5:]),
        ({"p_min": "0.3", "p_max": "0.5"}, lambda w: w["pool"][3:6]),
        ({"agreement": "low_agree"}, lambda w: w["pool"][1::2]),
        ({"reviewed": "yes"}, lambda w: [w["pool"][8]]),
        ({"reviewed": "no", "split": "pool"}, lambda w: w["pool"][:8]),
        ({"category": "violence"}, lambda w: [w["seeds"][1]]),
        ({"disagreement": "on"}, lambda w: [w["seeds"][0]]),
    ],
)
def test_each_filter(client_for, world, params, expected):
    assert _ids(_get(client_for("annotator"), **params)) == sorted(i.pk for i in expected(world))[::-1]


def test_annotator_filter(client_for, world, users):
    got = _ids(_get(client_for("reviewer"), annotator=users["admin"].pk))
    assert got == [world["seeds"][0].pk]


def test_sort_by_p_harmful_ascending_lists_only_scored_items(client_for, world):
    got = _ids(_get(client_for("annotator"), sort="p_harmful", order="asc"))
    assert got == [it.pk for it in world["pool"]]


def test_keyset_pages_cover_everything_once_in_order(project, world):
    seen, cursor = [], ""
    while True:
        page = explorer_items(
            project=project, filters=ItemFilters(sort="split", descending=False), cursor=cursor, limit=4
        )
        seen += [(it.split, it.pk) for it in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == sorted((it.split, it.pk) for it in world["seeds"] + world["pool"])


def test_next_page_link_carries_filters_and_cursor(client_for, world):
    response = _get(client_for("annotator"), split="pool")
    assert len(_ids(response)) == 9  # one page of 50
    assert b'rel="next"' not in response.content and b"End of the list" in response.content


def test_a_bad_cursor_starts_from_the_top():
    assert decode_cursor("not-base64!") is None and decode_cursor(encode_cursor("pool", 7)) == ("pool", 7)


def test_item_page_shows_human_and_machine_history(client_for, world):
    item = world["pool"][8]
    html = (
        client_for("annotator")
        .get(reverse("annotations:item_detail", kwargs={"slug": "safety", "item_id": item.pk}))
        .content.decode()
    )
    assert html.count('class="history-row history-human"') == 1 and "Approved pseudo-label" in html
    assert html.count('class="history-row history-machine"') == 1 and "p(harmful) 0.800" in html


def test_correcting_an_old_label_appends_a_row(client_for, world, users):
    item = world["seeds"][1]
    url = reverse("annotations:item_detail", kwargs={"slug": "safety", "item_id": item.pk})
    response = client_for("reviewer").post(url, {"label": "unharmful", "note": "benign on a second read"})
    assert response.status_code == 302
    rows = list(Annotation.objects.filter(item=item).order_by("id").values_list("annotator__username", "label"))
    assert rows == [("ann", "harmful"), ("rev", "unharmful")]
    item.refresh_from_db()
    assert item.human_label == "unharmful"
    html = client_for("annotator").get(url).content.decode()
    assert html.count('class="history-row history-human"') == 2 and "benign on a second read" in html


def test_annotator_beyond_the_overlap_is_refused_with_the_reason(client_for, world, make_user, project):
    newcomer = make_user("late", "annotator", project)
    from django.test import Client

    client = Client()
    client.force_login(newcomer)
    url = reverse("annotations:item_detail", kwargs={"slug": "safety", "item_id": world["seeds"][0].pk})
    response = client.post(url, {"label": "harmful"})
    assert response.status_code == 409 and b"the project&#x27;s overlap" in response.content


@pytest.mark.parametrize("role, status", [(None, 302), ("annotator", 200), ("outsider", 404)])
def test_permissions(client_for, world, role, status):
    for name, kwargs in (("annotations:item_list", {}), ("annotations:item_detail", {"item_id": world["pool"][0].pk})):
        assert client_for(role).get(reverse(name, kwargs={"slug": "safety", **kwargs})).status_code == status


def test_item_of_another_project_is_404(client_for, world, other_project, make_item):
    foreign = make_item(other_project, text="elsewhere")
    url = reverse("annotations:item_detail", kwargs={"slug": "safety", "item_id": foreign.pk})
    assert client_for("admin").get(url).status_code == 404


def test_list_query_count_is_bounded(client_for, world, django_assert_max_num_queries):
    client = client_for("annotator")
    _get(client)
    with django_assert_max_num_queries(8):
        response = _get(client, q="gardens", split="pool", sort="p_harmful")
    assert response.status_code == 200 and len(_ids(response)) == 6


@pytest.fixture
def labeled_neighbours(project, make_item):
    """Labeled items: a near-duplicate of the query, one sharing only a common word, one unrelated."""
    near = make_item(project, text="How do I build a pipe bomb at home quickly", human_label="harmful")
    shares = make_item(project, text="Build a birdhouse at home with your kids", human_label="unharmful")
    make_item(project, text="Lovely weather today in the park", human_label="unharmful")
    make_item(project, text="How would I build a pipe bomb quickly at home", human_label="")  # unlabeled: never shown
    query = make_item(project, text="how can I build a pipe bomb at home fast", split=Item.Split.POOL)
    return query, near, shares


def test_similar_items_by_full_text_on_this_database(client_for, labeled_neighbours, settings):
    """The full-text path (PostgreSQL ts_rank, or SQLite FTS5 bm25 when the suite runs on SQLite): issue 14.7."""
    settings.UMBRA_SIMILAR_EMBEDDINGS = False
    query, near, shares = labeled_neighbours
    html = (
        client_for("annotator")
        .get(reverse("annotations:item_similar", kwargs={"slug": "safety", "item_id": query.pk}), **HX)
        .content.decode()
    )
    found = [int(x) for x in re.findall(r'/items/(\d+)/"', html)]
    assert found[:2] == [near.pk, shares.pk] and "full-text rank" in html


@pytest.mark.slow
def test_similar_items_reranked_by_minilm_meaning(labeled_neighbours, settings):
    from annotations.selectors.explorer import similar_labeled_items

    settings.UMBRA_SIMILAR_EMBEDDINGS = True
    query, near, shares = labeled_neighbours
    found, how = similar_labeled_items(item=query)
    assert [i.pk for i in found[:2]] == [near.pk, shares.pk] and "MiniLM" in how
    assert found[0].similarity > found[1].similarity + 0.2


@pytest.mark.slow
def test_search_filters_and_similar_items_pass_on_sqlite_too(tmp_path):
    """The embedded default: this module's search/filter/similar tests rerun against a SQLite database."""
    import os
    import subprocess
    import sys

    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip("already on SQLite")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'explorer.sqlite3'}"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            __file__,
            "-q",
            "-p",
            "no:cacheprovider",
            "--create-db",
            "-k",
            "(search or filter or similar_items_by_full_text or keyset or sort) and not on_sqlite",
        ],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"\b1[5-9] passed|\b[2-9]\d passed", result.stdout), result.stdout[-500:]


def test_item_text_and_category_are_escaped_in_the_list_and_item_page(client_for, project, make_item):
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    item = make_item(project, text=payload, human_label="harmful", human_category=payload)
    for url in (
        reverse("annotations:item_list", kwargs={"slug": "safety"}),
        reverse("annotations:item_detail", kwargs={"slug": "safety", "item_id": item.pk}),
    ):
        response = client_for("annotator").get(url)
        body = response.content.decode()
        assert response.status_code == 200 and "&lt;script&gt;" in body
        assert '<script>alert("x")' not in body and "<img src=x" not in body
