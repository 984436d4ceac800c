"""Load benchmark: 1,000,000 items in PostgreSQL, gunicorn (4 workers) on loopback, locust headless.

Phase 1: ``--reviewers`` simulated reviewers label on the workbench (next item + submit, with a
keyboard-fast think time) for ``--duration`` s. Phase 2: ``--moderators`` clients call
``/v1/moderations`` back to back for ``--duration`` s. Reports throughput, p50/p95/p99, errors,
the labels stored vs. submits acknowledged, and the load average (the CPU is shared).

Everything runs in a dedicated database (``--db``, created here; never a shared one) and on
127.0.0.1 only; each phase is bounded by ``--duration`` and the whole run by ``--timeout``.
The served model is the engine's serving format on the bundled MiniLM backbone, saved
untrained (scoring cost does not depend on the weights; see benchmarks/moderation_latency.py).

Usage::

    nice .venv/bin/python benchmarks/load/run_load.py --out benchmarks/results/load.md
    # again, without reloading the million items:
    nice .venv/bin/python benchmarks/load/run_load.py --reuse --out benchmarks/results/load.md
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
PG = "postgres://postgres@127.0.0.1:5432"
SLUG = "load"


def _env(db: str) -> dict:
    return {
        "DATABASE_URL": f"{PG}/{db}",
        "DJANGO_SECRET_KEY": "load-benchmark-only-" + "k" * 40,
        "DJANGO_DEBUG": "0",
        "UMBRA_DEMO": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_HSTS_SECONDS": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/7",
        "LOG_LEVEL": "WARNING",
        # Throttles are per token; the benchmark measures capacity, not the rate limits.
        "UMBRA_API_THROTTLE_TOKEN": "1000000/min",
        "UMBRA_API_THROTTLE_MODERATION": "1000000/min",
        "UMBRA_VAR_DIR": str(ROOT / "var" / "load"),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HUB_OFFLINE": "1",
    }


def _create_db(db: str, reuse: bool) -> bool:
    """Create ``db`` (dropping an old one unless ``reuse``); True if it already held the data."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone()
        if exists and reuse:
            return True
        if exists:
            conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    return False


def _load_items(project, n_items: int, n_seed: int) -> float:
    """COPY ``n_items`` items (the first ``n_seed`` in the seed split, the rest in the pool)."""
    from django.db import connection

    started = time.monotonic()
    now = datetime.now(UTC)
    cols = (
        "project_id, text, prompt, content_hash, split, bench_name, source, external_id, metadata, created_at, "
        "human_label, human_category, excluded, annotation_count"
    )
    words = "how to make bake write explain hack steal help story weather recipe code please the a my".split()
    with connection.cursor() as cur, cur.cursor.copy(f"COPY annotations_item ({cols}) FROM STDIN") as cp:
        for i in range(n_items):
            text = f"load item {i}: " + " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(12))
            split = "seed" if i < n_seed else "pool"
            cp.write_row(
                (
                    project.pk,
                    text,
                    "",
                    hashlib.sha256(text.encode()).hexdigest(),
                    split,
                    "",
                    "load",
                    "",
                    "{}",
                    now,
                    "",
                    "",
                    False,
                    0,
                )
            )
    with connection.cursor() as cur:
        cur.execute("ANALYZE annotations_item")
    return time.monotonic() - started


def _setup(args) -> dict:
    os.environ.update(_env(args.db))
    reused = _create_db(args.db, args.reuse)
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_app.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from annotations.models import Item, ModelVersion, Project, Role, TrainingRound
    from annotations.services.projects import membership_set, project_create
    from annotations.services.tokens import api_token_create

    call_command("migrate", verbosity=0)
    info = {"reused": reused, "copy_s": None}
    project = Project.objects.filter(slug=SLUG).first()
    if project is None:
        project = project_create(slug=SLUG, name="Load", task=Project.Task.PROMPT, categories=["violence", "fraud"])
        info["copy_s"] = _load_items(project, args.items, args.seed_items)
    User = get_user_model()
    sessions, tokens = [], []
    for i in range(max(args.reviewers, args.moderators)):
        user, _ = User.objects.get_or_create(username=f"load-rev{i}")
        membership_set(project=project, user=user, role=Role.REVIEWER)
        client = Client()
        client.force_login(user)
        sessions.append(client.cookies["sessionid"].value)
        tokens.append(api_token_create(user=user, name=f"load {time.time():.0f}", created_by=user).key)
    if not ModelVersion.objects.filter(project=project, is_active=True).exists():
        from benchmarks.moderation_latency import _model

        folder = ROOT / "var" / "load" / "model"
        folder.mkdir(parents=True, exist_ok=True)
        path = _model(folder)
        rnd = TrainingRound.objects.create(project=project, algorithm="multimatch", status="succeeded")
        ModelVersion.objects.create(project=project, training_round=rnd, path=path, threshold=0.5, is_active=True)
    info["items"] = Item.objects.filter(project=project).count()
    info["seed_unlabeled"] = Item.objects.filter(project=project, split="seed", annotation_count=0).count()
    creds = ROOT / "var" / "load" / "credentials.json"
    creds.write_text(json.dumps({"slug": SLUG, "sessions": sessions, "tokens": tokens}))
    info["credentials"] = str(creds)
    return info


def _wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not listen on 127.0.0.1:{port}")


def _locust(args, user_class: str, users: int, prefix: Path, creds: str) -> dict:
    env = {**os.environ, "UMBRA_LOAD_CREDENTIALS": creds}
    cmd = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(ROOT / "benchmarks" / "load" / "locustfile.py"),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{args.duration}s",
        "--stop-timeout",
        "5",
        "--host",
        f"http://127.0.0.1:{args.port}",
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        user_class,
    ]
    load_before = os.getloadavg()
    done = subprocess.run(cmd, env=env, timeout=args.duration + 120, check=False, capture_output=True, text=True)
    if not Path(f"{prefix}_stats.csv").exists():
        raise RuntimeError(f"locust failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    load_after = os.getloadavg()
    rows = {}
    with open(f"{prefix}_stats.csv") as fh:
        for row in csv.DictReader(fh):
            rows[row["Name"]] = row
    return {"rows": rows, "load_before": load_before, "load_after": load_after}


def _fmt_rows(result: dict, duration: int) -> list[str]:
    out = [
        "| request | count | errors | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["rows"].items():
        out.append(
            f"| {name} | {r['Request Count']} | {r['Failure Count']} | {float(r['Requests/s']):.1f} | "
            f"{r['50%']} | {r['95%']} | {r['99%']} | {float(r['Max Response Time']):.0f} |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="umbra_load")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--seed-items", type=int, default=200_000)
    parser.add_argument("--reviewers", type=int, default=50)
    parser.add_argument("--moderators", type=int, default=20)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--reuse", action="store_true", help="keep the database if it exists (skip the COPY)")
    parser.add_argument("--timeout", type=int, default=1800, help="hard limit for the whole run (s)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "load.md"))
    args = parser.parse_args()
    signal.alarm(args.timeout)

    t0 = time.monotonic()
    info = _setup(args)
    print(f"setup done in {time.monotonic() - t0:.0f} s: {info}", flush=True)
    from annotations.models import Annotation

    labels_before = Annotation.objects.filter(item__project__slug=SLUG).count()
    from django.db import connections

    connections.close_all()
    work = ROOT / "var" / "load"
    gunicorn = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "moderation_app.wsgi:application",
            "-b",
            f"127.0.0.1:{args.port}",
            "-w",
            str(args.workers),
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        start_new_session=True,
    )
    try:
        _wait_port(args.port)
        import urllib.request

        for _ in range(args.workers * 3):  # each worker loads the model once
            req = urllib.request.Request(
                f"http://127.0.0.1:{args.port}/v1/moderations",
                method="POST",
                data=json.dumps({"input": "warm up", "project": SLUG}).encode(),
                headers={
                    "Authorization": f"Bearer {json.loads(Path(info['credentials']).read_text())['tokens'][0]}",
                    "Content-Type": "application/json",
                },
            )
            urllib.request.urlopen(req, timeout=120).read()
        review = _locust(args, "ReviewerUser", args.reviewers, work / "reviewers", info["credentials"])
        labels_after = Annotation.objects.filter(item__project__slug=SLUG).count()
        from django.db.models import F

        from annotations.models import Item

        overlabeled = Item.objects.filter(
            project__slug=SLUG, annotation_count__gt=F("project__annotations_per_item")
        ).count()
        connections.close_all()
        moderation = _locust(args, "ModerationClient", args.moderators, work / "moderation", info["credentials"])
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        gunicorn.wait(timeout=30)

    submit = review["rows"].get("submit label + next item", {})
    acknowledged = int(submit.get("Request Count", 0)) - int(submit.get("Failure Count", 0))
    lines = [
        "# Load benchmark (workbench + moderation)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/load/run_load.py` "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, shared with other "
        "engineers' jobs; Python " + platform.python_version() + ").",
        "",
        f"- Data: {info['items']:,} items in a dedicated PostgreSQL database (COPY "
        + (f"{info['copy_s']:.0f} s" if info["copy_s"] else "reused")
        + f"), {args.seed_items:,} in the seed split.",
        f"- Server: gunicorn, {args.workers} sync workers, 127.0.0.1, DEBUG off, PostgreSQL on the same machine.",
        f"- Load generator: locust (same machine, competes for the same CPUs), {args.duration} s per phase.",
        "",
        f"## Phase 1: {args.reviewers} reviewers labeling (next item + submit, think time "
        f"{os.environ.get('UMBRA_LOAD_THINK_MIN', '0.5')}–{os.environ.get('UMBRA_LOAD_THINK_MAX', '1.5')} s)",
        "",
        *_fmt_rows(review, args.duration),
        "",
        f"Labels stored: {labels_after - labels_before:,}; submits acknowledged (200 with the next card): "
        f"{acknowledged:,} (stored − acknowledged must lie in [0, {args.reviewers}]: requests still in flight when "
        f"locust stops are stored but not counted) → "
        f"{'OK' if 0 <= labels_after - labels_before - acknowledged <= args.reviewers else 'MISMATCH'}; "
        f"items with more labels than the project's overlap: {overlabeled}.",
        f"Load average (1 min) before/after: {review['load_before'][0]:.2f} / {review['load_after'][0]:.2f}.",
        "",
        f"## Phase 2: {args.moderators} moderation clients (no think time, one text per request)",
        "",
        *_fmt_rows(moderation, args.duration),
        "",
        f"Load average (1 min) before/after: {moderation['load_before'][0]:.2f} / {moderation['load_after'][0]:.2f}.",
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
