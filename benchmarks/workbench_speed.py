"""Workbench speed at scale: 1,000,000 pool items and 100,000 predictions per round in PostgreSQL.

Builds a separate benchmark database (rows loaded with ``COPY``), then measures server time
in-process with Django's test ``Client`` (middleware, views, templates, SQL; no network):

- the review queue page (full page, 20 cards) and its htmx fragment with filters
- the seed-labeling next-item fragment
- label submit (the no-JS POST that stores the label and redirects), and the htmx submit
  that also renders the next item

Targets: p95 ≤ 50 ms for the queue page and next-item fragment, ≤ 30 ms for label submit.
It also prints ``EXPLAIN (ANALYZE, BUFFERS)`` of the queue query, which must walk
``prediction_queue_idx``. Results go to ``benchmarks/results/workbench_speed.md``.

    nice .venv/bin/python benchmarks/workbench_speed.py [--pool 1000000] [--predictions 100000] [--reuse]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORDS = (
    "how do i make bake explain write a the my for with without someone bank account password recipe poem "
    "story neighbour car phone email code python history science help quickly secretly safe dangerous"
).split()
AGREEMENTS = ["disagree_both", "disagree_one", "disagree_none", "low_agree", "agree_none", "high_agree"]


def setup_env(db_url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789abcdef-0123456789abcdef",
            "DJANGO_DEBUG": "0",
            "UMBRA_DEMO": "0",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_SECURE_COOKIES": "0",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
            "DJANGO_SETTINGS_MODULE": "moderation_app.settings",
        }
    )


def copy_rows(cursor, table: str, columns: list[str], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        buf = io.StringIO()
        for n, row in enumerate(rows, 1):
            buf.write("\t".join(row))
            buf.write("\n")
            if n % 50_000 == 0:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def build(args) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotations.models import ModelVersion, Role, TrainingRound
    from annotations.services.projects import membership_set, project_create

    rng = random.Random(0)
    project = project_create(slug="bench", name="Bench", categories=["violence", "fraud", "hate"])
    User = get_user_model()
    for name, role in (("bench_annotator", Role.ANNOTATOR), ("bench_reviewer", Role.REVIEWER)):
        membership_set(project=project, user=User.objects.create_user(name, password="x"), role=role)
    item_cols = [
        "project_id",
        "text",
        "prompt",
        "content_hash",
        "split",
        "bench_name",
        "source",
        "external_id",
        "metadata",
        "created_at",
        "human_label",
        "human_category",
        "excluded",
        "annotation_count",
    ]
    splits = [("seed", args.seed_items), ("test", args.test_items), ("pool", args.pool)]

    def items():
        i = 0
        for split, n in splits:
            for _ in range(n):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) + f" #{i}"
                # 5 % of the pool already carries a human label: the queue must skip those
                label = "harmful" if split == "pool" and rng.random() < 0.05 else ""
                yield [
                    str(project.pk),
                    text,
                    "",
                    f"{i:064x}",
                    split,
                    "",
                    "bench",
                    "",
                    "{}",
                    "2026-01-01 00:00:00+00",
                    label,
                    "",
                    "f",
                    "1" if label else "0",
                ]
                i += 1

    t = time.perf_counter()
    with connection.cursor() as cur:
        copy_rows(cur.cursor, "annotations_item", item_cols, items())
    print(f"COPY {sum(n for _, n in splits)} items in {time.perf_counter() - t:.1f}s", flush=True)
    with connection.cursor() as cur:
        cur.execute("SELECT min(id), max(id) FROM annotations_item WHERE split = 'pool'")
        lo, hi = cur.fetchone()
    pool_ids = list(range(lo, hi + 1))
    for _ in range(args.rounds):
        rnd = TrainingRound.objects.create(project=project, algorithm="multimatch", status="succeeded")
        ModelVersion.objects.filter(project=project).update(is_active=False)
        ModelVersion.objects.create(project=project, training_round=rnd, path="/bench", is_active=True)
        chosen = rng.sample(pool_ids, args.predictions)

        def preds(chosen=chosen, rnd=rnd):
            for item_id in chosen:
                p = rng.random()
                heads = [min(max(p + rng.uniform(-0.3, 0.3), 0), 1) for _ in range(2)]
                margins = "[" + ",".join(f"{rng.uniform(-1, 1):.3f}" for _ in range(6)) + "]"
                yield [
                    str(item_id),
                    str(rnd.pk),
                    f"{p:.4f}",
                    f"[{heads[0]:.4f},{heads[1]:.4f}]",
                    "harmful" if p >= 0.5 else "unharmful",
                    "t",
                    "1.0",
                    rng.choice(AGREEMENTS),
                    margins,
                    f"{rng.expovariate(1.0) * 3:.4f}",
                    "heads disagree; unstable margin",
                ]

        t = time.perf_counter()
        with connection.cursor() as cur:
            copy_rows(
                cur.cursor,
                "annotations_prediction",
                [
                    "item_id",
                    "training_round_id",
                    "p_harmful",
                    "head_probs",
                    "pseudo_label",
                    "used",
                    "weight",
                    "agreement",
                    "margin_history",
                    "review_priority",
                    "review_reason",
                ],
                preds(),
            )
        print(f"COPY {args.predictions} predictions for round {rnd.pk} in {time.perf_counter() - t:.1f}s", flush=True)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def timed(fn, n: int) -> tuple[list[float], list[float]]:
    """Wall-clock and this process's CPU milliseconds per call (CPU excludes PostgreSQL's own time)."""
    wall, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return wall, cpu


class QueryCounter:
    """Counts SQL statements (CaptureQueriesContext is reset by each request's request_started)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def measure(args) -> tuple[list[tuple], str]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from annotations.models import Item, Project
    from annotations.selectors.predictions import QueueFilters, active_review_round, review_queue

    # Not setup_test_environment(): its template instrumentation makes the Client copy every
    # rendered context, which would be timed as server work.
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    project = Project.objects.get(slug="bench")
    User = get_user_model()
    reviewer, annotator = Client(), Client()
    reviewer.force_login(User.objects.get(username="bench_reviewer"))
    annotator.force_login(User.objects.get(username="bench_annotator"))
    hx = {"HTTP_HX_REQUEST": "true"}
    queue_url, label_url = "/p/bench/review/", "/p/bench/label/"
    rows = []

    def check(resp, status=200):
        assert resp.status_code == status, (resp.status_code, resp.content[:300])

    def bench(name, fn, n, target):
        fn()  # warm-up (connection, templates)
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            fn()
        ms, cpu = timed(fn, n)
        rows.append((name, n, statistics.median(ms), pct(ms, 0.95), max(ms), pct(cpu, 0.95), counter.n, target))
        print(
            f"{name}: p50 {statistics.median(ms):.1f} ms, p95 {pct(ms, 0.95):.1f} ms, {counter.n} queries", flush=True
        )

    bench("review queue page (20 cards)", lambda: check(reviewer.get(queue_url)), args.n, 50)
    bench(
        "review queue fragment, filtered (agreement + label + p range)",
        lambda: check(reviewer.get(queue_url + "?agreement=disagree_both&label=harmful&p_min=0.6&p_max=0.95", **hx)),
        args.n,
        50,
    )
    bench("next-item fragment (seed labeling)", lambda: check(annotator.get(label_url, **hx)), args.n, 50)

    token = iter(range(10**9))

    def submit_plain():
        held = (
            Item.objects.filter(project=project, claimed_by__username="bench_annotator")
            .values_list("pk", flat=True)
            .first()
        )
        if held is None:
            annotator.get(label_url, **hx)
            held = (
                Item.objects.filter(project=project, claimed_by__username="bench_annotator")
                .values_list("pk", flat=True)
                .first()
            )
        return held

    # label submit: the item is leased before the clock starts, so only the POST is timed
    def one_submit(htmx: bool):
        item_id = submit_plain()
        data = {"item": item_id, "label": random.choice(["harmful", "unharmful"]), "client_token": f"b{next(token)}"}
        t, c = time.perf_counter(), time.process_time()
        resp = annotator.post(label_url, data, **(hx if htmx else {}))
        elapsed = ((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)
        check(resp, 200 if htmx else 302)
        return elapsed

    for name, htmx in (("label submit (POST, redirect)", False), ("label submit + next item (htmx POST)", True)):
        one_submit(htmx)
        pairs = [one_submit(htmx) for _ in range(args.n)]
        ms, cpu = [w for w, _ in pairs], [c for _, c in pairs]
        item_id = submit_plain()
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            annotator.post(
                label_url,
                {"item": item_id, "label": "harmful", "client_token": f"b{next(token)}"},
                **(hx if htmx else {}),
            )
        rows.append(
            (
                name,
                args.n,
                statistics.median(ms),
                pct(ms, 0.95),
                max(ms),
                pct(cpu, 0.95),
                counter.n,
                30 if not htmx else 50,
            )
        )
        print(f"{name}: p50 {statistics.median(ms):.1f} ms, p95 {pct(ms, 0.95):.1f} ms", flush=True)

    rnd = active_review_round(project=project)
    plan = review_queue(training_round=rnd)[:20].explain(analyze=True, buffers=True)
    plan_f = review_queue(
        training_round=rnd, filters=QueueFilters(agreement="disagree_both", label="harmful", p_min=0.6, p_max=0.95)
    )[:20].explain(analyze=True)
    from annotations.selectors.items import claimable_items

    plan_claim = claimable_items(project=project, user=User.objects.get(username="bench_annotator"), split="seed")[
        :1
    ].explain(analyze=True)
    explain = (
        "-- review queue, first page\n"
        + plan
        + "\n\n-- review queue, filtered\n"
        + plan_f
        + "\n\n-- next seed item to claim\n"
        + plan_claim
    )
    return rows, explain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db-url", default="postgres://postgres@127.0.0.1:5432/umbra_bench_workbench")
    ap.add_argument("--pool", type=int, default=1_000_000)
    ap.add_argument("--seed-items", type=int, default=5_000)
    ap.add_argument("--test-items", type=int, default=5_000)
    ap.add_argument("--predictions", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2, help="rounds with predictions (the last one is active)")
    ap.add_argument("-n", type=int, default=200, help="timed requests per measurement")
    ap.add_argument("--reuse", action="store_true", help="keep an already built database")
    ap.add_argument(
        "--build-only",
        action="store_true",
        help="build the database and stop (build niced, then measure with --reuse un-niced)",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "workbench_speed.md"))
    args = ap.parse_args()
    setup_env(args.db_url)
    dbname = args.db_url.rsplit("/", 1)[1]
    admin_url = args.db_url.rsplit("/", 1)[0] + "/postgres"
    exists = (
        subprocess.run(
            ["psql", admin_url, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{dbname}'"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        == "1"
    )
    fresh = not (args.reuse and exists)
    if fresh:
        subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {dbname}"], check=True)
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {dbname}"], check=True)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if fresh:
        build(args)
    if args.build_only:
        return
    rows, explain = measure(args)
    lines = [
        "# Workbench speed (1,000,000 pool items, 100,000 predictions per round)",
        "",
        f"PostgreSQL, {args.pool:,} pool + {args.seed_items:,} seed + {args.test_items:,} test items, "
        f"{args.rounds} rounds × {args.predictions:,} predictions (the last round's model is active), "
        f"5 % of the pool already human-labeled. Server time measured in-process with Django's test Client "
        f"(middleware + view + SQL + template), {args.n} requests each, on a 2-core machine shared with other "
        f"jobs (`benchmarks/workbench_speed.py`).",
        "",
        f"Load average during the run: {os.getloadavg()[0]:.1f} (2 cores). Wall time includes waiting for "
        "the CPU and for PostgreSQL; CPU time is this process's own work per request.",
        "",
        "| request | n | p50 wall ms | p95 wall ms | max wall ms | p95 CPU ms | SQL queries | target p95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, n, p50, p95, mx, cpu95, q, target in rows:
        ok = "✅" if p95 <= target else "❌"
        lines.append(f"| {name} | {n} | {p50:.1f} | {p95:.1f} | {mx:.1f} | {cpu95:.1f} | {q} | ≤ {target} ms {ok} |")
    lines += ["", "## EXPLAIN ANALYZE", "", "```", explain, "```", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
