"""Server CPU per request on the labeling and review hot paths, with a profiler summary.

A realistic project in its own PostgreSQL database (``--db-url``; created here, or reused with
``--reuse``): ``--items`` items (20 % seed, 10 % test, the rest pool), one succeeded round
with a prediction for every pool item and an active model version, an annotator and a
reviewer. Requests go through Django's test ``Client`` in this process (middleware, views,
templates, SQL; no network), DEBUG off, and for each kind this reports

* the Django process's CPU ms per request (``time.process_time``: the view, templates, ORM and
  the test client itself), median and p90;
* PostgreSQL's CPU ms per request (the backend process serving this connection, from
  ``/proc/<pid>/stat``; a mean, as /proc counts 10 ms ticks);
* SQL statements per request;
* a cProfile summary (cumulative time, the app's own functions and the template/ORM layers).

Kinds: the next-item card (htmx GET), a label submit that renders the next card (htmx POST),
a review action (htmx POST approve) and the review page (full GET). Target: ≤ 10 ms server
CPU each, so two cores hold ≥ 100 submits/s. Usage::

    .venv/bin/python benchmarks/request_cpu.py --out benchmarks/results/request_cpu.md
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SLUG = "reqcpu"


def _setup_env(db_url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789abcdef-" + "k" * 20,
            "DJANGO_DEBUG": "0",
            "UMBRA_DEMO": "0",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
            "DJANGO_SETTINGS_MODULE": "moderation_app.settings",
            "LOG_LEVEL": "WARNING",
        }
    )


def _build(n_items: int) -> None:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from annotations.models import Item, ModelVersion, Prediction, Role, TrainingRound
    from annotations.services.projects import membership_set, project_create

    rng = random.Random(0)
    words = "how do i make bake explain write a the my for with bank password recipe poem story car code".split()
    project = project_create(slug=SLUG, name="Request CPU", categories=["violence", "fraud", "hate"])
    user_model = get_user_model()
    for name, role in (("rc_annotator", Role.ANNOTATOR), ("rc_reviewer", Role.REVIEWER)):
        membership_set(project=project, user=user_model.objects.create_user(name, password="x"), role=role)
    n_seed, n_test = n_items // 5, n_items // 10
    items = []
    for i in range(n_items):
        split = "seed" if i < n_seed else "test" if i < n_seed + n_test else "pool"
        text = " ".join(rng.choice(words) for _ in range(rng.randint(6, 40))) + f" #{i}"
        items.append(Item(project=project, text=text, content_hash=f"{i:064x}", split=split, source="bench"))
    Item.objects.bulk_create(items, batch_size=5000)
    now = timezone.now()
    rnd = TrainingRound.objects.create(
        project=project, algorithm="multimatch", status="succeeded", started_at=now, finished_at=now
    )
    ModelVersion.objects.create(project=project, training_round=rnd, path="/nonexistent", is_active=True, number=1)
    preds = []
    for item in Item.objects.filter(project=project, split="pool").only("id"):
        p = rng.random()
        preds.append(
            Prediction(
                item=item,
                training_round=rnd,
                p_harmful=p,
                head_probs=[p, p],
                pseudo_label="harmful" if p >= 0.5 else "unharmful",
                used=True,
                weight=1.0,
                agreement=rng.choice(["disagree_both", "low_agree", "high_agree"]),
                margin_history=[0.1, -0.2],
                review_priority=rng.random() * 3,
                review_reason="heads disagree",
            )
        )
    Prediction.objects.bulk_create(preds, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cur:  # fresh statistics, as autovacuum would leave them
        cur.execute("ANALYZE")


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db-url", default="postgres://postgres@127.0.0.1:5432/umbra_bench_reqcpu")
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("-n", type=int, default=100, help="timed requests per kind")
    ap.add_argument("--profile", type=int, default=40, help="requests per kind under cProfile (0: none)")
    ap.add_argument("--reuse", action="store_true", help="keep an already built database")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    _setup_env(args.db_url)
    dbname = args.db_url.rsplit("/", 1)[1]
    admin = args.db_url.rsplit("/", 1)[0] + "/postgres"
    exists = (
        subprocess.run(
            ["psql", admin, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{dbname}'"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        == "1"
    )
    if not (args.reuse and exists):
        subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {dbname}"], check=True)
        subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {dbname}"], check=True)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    from annotations.models import Item, Project

    if not Project.objects.filter(slug=SLUG).exists():
        t = time.perf_counter()
        _build(args.items)
        print(f"built {args.items} items in {time.perf_counter() - t:.0f} s", flush=True)
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    project = Project.objects.get(slug=SLUG)
    user_model = get_user_model()
    annotator, reviewer = Client(), Client()
    annotator.force_login(user_model.objects.get(username="rc_annotator"))
    reviewer.force_login(user_model.objects.get(username="rc_reviewer"))
    hx = {"HTTP_HX_REQUEST": "true"}
    label_url, queue_url = f"/p/{SLUG}/label/", f"/p/{SLUG}/review/"

    def ok(resp, status=200):
        assert resp.status_code == status, (resp.status_code, resp.content[:300])
        return resp

    def held_item() -> int:
        """The item leased to the annotator (outside the timed request)."""
        for _ in range(2):
            pk = (
                Item.objects.filter(project=project, claimed_by__username="rc_annotator")
                .values_list("pk", flat=True)
                .first()
            )
            if pk is not None:
                return pk
            annotator.get(label_url, **hx)
        raise RuntimeError("nothing left to label: rebuild with more items")

    def next_review_id() -> int:
        """The head of the review queue (outside the timed request)."""
        from annotations.selectors.predictions import active_review_round, review_queue

        return review_queue(training_round=active_review_round(project=project)).values_list("pk", flat=True)[0]

    # Each kind: (prepare outside the clock -> args, the timed request).
    kinds = {
        "next item (htmx GET of the card)": (lambda: None, lambda _: ok(annotator.get(label_url, **hx))),
        "label submit + next card (htmx POST)": (
            held_item,
            lambda pk: ok(
                annotator.post(
                    label_url,
                    {"item": pk, "label": random.choice(["harmful", "unharmful"]), "client_token": uuid.uuid4().hex},
                    **hx,
                )
            ),
        ),
        "review action (htmx POST approve)": (
            next_review_id,
            lambda pk: ok(
                reviewer.post(
                    f"{queue_url}{pk}/",
                    {"action": "approve", "client_token": uuid.uuid4().hex, "next": queue_url},
                    **hx,
                )
            ),
        ),
        "review page (full GET)": (lambda: None, lambda _: ok(reviewer.get(queue_url))),
    }
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    rows, profiles = [], []
    load_before = os.getloadavg()[0]
    for name, (prepare, request) in kinds.items():
        for _ in range(3):
            request(prepare())  # warm-up
        counter = _Counter()
        for _ in range(3):
            arg = prepare()
            with connection.execute_wrapper(counter):
                request(arg)
        counter.n = round(counter.n / 3)
        cpu, pg_total = [], 0.0
        for _ in range(args.n):
            arg = prepare()
            pg0, t0 = _proc_cpu(backend), time.process_time()
            request(arg)
            cpu.append((time.process_time() - t0) * 1000)
            pg_total += _proc_cpu(backend) - pg0
        pg_ms = pg_total / args.n * 1000
        rows.append((name, statistics.median(cpu), _pct(cpu, 0.9), pg_ms, counter.n))
        print(
            f"{name}: {statistics.median(cpu):.2f} ms CPU (p90 {_pct(cpu, 0.9):.2f}), PostgreSQL {pg_ms:.2f} ms, "
            f"{counter.n} queries",
            flush=True,
        )
        if args.profile:
            prepared = [prepare() for _ in range(1)]
            prof = cProfile.Profile()
            for _ in range(args.profile):
                arg = prepared[0] if name.startswith(("next", "review page")) else prepare()
                prof.enable()
                request(arg)
                prof.disable()
            buf = io.StringIO()
            stats = pstats.Stats(prof, stream=buf)
            stats.sort_stats("cumulative").print_stats(
                r"annotations/|template/(base|loader_tags|defaulttags)|"
                r"models/(query|sql/compiler)|handlers/base",
                18,
            )
            profiles.append((name, buf.getvalue()))
    load_after = os.getloadavg()[0]

    lines = [
        "# Server CPU per request: labeling and review",
        "",
        f"{args.items:,} items ({args.items // 5:,} seed, {args.items // 10:,} test, the rest pool with one "
        "prediction each in the active round), PostgreSQL, DEBUG off, Django test client in-process. "
        f"{args.n} timed requests per kind; load average {load_before:.1f} before / {load_after:.1f} after "
        "(shared 2-core machine: CPU time, not wall time).",
        "",
        "| request | Django CPU median (ms) | p90 (ms) | PostgreSQL CPU (ms) | server CPU (ms) | queries | ≤ 10 ms? |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, med, p90, pg, q in rows:
        total = med + pg
        lines.append(
            f"| {name} | {med:.2f} | {p90:.2f} | {pg:.2f} | {total:.2f} | {q} | {'yes' if total <= 10 else '**no**'} |"
        )
    lines += [
        "",
        "Django CPU includes the test client's own work (building the request, reading the response); "
        "PostgreSQL CPU is the mean of the connection's backend process over the same requests.",
        "",
        f"Reproduce: `.venv/bin/python benchmarks/request_cpu.py --items {args.items}`.",
        "",
    ]
    for name, text in profiles:
        lines += [
            f"## Profile: {name} ({args.profile} requests, cumulative)",
            "",
            "```",
            "\n".join(line for line in text.strip().splitlines() if line.strip())[:4000],
            "```",
            "",
        ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
