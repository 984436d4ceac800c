"""Workbench pages over HTTP: role matrix, query counts, label/review/variant flows, escaping."""

from __future__ import annotations

import pytest
from django.urls import reverse

from annotations.models import Annotation, AugmentedVariant, Item, Role

ROLES = ["anonymous", "annotator", "reviewer", "admin", "outsider"]
HX = {"HTTP_HX_REQUEST": "true"}
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>\u202eRTL\u200b' + "x" * 3000


@pytest.fixture
def queue(project, users, make_item, active_round, make_prediction, make_variant):
    """Seed items, a pool with 25 predictions of an active round, one variant."""
    seeds = [make_item(project, text=f"seed {i}") for i in range(3)]
    rnd = active_round(project)
    preds = [
        make_prediction(
            make_item(project, text=f"pool text number {i}", split=Item.Split.POOL),
            rnd,
            p=0.9 if i % 2 else 0.2,
            priority=100 - i,
        )
        for i in range(25)
    ]
    variant = make_variant(preds[0].item, "pool text NUMBER zero rewritten")
    return {"round": rnd, "preds": preds, "variant": variant, "seeds": seeds}


def _urls(queue):
    p, v = queue["preds"][0].pk, queue["variant"].pk
    s = {"slug": "safety"}
    return [
        ("get", reverse("annotations:labeling_next", kwargs=s), {}, [302, 200, 200, 200, 404]),
        ("get-hx", reverse("annotations:labeling_next", kwargs=s), {}, [302, 200, 200, 200, 404]),
        (
            "post",
            reverse("annotations:labeling_skip", kwargs=s),
            {"item": queue["seeds"][0].pk},
            [302, 302, 302, 302, 404],
        ),
        ("post", reverse("annotations:labeling_undo", kwargs=s), {}, [302, 302, 302, 302, 404]),
        ("get", reverse("annotations:review_queue", kwargs=s), {}, [302, 403, 200, 200, 404]),
        ("get-hx", reverse("annotations:review_queue", kwargs=s), {}, [302, 403, 200, 200, 404]),
        (
            "post",
            reverse("annotations:prediction_review", kwargs={**s, "pk": p}),
            {"action": "skip"},
            [302, 403, 302, 302, 404],
        ),
        ("get", reverse("annotations:prediction_similar", kwargs={**s, "pk": p}), {}, [302, 403, 200, 200, 404]),
        ("post", reverse("annotations:prediction_review_bulk", kwargs=s), {}, [302, 403, 302, 302, 404]),
        ("get", reverse("annotations:variant_list", kwargs=s), {}, [302, 403, 200, 200, 404]),
        ("get-hx", reverse("annotations:variant_list", kwargs=s), {}, [302, 403, 200, 200, 404]),
        (
            "post",
            reverse("annotations:variant_review", kwargs={**s, "pk": v}),
            {"action": "bogus"},
            [302, 403, 302, 302, 404],
        ),
        ("get", reverse("annotations:dashboard_stats", kwargs=s), {}, [302, 200, 200, 200, 404]),
        ("get-hx", reverse("annotations:dashboard_stats", kwargs=s), {}, [302, 200, 200, 200, 404]),
    ]


@pytest.mark.django_db
def test_role_matrix_for_every_workbench_page_and_fragment(client_for, queue):
    for method, url, data, expected in _urls(queue):
        got = []
        for role in ROLES:
            client = client_for(None if role == "anonymous" else role)
            if method == "post":
                got.append(client.post(url, data).status_code)
            else:
                got.append(client.get(url, **(HX if method == "get-hx" else {})).status_code)
        assert got == expected, (method, url)


@pytest.mark.django_db
def test_review_queue_page_and_fragment_have_bounded_queries(client_for, queue, django_assert_max_num_queries):
    client = client_for("reviewer")
    url = reverse("annotations:review_queue", kwargs={"slug": "safety"})
    client.get(url)  # warm the session
    with django_assert_max_num_queries(9):
        response = client.get(url)
    assert response.status_code == 200 and response.content.count(b'class="card review-card active"') == 1
    with django_assert_max_num_queries(9):
        response = client.get(url + "?agreement=disagree_both&p_min=0.5", **HX)
    assert response.status_code == 200 and response.content.count(b'class="bulk-row"') == 12


@pytest.mark.django_db
def test_next_item_fragment_has_bounded_queries(client_for, queue, django_assert_max_num_queries):
    client = client_for("annotator")
    url = reverse("annotations:labeling_next", kwargs={"slug": "safety"})
    client.get(url, **HX)
    with django_assert_max_num_queries(10):
        response = client.get(url, **HX)
    assert response.status_code == 200
    assert b'id="labeling-card"' in response.content and b"<html" not in response.content


@pytest.mark.django_db
def test_review_queue_orders_by_priority_and_hides_decided_items(client_for, queue, users):
    preds = queue["preds"]
    Item.objects.filter(pk=preds[0].item_id).update(human_label="harmful")
    Item.objects.filter(pk=preds[1].item_id).update(excluded=True)
    html = (
        client_for("reviewer")
        .get(reverse("annotations:review_queue", kwargs={"slug": "safety"}), {"label": "harmful"})
        .content.decode()
    )  # filtered: the page is listed too
    assert f'id="prediction-{preds[2].pk}"' not in html  # item 2 is unharmful: filtered out
    assert f'id="prediction-{preds[3].pk}"' in html  # the active card: the first undecided harmful one
    rows = [p.item_id for p in preds if p.pseudo_label == "harmful"]
    listed = [int(x.split("<td>")[1].split("<")[0]) for x in html.split('class="bulk-row"')[1:]]
    assert listed == [i for i in rows if i != preds[1].item_id]


@pytest.mark.django_db
def test_queue_uses_only_the_active_succeeded_round(client_for, queue, project, active_round, make_prediction):
    from annotations.models import ModelVersion, TrainingRound

    ModelVersion.objects.filter(project=project).update(is_active=False)
    html = client_for("reviewer").get(reverse("annotations:review_queue", kwargs={"slug": "safety"})).content
    assert b"No active model" in html
    failed = TrainingRound.objects.create(project=project, status=TrainingRound.Status.FAILED)
    ModelVersion.objects.create(project=project, training_round=failed, path="/x", is_active=True)
    assert (
        b"No active model"
        in client_for("reviewer").get(reverse("annotations:review_queue", kwargs={"slug": "safety"})).content
    )


@pytest.mark.django_db
def test_label_submit_over_htmx_returns_the_next_item_and_stores_once(client_for, project, make_item, users):
    a, b = make_item(project, text="first"), make_item(project, text="second")
    client = client_for("annotator")
    url = reverse("annotations:labeling_next", kwargs={"slug": "safety"})
    assert b"first" in client.get(url).content
    data = {"item": a.pk, "label": "harmful", "category": "fraud", "client_token": "tok-1"}
    response = client.post(url, data, **HX)
    assert response.status_code == 200 and b"second" in response.content
    assert client.post(url, data, **HX).status_code == 200  # the double click
    rows = Annotation.objects.filter(item=a)
    assert rows.count() == 1 and rows.get().category == "fraud"
    assert Item.objects.get(pk=a.pk).human_label == "harmful"
    # without JS the form posts and redirects back to the page
    assert client.post(url, {"item": b.pk, "label": "unharmful", "client_token": "tok-2"}).status_code == 302


@pytest.mark.django_db
def test_unknown_category_is_refused_with_422(client_for, project, make_item, users):
    a = make_item(project)
    client = client_for("annotator")
    url = reverse("annotations:labeling_next", kwargs={"slug": "safety"})
    client.get(url)
    response = client.post(url, {"item": a.pk, "label": "harmful", "category": "nope"}, **HX)
    assert response.status_code == 422 and not Annotation.objects.exists()


@pytest.mark.django_db
def test_item_of_another_project_cannot_be_labeled(client_for, other_project, make_item, users):
    foreign = make_item(other_project)
    response = client_for("annotator").post(
        reverse("annotations:labeling_next", kwargs={"slug": "safety"}), {"item": foreign.pk, "label": "harmful"}
    )
    assert response.status_code == 404 and not Annotation.objects.exists()


@pytest.mark.django_db
def test_skip_then_undo_over_htmx(client_for, project, make_item, users):
    a, b = make_item(project, text="alpha"), make_item(project, text="beta")
    client = client_for("annotator")
    url = reverse("annotations:labeling_next", kwargs={"slug": "safety"})
    client.get(url)
    response = client.post(reverse("annotations:labeling_skip", kwargs={"slug": "safety"}), {"item": a.pk}, **HX)
    assert b"beta" in response.content
    client.post(url, {"item": b.pk, "label": "unharmful", "client_token": "t"}, **HX)
    response = client.post(reverse("annotations:labeling_undo", kwargs={"slug": "safety"}), {"item": a.pk}, **HX)
    assert b"beta" in response.content and b"Undid" in response.content
    assert Item.objects.get(pk=b.pk).human_label == ""


@pytest.mark.django_db
def test_review_actions_approve_correct_reject(client_for, queue, users):
    preds = queue["preds"]
    client = client_for("reviewer")
    for pred, action in zip(preds[:3], ["approve", "correct", "reject"], strict=True):
        url = reverse("annotations:prediction_review", kwargs={"slug": "safety", "pk": pred.pk})
        assert client.post(url, {"action": action, "client_token": f"t{pred.pk}"}, **HX).status_code == 200
    items = [Item.objects.get(pk=p.item_id) for p in preds[:3]]
    assert items[0].human_label == preds[0].pseudo_label
    assert items[1].human_label not in ("", preds[1].pseudo_label)
    assert items[2].excluded and items[2].human_label == ""
    kinds = list(Annotation.objects.order_by("id").values_list("kind", "prediction_id"))
    assert kinds == [("approve", preds[0].pk), ("correct", preds[1].pk), ("reject", preds[2].pk)]


@pytest.mark.django_db
def test_bulk_approve_applies_to_the_page_once(client_for, queue):
    preds = queue["preds"][:5]
    client = client_for("reviewer")
    url = reverse("annotations:prediction_review_bulk", kwargs={"slug": "safety"})
    data = {"action": "approve", "ids": [p.pk for p in preds], "client_token": "bulk1"}
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    assert Annotation.objects.filter(kind="approve").count() == 5
    assert all(Item.objects.get(pk=p.item_id).human_label == p.pseudo_label for p in preds)


@pytest.mark.django_db
def test_filters_narrow_the_queue(client_for, queue):
    client = client_for("reviewer")
    url = reverse("annotations:review_queue", kwargs={"slug": "safety"})
    html = client.get(url, {"label": "unharmful", "p_max": "0.5", "q": "number 1"}).content.decode()
    shown = html.count('class="bulk-row"')
    expected = [p for p in queue["preds"] if p.pseudo_label == "unharmful" and "number 1" in p.item.text]
    assert shown == len(expected) > 0


@pytest.mark.django_db
def test_similar_items_by_text(client_for, queue, project, make_item):
    make_item(project, text="pool text number something", human_label="harmful")
    html = (
        client_for("reviewer")
        .get(reverse("annotations:prediction_similar", kwargs={"slug": "safety", "pk": queue["preds"][0].pk}), **HX)
        .content.decode()
    )
    assert "pool text number something" in html


@pytest.mark.django_db
def test_variant_review_approve_and_reject_with_reason(client_for, queue, users, make_variant):
    v = queue["variant"]
    client = client_for("reviewer")
    url = reverse("annotations:variant_review", kwargs={"slug": "safety", "pk": v.pk})
    assert client.post(url, {"action": "approve"}, **HX).status_code == 200
    v.refresh_from_db()
    assert v.status == "approved" and v.reviewer == users["reviewer"]
    assert client.post(url, {"reason": "gibberish"}, **HX).status_code == 200
    v.refresh_from_db()
    assert v.status == "rejected" and v.reject_reason == "gibberish"
    assert client.post(url, {"action": "reject", "reason": "bogus"}, **HX).status_code == 422


@pytest.mark.django_db
def test_variant_list_shows_diff_and_adversarial_first(client_for, queue, make_variant):
    adv = make_variant(
        queue["preds"][1].item, "evil twin", kind=AugmentedVariant.Kind.ADVERSARIAL, method="mine", priority=0.1
    )
    html = client_for("reviewer").get(reverse("annotations:variant_list", kwargs={"slug": "safety"})).content.decode()
    assert html.index(f'id="variant-{adv.pk}"') < html.index(f'id="variant-{queue["variant"].pk}"')
    assert "<del>number</del>" in html and "<ins>NUMBER</ins>" in html


@pytest.mark.django_db
def test_item_text_is_escaped_on_every_page(
    client_for, project, make_item, active_round, make_prediction, make_variant
):
    seed = make_item(project, text=XSS)
    rnd = active_round(project)
    pred = make_prediction(make_item(project, text=XSS + " pool", split=Item.Split.POOL), rnd)
    make_variant(pred.item, XSS + " variant")
    pages = [
        client_for("annotator").get(reverse("annotations:labeling_next", kwargs={"slug": "safety"})),
        client_for("reviewer").get(reverse("annotations:review_queue", kwargs={"slug": "safety"})),
        client_for("reviewer").get(reverse("annotations:variant_list", kwargs={"slug": "safety"})),
        client_for("reviewer").get(reverse("annotations:prediction_similar", kwargs={"slug": "safety", "pk": pred.pk})),
    ]
    for response in pages:
        body = response.content.decode()
        assert response.status_code == 200
        assert '<script>alert("x")' not in body and "<img src=x" not in body
        assert "&lt;script&gt;" in body
    assert seed.pk


@pytest.mark.django_db
def test_dashboard_stats_kappa_activity_and_hint(client_for, project, make_item, users):
    from annotations.services.labels import annotation_submit

    project.annotations_per_item = 2
    project.save()
    for i in range(8):
        item = make_item(project)
        annotation_submit(
            item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful" if i < 4 else "unharmful"
        )
        annotation_submit(
            item=item, user=users["reviewer"], role=Role.ANNOTATOR, label="harmful" if i < 3 or i == 7 else "unharmful"
        )
    html = (
        client_for("annotator").get(reverse("annotations:dashboard_stats", kwargs={"slug": "safety"})).content.decode()
    )
    assert "Fleiss" in html and "Cohen" in html and "ann · rev" in html
    assert "What to label next" in html and "Label seed items" in html


@pytest.mark.django_db
def test_dashboard_charts_labels_per_day_by_class(client_for, project, make_item, users):
    import re
    from datetime import timedelta

    from django.utils import timezone

    from annotations.models import Annotation
    from annotations.services.labels import annotation_submit

    for i in range(5):
        annotation_submit(
            item=make_item(project),
            user=users["annotator"],
            role=Role.ANNOTATOR,
            label="harmful" if i < 2 else "unharmful",
        )
    Annotation.objects.filter(pk__in=Annotation.objects.order_by("id").values("id")[:1]).update(
        created_at=timezone.now() - timedelta(days=2)
    )
    response = client_for("annotator").get(reverse("annotations:dashboard_stats", kwargs={"slug": "safety"}))
    assert response.status_code == 200
    chart = response.content.decode().split('id="label-timeline"', 1)[1].split("</svg>", 1)[0]
    assert len(re.findall(r'data-group="', chart)) == 2  # two days with labels
    titles = re.findall(r"<title>([^<]+)</title>", chart)
    assert sum(": 1" in t and "harmful" in t and "unharmful" not in t for t in titles) == 2  # 1 + 1 harmful
    assert any("unharmful: 3" in t for t in titles)


def test_fleiss_kappa_matches_the_textbook_example():
    from annotations.selectors.labels import fleiss_kappa

    # Fleiss (1971)-style toy: perfect agreement -> 1; systematic split -> negative.
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)
    assert fleiss_kappa([[1, 1], [1, 1]]) == pytest.approx(-1.0)
    # Wikipedia's worked example (10 items, 14 raters, 5 categories): kappa 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=1e-3)


@pytest.mark.django_db
def test_project_dashboard_lazy_loads_the_workbench_stats(client_for, project, users):
    html = client_for("annotator").get(reverse("annotations:project_dashboard", kwargs={"slug": "safety"})).content
    stats_url = reverse("annotations:dashboard_stats", kwargs={"slug": "safety"})
    assert f'hx-get="{stats_url}"'.encode() in html and f'href="{stats_url}"'.encode() in html
    full = client_for("annotator").get(stats_url).content
    assert b"Team" in full and b"What to label next" in full


@pytest.mark.django_db
def test_the_variants_page_stays_fast_and_small_for_a_megabyte_item(client_for, project, make_item, make_variant):
    """Issue 15, defect 5: a word diff over a 1 MB item took 36-61 s and returned 2-4 MB of HTML."""
    import random
    import time

    rng = random.Random(0)
    words = [f"w{rng.randrange(10_000)}" for _ in range(170_000)]  # ~1 MB of words
    original = " ".join(words)
    rewritten = " ".join(w if rng.random() > 0.3 else "changed" for w in words)
    for i in range(3):
        make_variant(make_item(project, text=original + f" {i}"), rewritten + f" {i}", index=0)
    client = client_for("reviewer")
    started = time.monotonic()
    response = client.get(reverse("annotations:variant_list", kwargs={"slug": project.slug}))
    elapsed = time.monotonic() - started
    html = response.content.decode()
    assert response.status_code == 200 and elapsed < 5, elapsed
    assert len(html) < 400_000 and "more characters not shown" in html and "<del>" in html


def _overlapping_votes(project, users, make_item, n: int) -> None:
    from annotations.services.labels import annotation_submit

    project.annotations_per_item = 2
    project.save()
    for i in range(n):
        item = make_item(project)
        annotation_submit(
            item=item, user=users["annotator"], role=Role.ANNOTATOR, label="harmful" if i % 2 else "unharmful"
        )
        annotation_submit(
            item=item, user=users["reviewer"], role=Role.ANNOTATOR, label="unharmful" if i % 2 else "harmful"
        )


@pytest.mark.django_db
def test_fleiss_kappa_from_two_items_says_n_too_small(client_for, project, make_item, users):
    """Issue 14.16: two items gave "κ = -1.000" with no caveat."""
    _overlapping_votes(project, users, make_item, 2)
    response = client_for("annotator").get(reverse("annotations:dashboard_stats", kwargs={"slug": "safety"}))
    html = response.content.decode()
    assert response.status_code == 200 and '<strong class="fleiss">n too small</strong>' in html
    assert "n = 2 items × 2 raters" in html and "-1.000" not in html


@pytest.mark.django_db
def test_fleiss_kappa_from_enough_items_is_shown_with_its_n(client_for, project, make_item, users):
    _overlapping_votes(project, users, make_item, 20)
    response = client_for("annotator").get(reverse("annotations:dashboard_stats", kwargs={"slug": "safety"}))
    html = response.content.decode()
    assert response.status_code == 200 and '<strong class="fleiss">-1.000</strong> (n = 20 items × 2 raters)' in html
