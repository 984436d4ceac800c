"""Hostile content on every page and htmx fragment, in real headless Chromium.

The payload corpus (tests/security/payloads.py: script tags, event handlers, javascript:
URLs, SVG/MathML, template syntax, htmx attributes, CSS injection, RTL/zero-width, a 1 MB
single line) fills item texts and prompts, variant texts, notes, guidelines, harm
categories, project and user names, token names, job errors and round logs. Every page is
rendered once per role with all payloads on it at once. Nothing may execute: no dialog, no
call to ``window.__xss`` (exposed by the test in every frame), no request to ``/xss/`` or to
any host but the live server, no payload-born element (inline script, ``on*`` attribute,
``javascript:`` URL, ``hx-*`` from item text) in the DOM, and the layout holds (no
horizontal overflow from the 1 MB line, the action buttons visible and on top).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client
from security.conftest import build_world
from workbench.test_browser import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORT = {"width": 1280, "height": 900}
OVERFLOW_TOLERANCE = 16  # px: a scrollbar's width

# Elements and attributes that only a payload could have put there (the app's own templates
# use none of them: strict CSP, every hx-* link is the app's own, no javascript: URLs).
DOM_AUDIT = """() => {
  const URL_ATTRS = ['href', 'src', 'action', 'formaction', 'data', 'poster', 'srcdoc', 'background', 'xlink:href',
                     'hx-get', 'hx-post', 'hx-put', 'hx-patch', 'hx-delete', 'data-hx-get', 'data-hx-post'];
  const bad = [];
  for (const el of document.querySelectorAll('*')) {
    if (el.tagName === 'SCRIPT' && !el.src) bad.push('inline script');
    if (['IFRAME', 'OBJECT', 'EMBED', 'BASE', 'META'].includes(el.tagName) && el.closest('body')) bad.push(el.tagName);
    for (const a of el.attributes) {
      const v = a.value.trim().toLowerCase();
      if (a.name.startsWith('on')) bad.push(el.tagName + ' ' + a.name);
      const hostile = v.startsWith('javascript:') || v.includes('/xss/') || v.includes('evil.example');
      if (URL_ATTRS.includes(a.name) && hostile) bad.push(el.tagName + ' ' + a.name + '=' + v.slice(0, 60));
      if (a.name === 'hx-on' || a.name.startsWith('hx-on')) bad.push(el.tagName + ' ' + a.name);
      if (a.name === 'style') bad.push(el.tagName + ' style=');
    }
  }
  const width = document.documentElement.scrollWidth;
  const wide = [];
  if (width > window.innerWidth) {
    for (const el of document.querySelectorAll('body *')) {
      const r = el.getBoundingClientRect();
      if (r.right > window.innerWidth + 16) wide.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
    }
  }
  return {bad: bad.slice(0, 20), width, inner: window.innerWidth, wide: wide.slice(0, 6)};
}"""

# (path, minimum role, htmx fragment too?, selector of key buttons that must be visible and on top)
PAGES = [
    ("/", "annotator", False, None),
    ("/p/safety/", "annotator", False, None),
    ("/p/safety/guidelines/", "annotator", False, None),
    ("/p/safety/label/", "annotator", True, "button[data-key=h]"),
    ("/p/responses/label/", "annotator", True, "button[data-key=h]"),
    ("/p/safety/stats/", "annotator", True, None),
    ("/p/safety/rounds/", "annotator", True, None),
    ("/p/safety/rounds/{round}/", "annotator", True, None),
    ("/p/safety/rounds/{failed_round}/", "annotator", True, None),
    ("/p/safety/review/", "reviewer", True, "button[data-key=a]"),
    ("/p/safety/review/{prediction}/similar/", "reviewer", False, None),
    ("/p/safety/items/", "annotator", True, None),
    ("/p/safety/items/?q=script&sort=p_harmful", "annotator", True, None),
    ("/p/safety/items/{item}/", "annotator", False, None),
    ("/p/safety/items/{item}/similar/", "annotator", False, None),
    ("/p/safety/label/recent/", "annotator", False, None),
    ("/p/safety/variants/", "reviewer", True, None),
    ("/p/safety/augment/", "reviewer", False, None),
    ("/p/safety/augment/jobs/{augment_job}/", "reviewer", True, None),
    ("/p/safety/augment/jobs/{adversarial_job}/", "reviewer", True, None),
    ("/p/safety/refine/", "reviewer", True, None),
    ("/p/safety/refine/{refine_job}/", "reviewer", True, None),
    ("/p/safety/import/", "admin", False, None),
    ("/p/safety/import/jobs/", "admin", False, None),
    ("/tokens/", "annotator", False, None),
    ("/p/safety/tokens/", "admin", False, None),
    ("/p/safety/settings/", "admin", False, None),  # hostile name, categories and guidelines in the form
    ("/p/safety/exports/", "admin", True, None),
    ("/p/safety/no-such-page/", "annotator", False, None),  # the styled 404 with the project menu
]
RANK = {"annotator": 0, "reviewer": 1, "admin": 2}


@pytest.fixture
def hostile(project, response_project, users, settings):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
    return build_world(project, response_project, users, hostile=True)


def _context_for(browser, live_server, user, events):  # noqa: F811
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport=VIEWPORT)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    context.expose_function("__xss", lambda n=None: events["xss"].append(n))
    host = urlsplit(live_server.url).hostname

    def on_request(request):
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob", "about"):
            return
        if parts.hostname != host or "/xss/" in parts.path:
            events["requests"].append(request.url[:200])

    context.on("request", on_request)
    return context


def _visit(page, url: str, events: dict, *, buttons: str | None, layout: bool = True):
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status < 500, (url, response and response.status)
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(150)  # let "load"/"every 1s" triggers and timers fire, if any exist
    audit = page.evaluate(DOM_AUDIT)
    if audit["bad"]:
        events["dom"].append((url, audit["bad"]))
    if layout and audit["width"] > audit["inner"] + OVERFLOW_TOLERANCE:
        events["layout"].append((url, f"scrollWidth {audit['width']} > viewport {audit['inner']}", audit["wide"]))
    if buttons:
        button = page.locator(buttons).first
        if not button.is_visible():
            events["layout"].append((url, f"{buttons} not visible"))
        else:
            button.scroll_into_view_if_needed()
            box = button.bounding_box()
            on_top = page.evaluate(
                "([sel, x, y]) => { const el = document.elementFromPoint(x, y); return !!el && !!el.closest(sel); }",
                [buttons, box["x"] + box["width"] / 2, box["y"] + min(box["height"] / 2, 5)],
            )
            if box["x"] + box["width"] > VIEWPORT["width"] or not on_top:
                events["layout"].append((url, f"{buttons} off-screen or covered ({box})"))


def test_hostile_content_is_inert_on_every_page_and_fragment(browser, live_server, hostile, users):  # noqa: F811
    events = {"xss": [], "dialogs": [], "requests": [], "dom": [], "layout": [], "errors": [], "visited": 0}
    ids = hostile.ids
    for role in ("annotator", "reviewer", "admin"):
        context = _context_for(browser, live_server, users[role], events)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("dialog", lambda d: (events["dialogs"].append(d.message), d.dismiss()))
        page.on("pageerror", lambda exc: events["errors"].append(str(exc)[:200]))
        for path, minimum, fragment, buttons in PAGES:
            # Each role renders the pages it may see; admin renders all (it sees every action button).
            if RANK[role] < RANK[minimum] or (role != "admin" and RANK[minimum] < RANK[role]):
                continue
            url = live_server.url + path.format(**ids)
            _visit(page, url, events, buttons=buttons)
            events["visited"] += 1
            if fragment:
                # A fragment opened as a document has no stylesheet: checked for execution, not layout
                # (its layout inside the page is what the full-page visit checks).
                page.set_extra_http_headers({"HX-Request": "true"})
                _visit(page, url, events, buttons=None, layout=False)
                page.set_extra_http_headers({})
                events["visited"] += 1
        context.close()

    assert events["visited"] >= 40
    assert not events["xss"], f"payloads executed: {events['xss'][:20]}"
    assert not events["dialogs"], events["dialogs"][:5]
    assert not events["requests"], f"outbound or /xss/ requests: {events['requests'][:10]}"
    assert not events["dom"], f"payload-born elements/attributes: {events['dom'][:5]}"
    assert not events["layout"], events["layout"]
    assert not events["errors"], f"JavaScript errors: {events['errors'][:5]}"


def test_keyboard_labeling_still_works_with_hostile_categories(browser, live_server, hostile, users):  # noqa: F811
    """Category names full of markup become inert radio labels; keys 1-9 and h still label the item."""
    from annotations.models import Annotation

    events = {"xss": [], "requests": []}
    context = _context_for(browser, live_server, users["annotator"], events)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server.url}/p/safety/label/")
    first = page.locator("article.item-card").get_attribute("data-item")
    page.keyboard.press("2")
    page.keyboard.press("h")
    page.wait_for_function(
        "prev => { const el = document.querySelector('article.item-card');"
        " return el && el.dataset.item !== prev && !document.querySelector('.htmx-request'); }",
        arg=first,
    )
    context.close()
    annotation = Annotation.objects.get(item_id=int(first), annotator=users["annotator"])
    assert annotation.label == "harmful" and annotation.category == hostile_category(2)
    assert not events["xss"] and not dialogs and not events["requests"]


def hostile_category(key: int) -> str:
    from security.payloads import payloads

    return ["violence", *payloads()[:8]][key - 1]


def test_the_instrumentation_sees_an_executed_payload(browser, live_server, users, db):  # noqa: F811
    """Canary: a page without escaping or CSP trips every detector the suite relies on."""
    events = {"xss": [], "requests": []}
    context = _context_for(browser, live_server, users["annotator"], events)
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_content(
        '<img src="/xss/7" onerror="window.__xss(7)"><script>alert(1)</script><img src="http://evil.example/x.png">'
    )
    page.wait_for_timeout(300)
    audit = page.evaluate(DOM_AUDIT)
    context.close()
    assert 7 in events["xss"] and dialogs == ["1"]
    assert any("evil.example" in url for url in events["requests"])
    assert any("onerror" in b for b in audit["bad"]) and "inline script" in audit["bad"]
