"""What a reviewed label is worth: the review queue vs random vs least-confidence picks.

Simulates the Umbra loop on ToxicChat with its hidden labels as the oracle: 200 random
seed labels, one round (``ssl_engine.engine.run_round``), then three times: a "reviewer"
labels 100 pool items picked by a strategy and the model is retrained. Strategies:

- ``queue``: the top 100 by the engine's ``review_priority`` (what the review page shows)
- ``random``: 100 random pool items
- ``least_confidence``: the 100 pool items with p(harmful) closest to 0.5

Reports harmful-class F1 on the ToxicChat test split after each step, for 3 seeds, as
``benchmarks/results/review_queue_value.md`` and ``.png``. Every finished round is appended
to ``var/bench/review_queue_value.jsonl`` and skipped on the next run, so the script is resumable.
The data is read in place from ``--data`` (never copied into the repository).

    nice -n 10 .venv/bin/python benchmarks/review_queue_value.py [--seeds 0 1 2] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ssl_engine.types import LabeledText, RoundInput, UnlabeledText  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
# Per-round records (labeled ids, queue orders): large, so kept out of the repository in var/.
LOG = ROOT / "var" / "bench" / "review_queue_value.jsonl"
STRATEGIES = ("queue", "random", "least_confidence")
N_SEED, N_PICK, KEEP_ORDER = 200, 100, 400


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def done_records() -> dict[tuple, dict]:
    if not LOG.exists():
        return {}
    out = {}
    for line in LOG.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out[(r["seed"], r["strategy"], r["step"])] = r
    return out


def run(train, test, labeled_idx: list[int], seed: int, algorithm: str, config: dict) -> dict:
    from ssl_engine.engine import run_round

    y = [1 if train[i]["label"] == "harmful" else 0 for i in labeled_idx]
    labeled = [LabeledText(str(i), train[i]["text"], y[k]) for k, i in enumerate(labeled_idx)]
    taken = set(labeled_idx)
    unlabeled = [UnlabeledText(str(i), r["text"]) for i, r in enumerate(train) if i not in taken]
    evals = {"test": [LabeledText(f"t{i}", r["text"], 1 if r["label"] == "harmful" else 0)
                      for i, r in enumerate(test)]}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as out:
        res = run_round(RoundInput(labeled=labeled, unlabeled=unlabeled, out_dir=out, algorithm=algorithm,
                                   config=config, eval_sets=evals, seed=seed))
    preds = res.predictions
    by_queue = sorted(preds, key=lambda p: (-p.review_priority, int(p.example_id)))
    by_lc = sorted(preds, key=lambda p: (abs(p.p_harmful - 0.5), int(p.example_id)))
    return {
        "f1": res.metrics["test"]["f1"],
        "metrics": res.metrics["test"],
        "threshold": res.threshold,
        "seconds": round(time.time() - t0, 1),
        "queue_order": [int(p.example_id) for p in by_queue[:KEEP_ORDER]],
        "lc_order": [int(p.example_id) for p in by_lc[:KEEP_ORDER]],
        "pool_ids": sorted(int(p.example_id) for p in preds),
        "agreement_top": [p.agreement for p in by_queue[:N_PICK]],
    }


def picks(strategy: str, prev: dict, labeled: list[int], seed: int, step: int) -> list[int]:
    taken = set(labeled)
    if strategy == "queue":
        order = prev["queue_order"]
    elif strategy == "least_confidence":
        order = prev["lc_order"]
    else:
        order = [i for i in prev["pool_ids"] if i not in taken]
        random.Random(f"{seed}|{step}|random").shuffle(order)
    return [i for i in order if i not in taken][:N_PICK]


def append(record: dict) -> None:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def report(train) -> None:
    recs = done_records()
    seeds = sorted({k[0] for k in recs})
    lines = ["# Review queue value (ToxicChat, harmful-class F1 on the test split)", "",
             "200 random seed labels, one round, then 3 × (100 oracle-labeled pool items + retrain). "
             "Engine: MultiMatch, cpu-fast, config `{\"epochs\": 2, \"epoch_unlabeled\": 512, \"min_steps\": 60}` "
             "(small on purpose: 30 rounds on 2 shared CPU cores); per-round records in "
             "`var/bench/review_queue_value.jsonl`; `benchmarks/review_queue_value.py --report-only` regenerates this.", "",
             "| strategy | seed | start | +100 | +200 | +300 | gain per 100 labels |", "|---|---|---|---|---|---|---|"]
    gains: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    for strategy in STRATEGIES:
        for seed in seeds:
            start = recs.get((seed, "start", 0))
            if start is None:
                continue
            row = [start["f1"]] + [recs.get((seed, strategy, k), {}).get("f1") for k in (1, 2, 3)]
            last = max((k for k in (1, 2, 3) if row[k] is not None), default=0)
            gain = (row[last] - row[0]) / last if last else None
            if gain is not None:
                gains[strategy].append(gain)
            cells = ["–" if v is None else f"{v:.3f}" for v in row]
            lines.append(f"| {strategy} | {seed} | " + " | ".join(cells) + f" | {'–' if gain is None else f'{gain:+.4f}'} |")
    lines += ["", "| strategy | mean F1 gain per 100 reviewed labels | seeds |", "|---|---|---|"]
    means = {}
    for s in STRATEGIES:
        if gains[s]:
            means[s] = sum(gains[s]) / len(gains[s])
            lines.append(f"| {s} | {means[s]:+.4f} | {len(gains[s])} |")
    if "queue" in means and "random" in means:
        if means["random"] > 0:
            versus = f"{means['queue'] / means['random']:.2f}× the F1 gain per reviewed label of random selection"
        else:
            versus = (f"{means['queue']:+.4f} F1 per 100 labels while random selection gained nothing "
                      f"({means['random']:+.4f})")
        lines += ["", f"Queue: {versus} (target ≥ 2×); queue minus least-confidence: "
                      f"{means['queue'] - means.get('least_confidence', float('nan')):+.4f} F1 per 100 labels.",
                  "", "Gain per 100 labels = (F1 after the last finished step − F1 at the start) / steps, per seed; "
                      "a single round's F1 moves by a few points with the seed, so read the means, not one row."]
    picked = {s: [recs[k].get("picked_harmful", 0) for k in recs if k[1] == s] for s in STRATEGIES}
    lines += ["", "Harmful items among the picked pool items (mean per 100): " + ", ".join(
        f"{s} {sum(v) / len(v):.1f}" for s, v in picked.items() if v) + "."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "review_queue_value.md").write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for s in STRATEGIES:
        xs, ys = [], []
        for k in range(4):
            vals = [recs[(seed, "start" if k == 0 else s, k)]["f1"] for seed in seeds
                    if (seed, "start" if k == 0 else s, k) in recs]
            if vals:
                xs.append(N_SEED + N_PICK * k)
                ys.append(sum(vals) / len(vals))
        ax.plot(xs, ys, marker="o", label=s)
    ax.set_xlabel("human labels")
    ax.set_ylabel("harmful F1 on test (mean over seeds)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / "review_queue_value.png", dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "toxicchat"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--algorithm", default="multimatch")
    ap.add_argument("--config", default='{"epochs": 2, "epoch_unlabeled": 512, "min_steps": 60}',
                    help="engine config JSON (small on purpose: 10 rounds per seed on 2 shared CPU cores)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    data = Path(args.data)
    train, test = load(data / "train.jsonl"), load(data / "test.jsonl")
    if args.report_only:
        report(train)
        return
    config = json.loads(args.config)
    for seed in args.seeds:
        recs = done_records()
        rng = random.Random(seed)
        seeds_idx = sorted(rng.sample(range(len(train)), N_SEED))
        start = recs.get((seed, "start", 0))
        if start is None:
            start = {"seed": seed, "strategy": "start", "step": 0, "labeled": seeds_idx,
                     "algorithm": args.algorithm, "config": config,
                     **run(train, test, seeds_idx, seed, args.algorithm, config)}
            append(start)
            print(f"seed {seed} start f1={start['f1']:.3f} ({start['seconds']}s)", flush=True)
        # interleave strategies step by step so a partial run still compares like with like
        prev = {s: start for s in STRATEGIES}
        for step in range(1, args.steps + 1):
            for strategy in STRATEGIES:
                rec = done_records().get((seed, strategy, step))
                if rec is None:
                    labeled = prev[strategy]["labeled"]
                    new = picks(strategy, prev[strategy], labeled, seed, step)
                    labeled = sorted(labeled + new)
                    rec = {"seed": seed, "strategy": strategy, "step": step, "labeled": labeled,
                           "picked_harmful": sum(train[i]["label"] == "harmful" for i in new),
                           "algorithm": args.algorithm, "config": config,
                           **run(train, test, labeled, seed, args.algorithm, config)}
                    append(rec)
                    print(f"seed {seed} {strategy} step {step} f1={rec['f1']:.3f} "
                          f"(+{rec['picked_harmful']} harmful picked, {rec['seconds']}s)", flush=True)
                prev[strategy] = rec
            report(train)
    report(train)


if __name__ == "__main__":
    main()
