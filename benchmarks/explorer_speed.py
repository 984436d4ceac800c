"""Data explorer speed at 1,000,000 items in PostgreSQL: search, each filter, sorts, deep pages, history page.

Builds a separate benchmark database (rows loaded with ``COPY``: items, the active round's
predictions for the pool, human annotations of the seed set with some disagreement), then
measures server time in-process with Django's test ``Client`` (middleware, view, SQL,
template; no network) for every explorer request shape, and saves
``EXPLAIN (ANALYZE, BUFFERS)`` of each page's main query. Target: p95 ≤ 50 ms per request.

    nice .venv/bin/python benchmarks/explorer_speed.py --build-only [--items 1000000]
    .venv/bin/python benchmarks/explorer_speed.py --reuse [-n 30]

Results: ``benchmarks/results/explorer_speed.md`` and ``benchmarks/results/explorer_explain.txt``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from workbench_speed import copy_rows, setup_env  # noqa: E402  (the same benchmark database setup)

COMMON = [
    "how",
    "do",
    "i",
    "make",
    "explain",
    "write",
    "a",
    "the",
    "my",
    "for",
    "with",
    "someone",
    "bank",
    "account",
    "password",
    "recipe",
    "story",
    "phone",
    "email",
    "code",
    "help",
    "quickly",
    "secretly",
    "safe",
    "dangerous",
]
AGREEMENTS = ["disagree_both", "disagree_one", "disagree_none", "low_agree", "agree_none", "high_agree"]
RARE_VOCAB = 50_000  # synthetic words "zq<n>": Zipf-like, so searches range from a handful of hits to thousands


def build(args) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from annotations.models import ModelVersion, Role, TrainingRound
    from annotations.services.projects import membership_set, project_create

    rng = random.Random(0)
    project = project_create(slug="bench", name="Bench", categories=["violence", "fraud", "hate"])
    project.annotations_per_item = 2
    project.save()
    User = get_user_model()
    people = {}
    for name, role in (
        ("ann_a", Role.ANNOTATOR),
        ("ann_b", Role.ANNOTATOR),
        ("ann_c", Role.ANNOTATOR),
        ("bench_reviewer", Role.REVIEWER),
        ("bench_admin", Role.ADMIN),
    ):
        people[name] = User.objects.create_user(name, password="x")
        membership_set(project=project, user=people[name], role=role)
    n_seed, n_test = int(args.items * 0.08), int(args.items * 0.02)
    n_pool = args.items - n_seed - n_test
    splits = [("seed", n_seed), ("test", n_test), ("pool", n_pool)]
    weights = [1 / (k + 1) for k in range(RARE_VOCAB)]
    cum = list(__import__("itertools").accumulate(weights))
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
        "votes_disagree",
        "seed_weight",
    ]
    votes: list[tuple[int, str, str]] = []  # (row index, label, category) of labeled seed items, for annotations

    def items():
        i = 0
        for split, n in splits:
            for _ in range(n):
                words = [rng.choice(COMMON) for _ in range(rng.randint(4, 10))]
                words += [f"zq{k}" for k in rng.choices(range(RARE_VOCAB), cum_weights=cum, k=rng.randint(3, 8))]
                rng.shuffle(words)
                label, category, count, disagree = "", "", 0, False
                if split == "seed" and rng.random() < 0.9:
                    label = "harmful" if rng.random() < 0.3 else "unharmful"
                    category = rng.choice(["violence", "fraud", "hate"]) if label == "harmful" else ""
                    count = 2 if rng.random() < 0.2 else 1
                    disagree = count == 2 and rng.random() < 0.25
                    votes.append((i, label, category, count, disagree))
                elif split == "pool" and rng.random() < 0.02:
                    label, count = rng.choice(["harmful", "unharmful"]), 1
                    votes.append((i, label, "", -1, False))  # a reviewer's approval
                yield [
                    str(project.pk),
                    " ".join(words) + f" #{i}",
                    "",
                    f"{i:064x}",
                    split,
                    "",
                    "bench",
                    "",
                    "{}",
                    "2026-01-01 00:00:00+00",
                    label,
                    category,
                    "f",
                    str(count),
                    "t" if disagree else "f",
                    "1",
                ]
                i += 1

    t = time.perf_counter()
    with connection.cursor() as cur:
        copy_rows(cur.cursor, "annotations_item", item_cols, items())
        cur.execute("SELECT min(id) FROM annotations_item WHERE project_id = %s", [project.pk])
        first_id = cur.fetchone()[0]
    print(f"COPY {args.items:,} items in {time.perf_counter() - t:.1f}s", flush=True)
    rnd = TrainingRound.objects.create(project=project, algorithm="multimatch", status="succeeded", number=1)
    ModelVersion.objects.create(project=project, training_round=rnd, path="/bench", is_active=True, number=1)

    def preds():
        for item_id in range(first_id + n_seed + n_test, first_id + args.items):
            p = rng.random()
            yield [
                str(item_id),
                str(rnd.pk),
                f"{p:.4f}",
                f"[{p:.4f},{min(max(p + rng.uniform(-0.3, 0.3), 0), 1):.4f}]",
                "harmful" if p >= 0.5 else "unharmful",
                "t",
                "1.0",
                rng.choice(AGREEMENTS),
                "[0.1,-0.2,0.3]",
                f"{rng.expovariate(1.0) * 3:.4f}",
                "the heads disagree (0.61 / 0.32)",
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
    print(f"COPY {n_pool:,} predictions in {time.perf_counter() - t:.1f}s", flush=True)
    annotators = [people["ann_a"].pk, people["ann_b"].pk, people["ann_c"].pk]
    reviewer = people["bench_reviewer"].pk
    other = {"harmful": "unharmful", "unharmful": "harmful"}

    def annotations():
        for row, label, category, count, disagree in votes:
            item_id = str(first_id + row)
            if count == -1:
                yield [
                    item_id,
                    str(reviewer),
                    "reviewer",
                    "approve",
                    label,
                    "",
                    "",
                    "\\N",
                    "",
                    "2026-01-02 00:00:00+00",
                ]
                continue
            who = rng.sample(annotators, count)
            yield [item_id, str(who[0]), "annotator", "label", label, category, "", "\\N", "", "2026-01-02 00:00:00+00"]
            if count == 2:
                second = other[label] if disagree else label
                yield [
                    item_id,
                    str(who[1]),
                    "annotator",
                    "label",
                    second,
                    category if second == "harmful" else "",
                    "",
                    "\\N",
                    "",
                    "2026-01-02 00:00:01+00",
                ]

    t = time.perf_counter()
    with connection.cursor() as cur:
        copy_rows(
            cur.cursor,
            "annotations_annotation",
            [
                "item_id",
                "annotator_id",
                "role",
                "kind",
                "label",
                "category",
                "note",
                "prediction_id",
                "client_token",
                "created_at",
            ],
            annotations(),
        )
        cur.execute("ANALYZE")
    print(f"COPY annotations + ANALYZE in {time.perf_counter() - t:.1f}s", flush=True)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def scenarios(project, people) -> list[tuple[str, dict]]:
    """(name, query params) of every request shape measured; cursors point into the middle of the data."""
    from annotations.models import Item
    from annotations.selectors.explorer import encode_cursor

    mid = (
        Item.objects.filter(project=project)
        .order_by("id")
        .values_list("id", flat=True)[Item.objects.filter(project=project).count() // 2]
    )
    return [
        ("list, newest first", {}),
        ("list, deep page (cursor at the middle)", {"cursor": encode_cursor(mid, mid)}),
        ("search, rare word (zq40000)", {"q": "zq40000"}),
        ("search, mid word (zq300)", {"q": "zq300"}),
        ("search, common word (password)", {"q": "password"}),
        ("search, two words", {"q": "password zq50"}),
        ("filter split = test", {"split": "test"}),
        ("filter human label = harmful", {"human_label": "harmful"}),
        ("filter human label = none", {"human_label": "none"}),
        ("filter rejected as unusable", {"human_label": "excluded"}),
        ("filter pseudo-label = harmful", {"pseudo_label": "harmful"}),
        ("filter p(harmful) 0.45-0.55", {"p_min": "0.45", "p_max": "0.55"}),
        ("filter agreement = disagree_both", {"agreement": "disagree_both"}),
        ("filter reviewed = yes", {"reviewed": "yes"}),
        ("filter reviewed = no", {"reviewed": "no"}),
        ("filter category = fraud", {"category": "fraud"}),
        ("filter labeled by ann_b", {"annotator": str(people["ann_b"].pk)}),
        ("filter annotators disagree", {"disagreement": "on"}),
        ("sort p(harmful) high→low", {"sort": "p_harmful"}),
        ("sort p(harmful) low→high", {"sort": "p_harmful", "order": "asc"}),
        ("sort p(harmful), deep page", {"sort": "p_harmful", "cursor": encode_cursor(0.5, mid)}),
        ("sort review priority", {"sort": "priority"}),
        ("sort split low→high", {"sort": "split", "order": "asc"}),
        ("sort split, deep page", {"sort": "split", "order": "asc", "cursor": encode_cursor("pool", mid)}),
        ("sort votes high→low", {"sort": "votes"}),
        ("sort human label", {"sort": "human_label"}),
        ("search + split + sort p(harmful)", {"q": "password", "split": "pool", "sort": "p_harmful"}),
    ]


def measure(args) -> tuple[list[tuple], str]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from annotations.forms.explorer import ItemFilterForm
    from annotations.models import Annotation, Project
    from annotations.selectors import project_members
    from annotations.selectors.explorer import explorer_queryset
    from annotations.selectors.predictions import active_review_round

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    project = Project.objects.get(slug="bench")
    User = get_user_model()
    people = {u.username: u for u in User.objects.filter(username__in=["ann_b", "bench_admin"])}
    client = Client()
    client.force_login(people["bench_admin"])
    hx = {"HTTP_HX_REQUEST": "true"}
    url = "/p/bench/items/"
    rows, explains = [], []
    rnd = active_review_round(project=project)

    def bench(name, path, params, *, headers=None):
        def one():
            resp = client.get(path, params, **(headers or {}))
            assert resp.status_code == 200, (resp.status_code, resp.content[:300])
            return resp

        first = one()  # warm-up
        shown = first.content.count(b'class="explorer-row"')
        ms, cpu = [], []
        for _ in range(args.n):
            t, c = time.perf_counter(), time.process_time()
            one()
            ms.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        rows.append((name, args.n, statistics.median(ms), pct(ms, 0.95), max(ms), pct(cpu, 0.95), shown))
        print(
            f"{name}: p50 {statistics.median(ms):.1f} ms, p95 {pct(ms, 0.95):.1f} ms, CPU p95 {pct(cpu, 0.95):.1f} ms, "
            f"{shown} rows",
            flush=True,
        )

    for name, params in scenarios(project, people):
        bench(name, url, params, headers=hx)
        form = ItemFilterForm(params or None, project=project, members=project_members(project=project))
        qs, _, _ = explorer_queryset(
            project=project, filters=form.filters(), cursor=params.get("cursor", ""), training_round=rnd
        )
        explains.append(f"-- {name}: {params}\n{qs[:51].explain(analyze=True, buffers=True)}\n")
    history_item = (
        Annotation.objects.filter(item__project=project, item__votes_disagree=True)
        .values_list("item_id", flat=True)
        .first()
    )
    bench("item page with label history (full page)", f"/p/bench/items/{history_item}/", {})
    with connection.cursor() as cur:
        cur.execute(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM annotations_annotation WHERE item_id = %s "
            "ORDER BY created_at, id",
            [history_item],
        )
        explains.append("-- item history rows\n" + "\n".join(r[0] for r in cur.fetchall()) + "\n")
    return rows, "\n".join(explains)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db-url", default="postgres://postgres@127.0.0.1:5432/umbra_bench_explorer")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("-n", type=int, default=30, help="timed requests per shape")
    ap.add_argument("--reuse", action="store_true", help="keep an already built database")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "explorer_speed.md"))
    ap.add_argument("--explain-out", default=str(ROOT / "benchmarks" / "results" / "explorer_explain.txt"))
    args = ap.parse_args()
    setup_env(args.db_url)
    dbname = args.db_url.rsplit("/", 1)[1]
    admin_url = args.db_url.rsplit("/", 1)[0] + "/postgres"
    exists = (
        subprocess.run(
            ["psql", admin_url, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{dbname}'"],
            capture_output=True,
            text=True,
            check=False,
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

    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    if fresh:
        build(args)
        print(f"built in {time.perf_counter() - t:.0f}s", flush=True)
    if args.build_only:
        return
    rows, explain = measure(args)
    lines = [
        f"# Data explorer speed ({args.items:,} items)",
        "",
        f"PostgreSQL, {args.items:,} items (90 % pool with a prediction of the active round each, 8 % seed with "
        "human labels and 2-vote overlap on a fifth, 2 % test), text of 7-18 words from a Zipf-like 50k-word "
        f"vocabulary plus common words. Server time in-process with Django's test Client (middleware + view + SQL + "
        f"template), {args.n} requests per shape after one warm-up, on a 2-core machine shared with other jobs "
        f"(load average {os.getloadavg()[0]:.1f}); `benchmarks/explorer_speed.py`. EXPLAIN ANALYZE of each page's "
        "query: `benchmarks/results/explorer_explain.txt`.",
        "",
        "| request | n | p50 wall ms | p95 wall ms | max wall ms | p95 CPU ms (Django) | rows shown | p95 wall ≤ 50 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, n, p50, p95, mx, cpu95, shown in rows:
        lines.append(
            f"| {name} | {n} | {p50:.1f} | {p95:.1f} | {mx:.1f} | {cpu95:.1f} | {shown} | "
            f"{'✅' if p95 <= 50 else '❌'} |"
        )
    Path(args.out).write_text("\n".join(lines) + "\n")
    Path(args.explain_out).write_text(explain)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
