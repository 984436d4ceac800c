"""Benchmark: does the loss-based flag find label-changing augmentations?

On ToxicChat's *train* split only (no test data is read), a FixMatch round at 200 labels
(cpu-fast, the product's default settings) gets precomputed views of two kinds:

* labeled copies: 60 of the 200 labeled items get one variant each; 45 are faithful
  (``synonym`` rewrite of the source) and 15 are corrupted (the text of a random train item
  of the *other* class, so the copy carries the wrong label);
* unlabeled strong views: 300 of the 2,000 pool items get one view each; 225 faithful,
  75 corrupted the same way (using the pool items' hidden labels only to build them).

The round returns a ``ViewLoss`` per view; we report, per kind, the flag's precision and
recall for the corrupted views, and the AUROC of the mean training loss (threshold-free).
Each ``--min-fraction`` value reruns the same seeded round (training is identical; only
the flag rule changes).

Run: nice -n 10 .venv/bin/python benchmarks/loss_flag.py [--seeds 3] [--min-fraction 0.75 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(os.environ.get("UMBRA_DATA_DIR", "/work/shared/data")) / "toxicchat"
CACHE = Path.home() / ".cache" / "umbra" / "bench"
OUT = Path(__file__).resolve().parent / "results" / "loss_flag.md"


def build(seed: int, n_labels: int, pool_n: int, lab_views: tuple[int, int], unl_views: tuple[int, int]):
    from ssl_engine.augment import get_augmenter
    from ssl_engine.types import LabeledText, UnlabeledText

    rows = [json.loads(line) for line in (DATA / "train.jsonl").open()]
    y = np.array([int(r["label"] == "harmful") for r in rows])
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(rows))
    lab_i, pool_i, donors = perm[:n_labels], perm[n_labels : n_labels + pool_n], perm[n_labels + pool_n :]
    aug = get_augmenter("synonym")
    r = random.Random(seed)

    def donor(cls: int) -> str:  # text of an unused train item of class ``cls``
        return rows[int(rng.choice(donors[y[donors] == cls]))]["text"]

    def views_for(idx, n_faithful, n_corrupt):
        chosen = rng.choice(idx, n_faithful + n_corrupt, replace=False)
        out = {}
        for k, i in enumerate(chosen):
            bad = k >= n_faithful
            out[int(i)] = ((donor(1 - y[i]),) if bad else (aug(rows[i]["text"], r),), bad)
        return out

    lv, uv = views_for(lab_i, *lab_views), views_for(pool_i, *unl_views)
    labeled = [
        LabeledText(rows[i]["id"], rows[i]["text"], int(y[i]), strong_views=lv.get(int(i), ((), 0))[0]) for i in lab_i
    ]
    unlabeled = [UnlabeledText(rows[i]["id"], rows[i]["text"], strong_views=uv.get(int(i), ((), 0))[0]) for i in pool_i]
    truth = {(rows[i]["id"], True): bad for i, (_, bad) in lv.items()}
    truth |= {(rows[i]["id"], False): bad for i, (_, bad) in uv.items()}
    return labeled, unlabeled, truth


def score(view_losses, truth):
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    out = {}
    for kind in (True, False):
        vs = [v for v in view_losses if v.labeled == kind and not np.isnan(v.mean_loss)]
        bad = np.array([truth[(v.example_id, kind)] for v in vs])
        flag = np.array([v.flagged for v in vs])
        p, rc, f, _ = precision_recall_fscore_support(bad, flag, average="binary", zero_division=0)
        out["labeled" if kind else "unlabeled"] = {
            "n": len(vs),
            "corrupted": int(bad.sum()),
            "flagged": int(flag.sum()),
            "precision": p,
            "recall": rc,
            "f1": f,
            "auroc": roc_auc_score(bad, [v.mean_loss for v in vs]) if 0 < bad.sum() < len(bad) else float("nan"),
        }
    return out


def main() -> None:
    from ssl_engine.engine import run_round
    from ssl_engine.types import RoundInput

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--pool", type=int, default=2000)
    ap.add_argument("--algorithm", default="fixmatch")
    ap.add_argument("--min-fraction", type=float, nargs="+", default=[0.75, 0.5])
    args = ap.parse_args()
    results = []
    for seed in range(args.seeds):
        labeled, unlabeled, truth = build(seed, args.labels, args.pool, (45, 15), (225, 75))
        for mf in args.min_fraction:
            t = time.perf_counter()
            res = run_round(
                RoundInput(
                    labeled=labeled,
                    unlabeled=unlabeled,
                    out_dir=str(CACHE / f"loss_flag_{seed}"),
                    algorithm=args.algorithm,
                    config={"loss_flag_min_fraction": mf},
                    mode="cpu-fast",
                    device="cpu",
                    seed=seed,
                )
            )
            row = {
                "seed": seed,
                "min_fraction": mf,
                "seconds": time.perf_counter() - t,
                "epochs": len(res.view_losses[0].losses) if res.view_losses else 0,
                **score(res.view_losses, truth),
            }
            print(json.dumps(row), flush=True)
            results.append(row)
    write(results, args)


def write(results, args) -> None:
    lines = [
        "# Loss-based flag of augmentations: precision and recall on ToxicChat (train split only)",
        "",
        f"`benchmarks/loss_flag.py --seeds {args.seeds}`: {args.algorithm}, {args.labels} labels, pool {args.pool}, "
        "cpu-fast defaults (3 epochs of 640 unlabeled draws). Labeled copies: 45 faithful (synonym rewrite) + "
        "15 corrupted (text of the other class); unlabeled strong views: 225 faithful + 75 corrupted. "
        "Base rate of corrupted views: 25 %. Mean ± std over seeds.",
        "",
        "| min_fraction | kind | flagged | precision | recall | F1 | AUROC of mean loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for mf in args.min_fraction:
        for kind in ("labeled", "unlabeled"):
            rs = [r[kind] for r in results if r["min_fraction"] == mf]

            def ms(key, rs=rs):
                v = np.array([x[key] for x in rs], dtype=float)
                return f"{np.nanmean(v):.2f} ± {np.nanstd(v):.2f}"

            lines.append(
                f"| {mf} | {kind} | {ms('flagged')} of {rs[0]['n']} | {ms('precision')} | {ms('recall')} | "
                f"{ms('f1')} | {ms('auroc')} |"
            )
    lines += (
        ["", f"Round time: {np.mean([r['seconds'] for r in results]):.0f} s on average.", "", "Raw rows:", "", "```"]
        + [json.dumps(r) for r in results]
        + ["```", ""]
    )
    OUT.write_text("\n".join(lines))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
