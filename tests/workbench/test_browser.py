"""The workbench in real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Keyboard-first flows against pytest-django's ``live_server``: an annotator labels three
items and undoes one; a reviewer approves and corrects pseudo-labels and approves an
augmentation; the focused review card stays in view over ten key presses, a fast double
key press reviews one item, key 3 undoes the 3rd-last decision; the data explorer searches,
filters and corrects an old label; an XSS payload in item text stays inert text.
"""

from __future__ import annotations

import shutil

import pytest

from annotations.models import Annotation, AugmentedVariant, Item, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API keeps an event loop on this thread; the ORM calls made by the
    # test between browser steps are still sequential, so Django's async guard is lifted.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not shutil.which(CHROMIUM):
        pytest.fail("Chromium missing: run `make browsers` (apt-get install chromium chromium-driver).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def page_for(browser, live_server, settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    pages = []

    def login(username: str):
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        pages.append(context)
        return page

    yield login
    for context in pages:
        context.close()


def _current_item(page) -> str:
    return page.locator("article.item-card").get_attribute("data-item")


def _press_and_wait_new_item(page, key: str) -> None:
    before = _current_item(page)
    page.keyboard.press(key)
    page.wait_for_function(
        "prev => { const el = document.querySelector('article.item-card');"
        " return el && el.dataset.item !== prev && !document.querySelector('.htmx-request, .htmx-settling')"
        " && Array.from(document.querySelectorAll('#labeling-card form')).every(f => f['htmx-internal-data']); }",
        arg=before,
    )


def test_annotator_labels_three_items_by_keyboard_and_undoes_one(page_for, live_server, project, users, make_item):
    items = [make_item(project, text=f"browser item {i}") for i in range(4)]
    page = page_for("ann")
    page.goto(f"{live_server.url}/p/safety/label/")
    assert _current_item(page) == str(items[0].pk)
    page.keyboard.press("2")  # pick category 2 (fraud) for the next h
    assert page.locator("input[name=category][value=fraud]").is_checked()
    _press_and_wait_new_item(page, "h")
    _press_and_wait_new_item(page, "u")
    _press_and_wait_new_item(page, "h")
    assert page.url.endswith("/p/safety/label/")  # no full page load happened
    page.keyboard.press("z")
    page.wait_for_function(
        "() => document.querySelector('.notice') && document.querySelector('.notice').textContent.includes('Undid')"
    )
    assert _current_item(page) == str(items[2].pk)  # the undone item is back on screen
    labels = dict(Annotation.objects.filter(kind="label").values_list("item_id", "label"))
    assert labels == {items[0].pk: "harmful", items[1].pk: "unharmful", items[2].pk: "harmful"}
    assert Annotation.objects.get(item=items[0]).category == "fraud"
    assert Annotation.objects.filter(kind="undo", item=items[2]).count() == 1
    assert [Item.objects.get(pk=i.pk).human_label for i in items[:3]] == ["harmful", "unharmful", ""]
    assert page.locator("#labeled-today").inner_text() == "2"
    assert page.dialogs == []


def test_reviewer_approves_and_corrects_pseudo_labels_and_approves_a_variant(
    page_for, live_server, project, users, make_item, active_round, make_prediction, make_variant
):
    rnd = active_round(project)
    preds = [
        make_prediction(make_item(project, text=f"pool {i}", split=Item.Split.POOL), rnd, p=0.8, priority=10 - i)
        for i in range(3)
    ]
    variant = make_variant(preds[2].item, "pool two, reworded")
    page = page_for("rev")
    page.goto(f"{live_server.url}/p/safety/review/")
    _press_and_wait_next_card(page, "a")
    _press_and_wait_next_card(page, "c")
    assert Item.objects.get(pk=preds[0].item_id).human_label == "harmful"
    assert Item.objects.get(pk=preds[1].item_id).human_label == "unharmful"
    assert list(Annotation.objects.order_by("id").values_list("kind", flat=True)) == ["approve", "correct"]
    page.goto(f"{live_server.url}/p/safety/variants/")
    assert page.locator("ins").count() >= 1
    page.keyboard.press("a")
    page.wait_for_selector(f"#variant-{variant.pk}.done")
    variant.refresh_from_db()
    assert variant.status == AugmentedVariant.Status.APPROVED and variant.reviewer == users["reviewer"]
    assert page.dialogs == []


def _active_card(page) -> str | None:
    return page.evaluate(
        "() => { const el = document.querySelector('.review-card.active'); return el ? el.dataset.prediction : null; }"
    )


def _press_and_wait_next_card(page, key: str) -> None:
    before = _active_card(page)
    page.keyboard.press(key)
    page.wait_for_function(
        "prev => { const el = document.querySelector('.review-card.active');"
        " return (!el || el.dataset.prediction !== prev)"
        " && !document.querySelector('.htmx-request, .htmx-settling'); }",
        arg=before,
    )


def _in_viewport(page) -> bool:
    return page.evaluate(
        "() => { const r = document.querySelector('.review-card.active').getBoundingClientRect();"
        " return r.top >= 0 && r.top < window.innerHeight - 100; }"
    )


@pytest.fixture
def review_pool(project, make_item, active_round, make_prediction):
    rnd = active_round(project)
    long = " ".join(["a long sentence that makes the card tall"] * 40)
    return [
        make_prediction(
            make_item(project, text=f"pool card {i}: {long}", split=Item.Split.POOL), rnd, p=0.8, priority=100 - i
        )
        for i in range(14)
    ]


def test_review_active_card_stays_in_view_after_ten_key_presses(page_for, live_server, users, review_pool):
    page = page_for("rev")
    page.set_viewport_size({"width": 1280, "height": 850})
    page.goto(f"{live_server.url}/p/safety/review/")
    for i in range(10):
        assert _active_card(page) == str(review_pool[i].pk)
        _press_and_wait_next_card(page, "a" if i % 3 else "s")
        assert _in_viewport(page), f"active card out of view after {i + 1} presses"
    assert page.locator(".review-card").count() == 1  # no stubs of reviewed cards pile up
    assert page.locator(".recent-list li").count() == 6  # the 6 approvals (the 4 skips are not decisions)
    assert page.dialogs == []


def test_review_fast_double_press_reviews_one_item(page_for, live_server, users, review_pool):
    page = page_for("rev")
    page.goto(f"{live_server.url}/p/safety/review/")
    page.keyboard.press("a")
    page.keyboard.press("a")  # before the next card is on screen: dropped
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling')")
    page.wait_for_timeout(300)
    assert list(Annotation.objects.values_list("item_id", flat=True)) == [review_pool[0].item_id]
    assert _active_card(page) == str(review_pool[1].pk)


def test_review_undo_of_the_third_last_decision_by_key(page_for, live_server, users, review_pool):
    page = page_for("rev")
    page.goto(f"{live_server.url}/p/safety/review/")
    for key in ("a", "c", "a", "r"):
        _press_and_wait_next_card(page, key)
    _press_and_wait_next_card(page, "3")  # 3rd-last: the correction of card 1
    assert _active_card(page) == str(review_pool[1].pk)
    assert Item.objects.get(pk=review_pool[1].item_id).human_label == ""
    assert [Item.objects.get(pk=p.item_id).human_label for p in (review_pool[0], review_pool[2])] == ["harmful"] * 2
    assert Item.objects.get(pk=review_pool[3].item_id).excluded
    assert page.locator(".recent.undone").count() == 1
    _press_and_wait_next_card(page, "a")  # decide it again
    assert Item.objects.get(pk=review_pool[1].item_id).human_label == "harmful"
    assert page.dialogs == []


def test_explorer_search_filter_and_correct_an_old_label(page_for, live_server, project, users, make_item):
    from annotations.services.labels import annotation_submit

    old = make_item(project, text="instructions for a phishing kit")
    make_item(project, text="instructions for a cake")
    other = make_item(project, text="phishing awareness training", split=Item.Split.POOL)
    annotation_submit(item=old, user=users["annotator"], role="annotator", label="unharmful")
    page = page_for("rev")
    page.goto(f"{live_server.url}/p/safety/items/")
    page.fill("input[name=q]", "phishing")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('.explorer-row').length === 2")
    page.select_option("select[name=split]", "seed")
    page.wait_for_function("() => document.querySelectorAll('.explorer-row').length === 1")
    assert page.locator(".explorer-row").get_attribute("data-item") == str(old.pk)
    assert "q=phishing" in page.url and "split=seed" in page.url
    page.click(f".explorer-row a[href$='/items/{old.pk}/']")
    page.wait_for_url(f"**/items/{old.pk}/")
    page.check("input[name=label][value=harmful]")
    page.select_option("select[name=category]", "fraud")
    page.click("form.correct-form button[type=submit]")
    page.wait_for_selector("text=the earlier ones stay in the history")
    rows = page.locator(".history-row.history-human")
    assert rows.count() == 2
    assert "unharmful" in rows.nth(0).inner_text() and "ann" in rows.nth(0).inner_text()
    assert "harmful" in rows.nth(1).inner_text() and "rev" in rows.nth(1).inner_text()
    assert Item.objects.get(pk=old.pk).human_label == "harmful" and other.human_label == ""
    assert page.dialogs == []


def test_xss_payload_in_item_text_is_inert(
    page_for, live_server, project, users, make_item, active_round, make_prediction, make_variant
):
    payload = (
        '<script>window.__pwned=1;alert("s")</script><img src=x onerror="window.__pwned=2;alert(2)">'
        '<svg onload="window.__pwned=3"></svg>\u202e\u200b' + "A" * 5000
    )
    make_item(project, text=payload)
    rnd = active_round(project)
    pred = make_prediction(make_item(project, text=payload + " pool", split=Item.Split.POOL), rnd)
    make_variant(pred.item, payload + " variant")
    from annotations.services.projects import membership_set

    membership_set(project=project, user=users["annotator"], role=Role.REVIEWER)
    page = page_for("ann")
    for path in ("/p/safety/label/", "/p/safety/review/", "/p/safety/variants/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("img[src=x]").count() == 0 and page.locator(".item-text script").count() == 0
        assert "<script>window.__pwned=1" in page.locator(".item-text").first.inner_text()
        # the long unbroken line wraps inside the card instead of widening the page
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert page.dialogs == []
