"""Print the short "Umbra is ready" block once the dev server answers (``make run``).

It comes after the servers' own banners, so the URL, the demo accounts and where their
passwords are stay on screen instead of scrolling away under the server output.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def wait_for(url: str, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - a local http URL we built
                return True
        except urllib.error.HTTPError:
            return True  # it answered (a redirect to the login page is fine)
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return False


def banner(url: str, var_dir: Path) -> str:
    passwords = var_dir / "demo-passwords.txt"
    where = (
        f"{passwords} (mode 0600: only you can read it)"
        if passwords.exists()
        else "set when the demo accounts were first created (UMBRA_DEMO_<NAME>_PASSWORD)"
    )
    lines = [
        f"Umbra is ready: {url}",
        "Demo accounts: annotator, reviewer, admin (one per role in both demo projects)",
        f"Their passwords: {where}",
        "Worker log: var/log/worker.log · Ctrl-C stops the server and the worker",
    ]
    width = max(len(line) for line in lines) + 2
    rule = "=" * width
    return "\n".join(["", rule, *(f" {line}" for line in lines), rule, ""])


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000/"
    var_dir = Path(os.environ.get("UMBRA_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
    if not wait_for(url):
        print(f"Umbra did not answer at {url} within two minutes; see the server output above.", file=sys.stderr)
        return 1
    time.sleep(0.5)  # let the server log the probe request first, so the block is the last thing shown
    print(banner(url, var_dir), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
