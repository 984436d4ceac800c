"""Screenshot every page for every role, so a reviewer can look at all of them at once.

    .venv/bin/python scripts/screenshots.py                       # the demo at http://127.0.0.1:8000/
    .venv/bin/python scripts/screenshots.py --url http://host:port/ --out var/screenshots \\
        --account annotator:PASSWORD --account reviewer:PASSWORD --account admin:PASSWORD

Accounts default to ``var/demo-passwords.txt`` (written by ``manage.py demo_setup``). For each
account it logs in, then visits every same-site page reachable from the home page within
``--depth`` clicks (links only: no form is submitted, logout and downloads are skipped), plus the
error pages (403, 404, 405), and writes ``<out>/<account>/<nn>-<page>.png`` (full page) and
``<out>/index.html`` with every shot side by side. The folder is not committed (``var/`` is ignored).
Needs Playwright and Chromium (``make browsers``).
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path
from urllib.parse import urljoin, urlparse

CHROMIUM = "/usr/bin/chromium"
SKIP = re.compile(r"/(accounts/logout|admin/|api/|download/|static/)|\.(jsonl|gz|json)$")
ERROR_PATHS = ("/no/such/page/",)  # 404 for everyone; 403/405 come from the per-project pages below


def _accounts(args, root: Path) -> list[tuple[str, str]]:
    if args.account:
        return [tuple(a.split(":", 1)) for a in args.account]
    path = root / "var" / "demo-passwords.txt"
    if not path.exists():
        sys.exit(f"No accounts: pass --account NAME:PASSWORD or run `make demo` first ({path} missing).")
    return [tuple(line.split(None, 1)) for line in path.read_text().splitlines() if line and not line.startswith("#")]


def _name(url: str) -> str:
    path = urlparse(url).path.strip("/") or "home"
    query = urlparse(url).query
    return re.sub(r"[^a-zA-Z0-9]+", "-", path + ("-" + query if query else ""))[:80].strip("-")


def _links(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
    out = []
    for href in hrefs:
        url = urljoin(page.url, href).split("#", 1)[0]
        if urlparse(url).netloc == urlparse(base).netloc and not SKIP.search(urlparse(url).path):
            out.append(url)
    return out


def capture(
    base: str, accounts: list[tuple[str, str]], out: Path, *, depth: int = 2, max_pages: int = 80
) -> dict[str, list[tuple[str, str, int]]]:
    """Log in as each account and screenshot the reachable pages; returns {account: [(url, png, status)]}."""
    from playwright.sync_api import sync_playwright

    shots: dict[str, list[tuple[str, str, int]]] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        for username, password in accounts:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.goto(urljoin(base, "/accounts/login/"))
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda url: "/accounts/login/" not in url)
            folder = out / username
            folder.mkdir(parents=True, exist_ok=True)
            seen: set[str] = set()
            frontier = [urljoin(base, "/")]
            pages: list[tuple[str, str, int]] = []
            for level in range(depth + 1):
                following = []
                for url in frontier:
                    if url in seen or len(pages) >= max_pages:
                        continue
                    seen.add(url)
                    response = page.goto(url)
                    page.wait_for_load_state("networkidle")
                    png = folder / f"{len(pages):02d}-{_name(url)}.png"
                    page.screenshot(path=str(png), full_page=True)
                    pages.append((url, str(png.relative_to(out)), response.status if response else 0))
                    if level < depth:
                        following += _links(page, base)
                        # the POST-only start URLs answer a GET with the styled 405 page
                        following += [u + "start/" for u in _links(page, base) if re.search(r"/p/[^/]+/rounds/$", u)]
                frontier = following
            slugs = sorted({m.group(1) for u in seen for m in [re.search(r"/p/([^/]+)/", u)] if m})
            # a page this role may not open (403 for non-admins, the settings page for admins)
            forbidden = f"/p/{slugs[0]}/settings/" if slugs else None
            extra = [forbidden] if forbidden and urljoin(base, forbidden) not in seen else []
            for path in [*extra, *ERROR_PATHS]:
                url = urljoin(base, path)
                response = page.goto(url)
                png = folder / f"{len(pages):02d}-error-{_name(url)}.png"
                page.screenshot(path=str(png), full_page=True)
                pages.append((url, str(png.relative_to(out)), response.status if response else 0))
            shots[username] = pages
            context.close()
        browser.close()
    _index(out, shots)
    return shots


def _index(out: Path, shots: dict[str, list[tuple[str, str, int]]]) -> None:
    rows = []
    for username, pages in shots.items():
        cells = "".join(
            f'<figure><a href="{html.escape(png)}"><img src="{html.escape(png)}" loading="lazy" '
            f'width="320"></a><figcaption>{status} {html.escape(url)}</figcaption></figure>'
            for url, png, status in pages
        )
        rows.append(f"<h2>{html.escape(username)} ({len(pages)} pages)</h2><div class=grid>{cells}</div>")
    (out / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>Umbra screenshots</title><style>"
        ".grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;width:320px;font:12px sans-serif}"
        "img{border:1px solid #ccc}</style><h1>Umbra: every page, every role</h1>" + "".join(rows)
    )


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000/")
    parser.add_argument("--out", type=Path, default=root / "var" / "screenshots")
    parser.add_argument("--account", action="append", help="NAME:PASSWORD (repeatable); default: the demo's")
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--max-pages", type=int, default=80)
    args = parser.parse_args(argv)
    shots = capture(args.url, _accounts(args, root), args.out, depth=args.depth, max_pages=args.max_pages)
    total = sum(len(p) for p in shots.values())
    print(f"{total} screenshots of {len(shots)} accounts in {args.out} (open {args.out / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
