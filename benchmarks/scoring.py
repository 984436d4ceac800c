"""Scoring benchmark: score every pool item of a 100,000-item project with the default backbone
(bundled all-MiniLM-L6-v2) and store one Prediction row per item with COPY.

Steps: (1) a benchmark database (default ``umbra_bench``) with a project of N synthetic short
pool texts, reused when it already holds them; (2) a quick supervised round on 40 labeled seed
items (not timed) saves a model with the default backbone; (3) timed, end to end: read the pool
from PostgreSQL, score it with ``ssl_engine.engine.load_scorer`` (the same length-bucketed,
no-grad forward the round uses for pool items outside its training subsample), derive the
review signals and COPY the rows in one transaction, as ``training_round_store_result`` does;
(4) timed, storing alone: COPY the same N rows again for a second round.
Targets: >= 200 items/s end to end, >= 20,000 rows/s storing.

    nice .venv/bin/python benchmarks/scoring.py [--items 100000] [--db-url postgres://postgres@127.0.0.1:5432/umbra_bench]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "how do i make bake explain write a the my for with without someone bank account password recipe poem "
    "story neighbour car phone email code python history science help quickly secretly safe dangerous "
    "weapon poison hack steal friend garden music learn"
).split()
SLUG = "bench-scoring"


def _setup_django(db_url: str) -> None:
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
        }
    )
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_app.settings")
    sys.path.insert(0, str(ROOT))
    dbname = db_url.rsplit("/", 1)[1]
    admin_url = db_url.rsplit("/", 1)[0] + "/postgres"
    exists = subprocess.run(
        ["psql", admin_url, "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{dbname}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {dbname}"], check=True)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"], check=True, env=os.environ)
    import django

    django.setup()


def _jsonl(rows) -> io.BytesIO:
    import orjson

    return io.BytesIO(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def ensure_project(n_items: int):
    from annotations.models import Item, Project
    from annotations.services.imports import items_import
    from annotations.services.projects import project_create

    project = Project.objects.filter(slug=SLUG).first() or project_create(slug=SLUG, name="Scoring bench")
    have = Item.objects.filter(project=project, split=Item.Split.POOL).count()
    if have != n_items:
        Item.objects.filter(project=project).delete()
        rng = random.Random(0)
        t = time.perf_counter()
        pool = (
            {"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 24))) + f" #{i}"} for i in range(n_items)
        )
        items_import(project=project, stream=_jsonl(pool), fmt="jsonl", split=Item.Split.POOL)
        seed = [{"text": f"how do i make a weapon to hurt someone #{i}", "label": "harmful"} for i in range(20)]
        seed += [{"text": f"write a poem about my garden #{i}", "label": "unharmful"} for i in range(20)]
        items_import(project=project, stream=_jsonl(seed), fmt="jsonl", split=Item.Split.SEED)
        print(f"created {n_items:,} pool items in {time.perf_counter() - t:.1f}s", flush=True)
    return project


def quick_model(project, out_dir: str) -> str:
    from annotations.models import Item
    from ssl_engine.engine import run_round
    from ssl_engine.types import LabeledText, RoundInput

    labeled = [
        LabeledText(example_id=str(pk), text=text, label=int(label == "harmful"))
        for pk, text, label in Item.objects.filter(project=project, split=Item.Split.SEED).values_list(
            "id", "text", "human_label"
        )
    ]
    t = time.perf_counter()
    result = run_round(
        RoundInput(
            labeled=labeled,
            unlabeled=[],
            out_dir=out_dir,
            algorithm="supervised",
            config={
                "epochs": 1,
                "min_steps": 20,
                "max_steps": 20,
                "batch_size": 8,
                "cache_dir": os.path.join(out_dir, "cache"),
            },
            device="cpu",
        )
    )
    print(f"quick round (default backbone, not timed): {time.perf_counter() - t:.1f}s", flush=True)
    return result.model_dir


def _round(project, name: str):
    from annotations.models import TrainingRound

    TrainingRound.objects.filter(project=project, algorithm="supervised", config__bench=name).delete()
    return TrainingRound.objects.create(
        project=project, algorithm="supervised", status="succeeded", config={"bench": name}
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--db-url", default="postgres://postgres@127.0.0.1:5432/umbra_bench")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)")
    ap.add_argument(
        "--score-limit",
        type=int,
        default=0,
        help="score only the first N pool items end to end (0 = all); storing alone always uses all",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scoring.md"))
    args = ap.parse_args()
    _setup_django(args.db_url)

    import torch
    from django.db import transaction

    from annotations.models import Item, Prediction
    from annotations.services.scoring import predictions_store
    from ssl_engine import LABEL_NAMES
    from ssl_engine.engine import load_scorer
    from ssl_engine.review import review_signal
    from ssl_engine.types import ExamplePrediction

    if args.threads:
        torch.set_num_threads(args.threads)
    project = ensure_project(args.items)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = quick_model(project, tmp)
        scorer = load_scorer(model_dir, device="cpu")
        threshold = scorer.threshold

        # --- end to end: DB read -> score -> review signals -> COPY, one transaction ---------
        first = _round(project, "end-to-end")
        t0 = time.perf_counter()
        rows = list(
            Item.objects.filter(project=project, split=Item.Split.POOL, human_label="", excluded=False)
            .order_by("id")
            .values_list("id", "text", "prompt")[: args.score_limit or None]
            .iterator(chunk_size=5000)
        )
        t_read = time.perf_counter() - t0
        preds: list[ExamplePrediction] = []
        chunk = 2048
        t1, c1 = time.perf_counter(), time.process_time()
        for s in range(0, len(rows), chunk):
            part = rows[s : s + chunk]
            scores = scorer.score([r[1] for r in part], [r[2] or None for r in part], batch_size=args.batch_size)
            for (pk, _text, _prompt), (p, heads) in zip(part, scores, strict=True):
                prio, reason = review_signal(
                    p_harmful=p, head_probs=heads, threshold=threshold, history=(), weight=0.0, agreement=""
                )
                preds.append(
                    ExamplePrediction(
                        example_id=str(pk),
                        p_harmful=p,
                        head_probs=heads,
                        pseudo_label=int(p >= threshold),
                        used=False,
                        weight=0.0,
                        agreement="",
                        margin_history=(),
                        review_priority=prio,
                        review_reason=reason,
                    )
                )
            if (s // chunk) % 5 == 0:
                done = s + len(part)
                print(f"  scored {done:,}/{len(rows):,} ({done / (time.perf_counter() - t1):.0f} items/s)", flush=True)
        t_score, cpu_score = time.perf_counter() - t1, time.process_time() - c1
        t2 = time.perf_counter()
        with transaction.atomic():
            n = predictions_store(training_round_id=first.pk, predictions=preds, label_names=LABEL_NAMES)
        t_store1 = time.perf_counter() - t2
        total = time.perf_counter() - t0
        assert n == len(rows) == Prediction.objects.filter(training_round=first).count()

        # --- storing alone: one row per pool item, shaped like a MultiMatch round's -----------
        rng = random.Random(1)
        all_ids = list(
            Item.objects.filter(project=project, split=Item.Split.POOL, human_label="").values_list("id", flat=True)
        )
        store_rows = []
        for pk in all_ids:
            heads = tuple(rng.random() for _ in range(3))
            p = sum(heads) / 3
            store_rows.append(
                ExamplePrediction(
                    example_id=str(pk),
                    p_harmful=p,
                    head_probs=heads,
                    pseudo_label=int(p >= 0.5),
                    used=p > 0.8,
                    weight=3.0 if p > 0.9 else 1.0,
                    agreement="disagree_one",
                    margin_history=tuple(rng.random() for _ in range(6)),
                    review_priority=rng.random(),
                    review_reason="heads disagree; low margin",
                )
            )
        second = _round(project, "store-only")
        t3 = time.perf_counter()
        with transaction.atomic():
            n_store = predictions_store(training_round_id=second.pk, predictions=store_rows, label_names=LABEL_NAMES)
        t_store = time.perf_counter() - t3
        Prediction.objects.filter(training_round__in=[first, second]).delete()

    load = os.getloadavg()
    e2e_rate, store_rate = n / total, n_store / t_store
    pool_total = len(all_ids)
    table = (
        "| pool items scored | read from DB | score (MiniLM-L6, CPU) | store (COPY) | end to end "
        "| end-to-end items/s | storing alone rows/s |\n|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {n:,} | {t_read:.1f} s | {t_score:.1f} s ({n / t_score:,.0f} items/s) | {t_store1:.1f} s | {total:.1f} s "
        f"| **{e2e_rate:,.0f}** (target ≥ 200) | **{store_rate:,.0f}** (target ≥ 20,000; {n_store:,} rows "
        f"in {t_store:.1f} s) |\n"
    )
    if n < pool_total:
        table += (
            f"\nEnd to end was measured on the first {n:,} of the project's {pool_total:,} pool items "
            "(the CPU was shared, see below); storing alone wrote one row for each of the "
            f"{pool_total:,}.\n"
        )
    cpu_rate = n / cpu_score
    table += (
        f"\nScoring used {cpu_score:.0f} CPU-seconds over {t_score:.0f} s of wall time: {cpu_rate:,.0f} items per "
        f"CPU-second with {torch.get_num_threads()} torch thread(s), i.e. about {2 * cpu_rate:,.0f} items/s of scoring "
        "on 2 cores that are not shared.\n"
    )
    note = (
        f"\nMachine: {os.cpu_count()} CPU cores shared with other work (load average during the run "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), "
        f"batch size {args.batch_size}, PostgreSQL on the same machine. Synthetic pool texts of 6–24 words. "
        "End to end = read the pool (one query, streamed), score it with `load_scorer` on a model saved by a quick "
        "supervised round with the default backbone, derive review signals, COPY the rows in one transaction. "
        "Storing alone = one MultiMatch-shaped row (3 head probabilities, 6-epoch margin history, review "
        "reason) per pool item COPYed for a second round in one transaction (`annotations.services.scoring."
        "predictions_store`).\n"
    )
    print(table + note)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("# Scoring benchmark\n\n" + table + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
