"""The project run from the browser only (issue 14), in real headless Chromium against a real worker:
create a project → add a member → import → label → start a round (tiny random BERT) → charts → export.
Plus the styled error pages and no CSP violation on the pages that draw charts.
"""

from __future__ import annotations

import json
import random
import shutil

import pytest

from annotations.models import BackgroundJob, Membership, Project, TrainingRound
from umbra_testkit import ROUND_QUEUES, start_worker, wait_for_round
from umbra_testkit import ROUND_WORDS as WORDS
from umbra_testkit import TINY_ROUND_CONFIG as TINY_CONFIG

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct-horse-battery-9"  # tests/conftest.py's make_user


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # ORM calls between browser steps
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
    contexts = []

    def login(username: str):
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.csp_errors = []
        page.on("console", lambda m: "Content Security Policy" in m.text and page.csp_errors.append(m.text))
        page.on("dialog", lambda d: d.accept())  # data-confirm dialogs: yes
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        contexts.append(context)
        return page

    yield login
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def ui_worker(django_db_setup, django_db_blocker, tmp_path_factory, tiny_backbone, engine_cache):
    """A real worker whose MEDIA_ROOT the test's web server shares (exports are written there)."""
    tmp = tmp_path_factory.mktemp("ui-worker")
    worker = start_worker(
        tmp,
        tiny_backbone,
        engine_cache,
        queues=ROUND_QUEUES,
        name="ui-test",
        extra_env={"DJANGO_MEDIA_ROOT": str(tmp / "media")},
    )
    worker.media_root = tmp / "media"
    yield worker
    worker.stop()


def _jsonl(rows) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _text(rng, n=6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _import(page, base: str, slug: str, name: str, rows, split: str) -> None:
    page.goto(f"{base}/p/{slug}/import/")
    page.set_input_files("input[name=file]", {"name": name, "mimeType": "application/jsonl", "buffer": _jsonl(rows)})
    page.select_option("select[name=split]", split)
    page.click("text=Upload and import")
    page.wait_for_selector(".messages")


def test_project_from_creation_to_export_through_the_ui_only(ui_worker, page_for, live_server, make_user, settings):
    base = live_server.url
    settings.MEDIA_ROOT = ui_worker.media_root
    make_user("lead", is_staff=True)
    make_user("newcomer")
    rng = random.Random(3)
    page = page_for("lead")

    # 1. create the project, with guidelines previewed
    page.goto(f"{base}/")
    page.click("text=New project")
    page.fill("input[name=name]", "UI flow")
    page.fill("textarea[name=categories]", "violence\nfraud")
    page.fill("textarea[name=guidelines]", "# Rules\n**Judge intent**")
    page.click("text=Preview guidelines")
    page.wait_for_selector("#guidelines-preview strong")
    assert page.inner_text("#guidelines-preview strong") == "Judge intent"
    page.click("text=Create project")
    page.wait_for_url(f"{base}/p/ui-flow/settings/")
    project = Project.objects.get(slug="ui-flow")

    # 2. members and settings
    page.fill("#member-add-form input[name=username]", "newcomer")
    page.select_option("#member-add-form select[name=role]", "reviewer")
    page.click("#member-add-form button[type=submit]")
    page.wait_for_selector("tr[data-member=newcomer]")
    assert Membership.objects.get(project=project, user__username="newcomer").role == "reviewer"
    page.fill("input[name=min_labels_per_class]", "1")
    page.click("text=Save settings")
    page.wait_for_selector("text=Settings saved.")

    # 3. import: labeled seeds of both classes + unlabeled seeds, a pool and a test split
    seeds = [{"text": f"how to make a bomb {_text(rng)} {i}", "label": "harmful"} for i in range(5)]
    seeds += [{"text": f"bake a cake please {_text(rng)} {i}", "label": "unharmful"} for i in range(5)]
    seeds += [{"text": f"to label {_text(rng)} {i}"} for i in range(3)]
    _import(page, base, "ui-flow", "seed.jsonl", seeds, "seed")
    _import(page, base, "ui-flow", "pool.jsonl", [{"text": f"pool {_text(rng)} {i}"} for i in range(20)], "pool")
    test = [{"text": f"kill attack {_text(rng)} {i}", "label": "harmful"} for i in range(4)]
    test += [{"text": f"love friend {_text(rng)} {i}", "label": "unharmful"} for i in range(4)]
    _import(page, base, "ui-flow", "test.jsonl", test, "test")
    for _ in range(60):
        if BackgroundJob.objects.filter(project=project, kind="import", status="succeeded").count() == 3:
            break
        page.wait_for_timeout(1000)
    assert project.items.count() == 41

    # 4. label two seed items by keyboard
    page.goto(f"{base}/p/ui-flow/label/")
    for key in ("h", "u"):
        before = page.locator("article.item-card").get_attribute("data-item")
        page.keyboard.press(key)
        page.wait_for_function(
            "prev => { const el = document.querySelector('article.item-card');"
            " return !el || el.dataset.item !== prev; }",
            arg=before,
        )
    assert project.items.filter(split="seed").exclude(human_label="").count() == 12

    # 5. a round from the generated form (tiny settings as JSON), then its charts
    page.goto(f"{base}/p/ui-flow/rounds/")
    page.select_option("select[name=algorithm]", "fixmatch")
    page.click(".round-settings > summary")  # the typed settings, folded by default
    assert page.is_visible("input[name=fixmatch__threshold]") and not page.is_visible("input[name=multimatch__n_heads]")
    page.click("text=Settings as JSON")
    page.fill("textarea[name=config]", json.dumps(TINY_CONFIG))
    page.click("#round-start-form button[type=submit]")
    page.wait_for_selector("#rounds-live .round-row")
    done = wait_for_round(TrainingRound.objects.get(project=project).pk)
    assert done.status == "succeeded", (done.error, ui_worker.output()[-3000:])
    page.goto(f"{base}/p/ui-flow/rounds/{done.pk}/")
    series = page.eval_on_selector_all("#training-charts g.chart-series", "gs => gs.map(g => g.dataset.series)")
    assert series[:1] == ["total loss"] and "mask ratio" in series
    assert page.locator("svg[data-chart=pr] polyline").count() == 1
    assert page.locator("table.confusion td[data-cell=tp]").count() == 1
    assert page.locator("#pseudo-labels").is_visible()
    page.goto(f"{base}/p/ui-flow/rounds/")
    assert page.eval_on_selector_all("figure.learning-curve g.chart-series", "gs => gs.map(g => g.dataset.series)") == [
        "FixMatch"
    ]

    # 6. export the labels and download them
    page.goto(f"{base}/p/ui-flow/exports/")
    page.click("text=Export labels (jsonl)")
    page.wait_for_selector("a:has-text('Download')", timeout=90_000)
    with page.expect_download() as download:
        page.click("a:has-text('Download')")
    with open(download.value.path(), "rb") as f:
        lines = f.read().splitlines()
    assert len(lines) >= 12 and all(json.loads(line)["text"] for line in lines)
    assert page.csp_errors == []


def test_error_pages_keep_the_navigation_and_say_why(page_for, live_server, project, users):
    base = live_server.url
    page = page_for("ann")
    response = page.goto(f"{base}/p/{project.slug}/review/")
    assert response.status == 403
    assert "This needs the reviewer role in Safety prompts." in page.inner_text("#error-page")
    assert page.is_visible(f"nav.project-nav a[href='/p/{project.slug}/label/']")
    response = page.goto(f"{base}/p/{project.slug}/rounds/start/")  # POST-only
    assert response.status == 405 and "only takes POST requests" in page.inner_text("#error-page")
    response = page.goto(f"{base}/p/nowhere/")
    assert response.status == 404 and page.is_visible("header.topbar a.brand")
    page.click("text=All projects")
    page.wait_for_url(f"{base}/")
    assert page.csp_errors == []


def test_key_caps_read_as_capitals(page_for, live_server, project, users, make_user):
    """Issue 14.17: the `l` key cap read as "1"; caps show capitals (the handler ignores case)."""
    from annotations.models import Item

    Item.objects.create(project=project, text="one item", content_hash="k1", split="seed")
    page = page_for("ann")
    page.goto(f"{live_server.url}/p/{project.slug}/label/")
    transforms = page.eval_on_selector_all("kbd", "ks => ks.map(k => getComputedStyle(k).textTransform)")
    assert transforms and set(transforms) == {"uppercase"}
    assert page.eval_on_selector("button[data-key=h] kbd", "k => k.innerText") == "H"


def test_rounds_page_charts_render_without_csp_violations(page_for, live_server, project, users):
    from annotations.models import ModelVersion

    metrics = {
        "test": {
            "f1": 0.6,
            "precision": 0.5,
            "recall": 0.75,
            "auprc": 0.6,
            "n": 8,
            "threshold": 0.4,
            "confusion": {"tp": 3, "fp": 3, "fn": 1, "tn": 1},
            "pr_curve": {"precision": [0.5, 0.5, 1.0], "recall": [1.0, 0.75, 0.25], "thresholds": [0.1, 0.4, 0.9]},
        }
    }
    for number, (algorithm, n) in enumerate([("supervised", 10), ("fixmatch", 20)], 1):
        rnd = TrainingRound.objects.create(
            project=project,
            algorithm=algorithm,
            status="succeeded",
            number=number,
            n_labeled=n,
            metrics=metrics,
            train_log=[{"step": s, "loss": 1 / s, "mask_ratio": 0.1 * s} for s in range(1, 6)],
            pseudo_labels=[
                {"epoch": 1, "label": "harmful", "drawn": 5, "used": 4, "checked": 0, "correct": 0},
                {"epoch": 1, "label": "unharmful", "drawn": 9, "used": 8, "checked": 0, "correct": 0},
            ],
        )
        ModelVersion.objects.create(project=project, training_round=rnd, number=number, path="/x", metrics=metrics)
    page = page_for("adm")
    page.goto(f"{live_server.url}/p/{project.slug}/rounds/")
    assert page.eval_on_selector_all("figure.learning-curve g.chart-series", "gs => gs.map(g => g.dataset.series)") == [
        "Supervised (baseline)",
        "FixMatch",
    ]
    assert page.locator("#pseudo-mix g.chart-bar").count() == 2
    # the status column never breaks "succeeded" in the middle (issue 14.10): one line high
    heights = page.eval_on_selector_all(".round-row .status", "els => els.map(e => e.getClientRects().length)")
    assert heights and all(h == 1 for h in heights)
    page.goto(f"{live_server.url}/p/{project.slug}/rounds/{rnd.pk}/")
    box = page.locator("svg[data-chart=loss]").bounding_box()
    assert box["width"] > 200 and box["height"] > 80  # drawn at a readable size by the static CSS
    assert page.csp_errors == []


def test_screenshot_script_covers_every_role(live_server, project, users, settings, tmp_path, monkeypatch):
    """scripts/screenshots.py logs in as each role and shoots the reachable pages plus an error page."""
    import importlib.util
    from pathlib import Path

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    spec = importlib.util.spec_from_file_location("screenshots", Path(settings.BASE_DIR) / "scripts/screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    accounts = [(users[r].username, PASSWORD) for r in ("annotator", "reviewer", "admin")]
    shots = module.capture(live_server.url, accounts, tmp_path, depth=2, max_pages=25)
    assert set(shots) == {"ann", "rev", "adm"}
    for username, pages in shots.items():
        urls = [u for u, _, _ in pages]
        assert any(u.endswith(f"/p/{project.slug}/") for u in urls), username
        assert all((tmp_path / png).stat().st_size > 1000 for _, png, _ in pages)
        assert pages[-1][2] == 404  # the styled error pages are shot too
        assert (pages[-2][2] == 403) is (username != "adm")  # the settings page: admins only
    admin_urls = [u for u, _, _ in shots["adm"]]
    assert any(u.endswith(f"/p/{project.slug}/settings/") for u in admin_urls)
    assert [s for u, _, s in shots["ann"] if u.endswith(f"/p/{project.slug}/settings/")] == [403]  # not linked
    assert "<img" in (tmp_path / "index.html").read_text()
