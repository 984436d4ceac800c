"""Label efficiency, side by side: peers, supervised, every SSL algorithm, and the active loop.

    .venv/bin/python benchmarks/label_efficiency.py [--datasets toxicchat,beavertails] [--seeds 0,1,2]
        [--parts supervised,ssl,peers,large,active] [--split test|dev] [--data-dir ../shared/data]

One command runs, per data set and seed, on the *same* stratified draw of labels for every
method (``ssl_engine.cli.draw_labeled``):

- peers: frozen-encoder + class-balanced logistic regression, and SetFit (same MiniLM body;
  ``make bench-install``); both threshold with prior_match (see ``benchmarks/peers.py``);
- ``supervised`` at 200 (part ``supervised``), 2,000 and all labels (part ``large``), each in the
  mode the engine picks by default;
- every SSL algorithm at 200 labels (default CPU configuration);
- the active loop: 200 random seeds, and 200 seeds suggested by ``ssl_engine.selection``
  (no labels used), then 4 rounds of 50 labels chosen by the review queue, by random draw
  and by least confidence, retraining (``LOOP_ALGORITHM``) after each (hidden labels are the
  oracle; queue/least-confidence picks carry ``prior_weight=0``).

Per run: F1, precision, recall, AUPRC on the evaluation split, pseudo-label precision by class
(the pool's hidden labels are passed as withheld labels, never trained on), wall time and
steps. Each run is one JSON under ``benchmarks/results/label_efficiency_runs/<split>/`` and is
skipped when present (resumable). The table (mean ± std) goes to
``benchmarks/results/label_efficiency[_dev].md`` and a plot of F1 against human labels, one
line per method, to ``label_efficiency[_dev].png``.

``--split dev`` carves a stratified 20 % development split from train (fixed seed) and
evaluates on it: every default was chosen there. ``--split test`` evaluates on test.jsonl,
which no choice ever read. The data is read in place and never copied.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from benchmarks import peers  # noqa: E402
from ssl_engine.cli import draw_labeled, read_jsonl, run_from_rows  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")
SSL_ALGOS = ("fixmatch", "freematch", "marginmatch", "multimatch")
PARTS = ("supervised", "ssl", "peers", "large", "active")
# The loop retrains after every batch of 50 reviews: 13 rounds per data set and seed. A default
# semi-supervised round costs ~8 min of one shared core here, a supervised one ~4, so the loop
# retrains supervised (CPU budget); its queue is then uncertainty at the threshold + diversity.
LOOP_ALGORITHM = "supervised"
LOOP_ROUNDS, LOOP_BATCH = 4, 50
STRATEGIES = ("queue", "random", "least_confidence")
DEV_SEED, DEV_FRACTION = 1234, 0.2


# -- data -------------------------------------------------------------------------------------
def load_split(data_dir: str, ds: str, split: str) -> tuple[list[dict], list[dict]]:
    """(train rows, evaluation rows): test.jsonl, or a stratified dev split carved from train."""
    train = read_jsonl(os.path.join(data_dir, ds, "train.jsonl"), need_label=True)
    if split == "test":
        return train, read_jsonl(os.path.join(data_dir, ds, "test.jsonl"), need_label=True)
    rng = np.random.default_rng(DEV_SEED)
    dev = set()
    for c in ("harmful", "unharmful"):
        ix = [i for i, r in enumerate(train) if r["label"] == c]
        dev |= set(rng.choice(ix, size=int(round(DEV_FRACTION * len(ix))), replace=False).tolist())
    return [r for i, r in enumerate(train) if i not in dev], [r for i, r in enumerate(train) if i in dev]


# -- runs -------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.runs_dir = os.path.join(RESULTS, "label_efficiency_runs", args.split)
        os.makedirs(self.runs_dir, exist_ok=True)

    def path(self, ds, method, labels, seed) -> str:
        return os.path.join(self.runs_dir, f"{ds}_{method}_{labels}_{seed}.json")

    def once(self, ds, method, labels, seed, fn) -> dict:
        """Run ``fn`` unless its result file exists; store and print it."""
        path = self.path(ds, method, labels, seed)
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        t0, c0 = time.time(), time.process_time()
        res = fn()
        res.setdefault("n_labeled", labels)
        res.update(
            {
                "dataset": ds,
                "method": method,
                "labels": labels,
                "seed": seed,
                "split": self.args.split,
                "wall_seconds": round(time.time() - t0, 1),
                "load_avg": round(os.getloadavg()[0], 2),
                # CPU seconds of this process (all its threads): what the run costs on a quiet machine
                "cpu_seconds": round(time.process_time() - c0, 1),
            }
        )
        with open(path + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        os.replace(path + ".tmp", path)
        m = res["metrics"]
        print(
            f"{ds} {method} {labels} seed={seed}: F1={m['f1']:.3f} AUPRC={m['auprc']:.3f} ({res['wall_seconds']:.0f}s)",
            flush=True,
        )
        return res

    def engine(self, ds, algorithm, labeled, pool, evals, seed, config=None) -> dict:
        """One engine round; returns the compact record kept per run (no per-item predictions)."""
        out_dir = os.path.join(self.args.workdir, f"{ds}_{algorithm}_{len(labeled)}_{seed}_{os.getpid()}")
        try:
            res = run_from_rows(
                labeled,
                pool,
                {"eval": evals},
                algorithm=algorithm,
                seed=seed,
                out_dir=out_dir,
                config=config or {},
                hidden_labels=True,
                keep_predictions=True,
            )
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        return res

    @staticmethod
    def record(res: dict) -> dict:
        return {
            "metrics": _compact(res["eval"]["eval"]),
            "threshold": res["threshold"],
            "n_labeled": res["labeled"],
            "threshold_strategy": res.get("threshold_strategy"),
            "timings": res["timings"],
            "pseudo_labels": res.get("pseudo_labels", []),
            "config": res.get("config", {}),
            "mode": res.get("mode"),
        }


def _compact(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in ("pr_curve",)}


def run_peers(b: Bench, ds, train, evals, seed) -> None:
    labeled, pool = draw_labeled(train, 200, seed)
    key = f"{ds}|{b.args.split}"
    emb_all = peers.embeddings(train, key + "|train")
    pos = {id(r): i for i, r in enumerate(train)}
    emb = lambda rows: emb_all[[pos[id(r)] for r in rows]]  # noqa: E731
    emb_eval = peers.embeddings(evals, key + "|eval")
    if "lr_probe" in b.args.peers.split(","):
        b.once(
            ds,
            "lr_probe",
            200,
            seed,
            lambda: peers.lr_probe(
                labeled, pool, evals, emb_lab=emb(labeled), emb_pool=emb(pool), emb_test=emb_eval, seed=seed
            ),
        )
    if "setfit" not in b.args.peers.split(","):
        return
    try:
        import setfit  # noqa: F401
    except ImportError:
        print("setfit is not installed (make bench-install): skipping the SetFit peer", file=sys.stderr)
        return
    b.once(ds, "setfit", 200, seed, lambda: peers.setfit(labeled, pool, evals, seed=seed))


def _supervised_at(b: Bench, ds, train, evals, seed, n) -> None:
    n_lab = len(train) if n == "all" else n
    labeled, pool = draw_labeled(train, n_lab, seed)
    b.once(ds, "supervised", n, seed, lambda: b.record(b.engine(ds, "supervised", labeled, pool, evals, seed)))


def run_supervised(b: Bench, ds, train, evals, seed) -> None:
    _supervised_at(b, ds, train, evals, seed, 200)


def run_large(b: Bench, ds, train, evals, seed) -> None:
    """supervised at 2,000 and all labels (the engine picks full fine-tuning for that many on CPU)."""
    for n in (2000, "all"):
        _supervised_at(b, ds, train, evals, seed, n)


def run_ssl(b: Bench, ds, train, evals, seed) -> None:
    labeled, pool = draw_labeled(train, 200, seed)
    for alg in b.args.algorithms.split(","):
        b.once(ds, alg, 200, seed, lambda alg=alg: b.record(b.engine(ds, alg, labeled, pool, evals, seed)))


# -- active loop ------------------------------------------------------------------------------
def suggested_seeds(train: list[dict], n: int, seed: int, key: str) -> list:
    """``n`` train rows chosen without labels, as the app's seed suggestion does (ssl_engine.selection)."""
    from ssl_engine.selection import suggest_for_texts

    return suggest_for_texts(peers.joined(train), n, seed=seed, embeddings=peers.embeddings(train, key))


def pick(strategy: str, res: dict, pool_ids: list[str], k: int, rng: np.random.Generator) -> list[str]:
    """The next ``k`` pool ids a reviewer labels under ``strategy``."""
    preds = res["predictions"]
    if strategy == "queue":
        order = sorted(preds, key=lambda p: (-p["review_priority"], p["example_id"]))
    elif strategy == "least_confidence":
        order = sorted(preds, key=lambda p: (abs(p["p_harmful"] - 0.5), p["example_id"]))
    else:
        return [str(x) for x in rng.choice(pool_ids, size=k, replace=False)]
    return [p["example_id"] for p in order[:k]]


def run_active(b: Bench, ds, train, evals, seed) -> None:
    by_id = {str(r["id"]): r for r in train}
    random_lab, _ = draw_labeled(train, 200, seed)
    starts = {"random": [str(r["id"]) for r in random_lab]}
    picks = suggested_seeds(train, 200, seed, f"{ds}|{b.args.split}|train")
    starts["suggested"] = [str(train[p.index]["id"]) for p in picks]
    prior_w = {
        "random": {i: 1.0 for i in starts["random"]},
        "suggested": {str(train[p.index]["id"]): p.prior_weight for p in picks},
    }
    plans = [("random", s) for s in STRATEGIES] + [("suggested", None)]
    if b.args.plans:  # a subset, e.g. to spread the loop over two processes (runs are shared files)
        wanted = set(b.args.plans.split(","))
        plans = [p for p in plans if (p[1] or p[0]) in wanted]
    for start, strategy in plans:
        ids, weights = list(starts[start]), dict(prior_w[start])
        for step in range(LOOP_ROUNDS + 1 if strategy else 1):
            n = len(ids)
            method = f"active_{start}_{strategy}" if step else f"active_{start}"
            labeled = [dict(by_id[i], prior_weight=weights.get(i, 0.0)) for i in ids]
            chosen = set(ids)
            pool = [r for r in train if str(r["id"]) not in chosen]

            def one(labeled=labeled, pool=pool, n=n, ids=ids):
                res = b.engine(ds, LOOP_ALGORITHM, labeled, pool, evals, seed)
                rec = b.record(res)
                rec["next"] = {
                    s: pick(s, res, [str(r["id"]) for r in pool], LOOP_BATCH, np.random.default_rng([seed, n]))
                    for s in STRATEGIES
                }
                rec["labeled_ids"] = ids
                return rec

            rec = b.once(ds, method, n, seed, one)
            if strategy is None or step == LOOP_ROUNDS:
                break
            new = rec["next"][strategy]
            ids += new
            for i in new:  # random picks are a random sample of the pool; the others are not
                weights[i] = 1.0 if strategy == "random" else 0.0


# -- summary ------------------------------------------------------------------------------------
def load_runs(split: str) -> list[dict]:
    folder = os.path.join(RESULTS, "label_efficiency_runs", split)
    rows = []
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                rows.append(json.load(f))
    return rows


def _pl_precision(run: dict, label: str) -> float | None:
    last = [s for s in run.get("pseudo_labels", []) if s["label"] == label]
    if not last:
        return None
    s = last[-1]
    return s["correct"] / s["checked"] if s["checked"] else None


def _fmt(values: list[float], digits: int = 3) -> str:
    return f"{np.mean(values):.{digits}f}" if values else "–"


def summarise(split: str) -> str:
    runs = load_runs(split)
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["method"], str(r["labels"])), []).append(r)
    order = [
        "lr_probe",
        "setfit",
        "supervised",
        *SSL_ALGOS,
        "active_random",
        "active_suggested",
        *[f"active_random_{s}" for s in STRATEGIES],
        "active_suggested_queue",
    ]
    lab_order = lambda n: int(n) if n.isdigit() else 10**9  # noqa: E731
    lines = [
        f"# Label efficiency ({'test.jsonl' if split == 'test' else 'dev split carved from train'})",
        "",
        "Harmful-class metrics; mean ± std over the seeds present (n). Pseudo-label precision (PL prec.): the "
        "share of the final epoch's used pseudo-labels of that class whose hidden label agrees (pool labels "
        "are withheld from training and only counted). Seconds: wall time per run on the shared 2-core "
        "machine (load average at the end of each run in the run files).",
        "",
        "| data set | method | labels | F1 | precision | recall | AUPRC | PL prec. harmful | PL prec. unharmful "
        "| seconds | steps | n |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in sorted(groups, key=lambda k: (k[0], order.index(k[1]) if k[1] in order else 99, lab_order(k[2]))):
        g = groups[key]
        f1 = [x["metrics"]["f1"] for x in g]
        plh = [v for v in (_pl_precision(x, "harmful") for x in g) if v is not None]
        plu = [v for v in (_pl_precision(x, "unharmful") for x in g) if v is not None]
        steps = [x["timings"]["steps"] for x in g if x.get("timings", {}).get("steps")]
        lines.append(
            f"| {key[0]} | {key[1]} | {key[2]} | {np.mean(f1):.3f} ± {np.std(f1):.3f} | "
            f"{_fmt([x['metrics']['precision'] for x in g])} | {_fmt([x['metrics']['recall'] for x in g])} | "
            f"{_fmt([x['metrics']['auprc'] for x in g])} | {_fmt(plh, 2)} | {_fmt(plu, 2)} | "
            f"{np.mean([x['wall_seconds'] for x in g]):.0f} | {int(np.mean(steps)) if steps else '–'} | {len(g)} |"
        )
    text = "\n".join(lines) + "\n"
    suffix = "" if split == "test" else "_dev"
    with open(os.path.join(RESULTS, f"label_efficiency{suffix}.md"), "w") as f:
        f.write(text)
    _plot(groups, os.path.join(RESULTS, f"label_efficiency{suffix}.png"))
    return text


def _plot(groups, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    datasets = sorted({k[0] for k in groups})
    if not datasets:
        return
    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 4.5), squeeze=False)
    for ax, ds in zip(axes[0], datasets, strict=True):
        series: dict[str, list[tuple[float, float, float]]] = {}
        for (d, method, _), g in groups.items():
            if d != ds:
                continue
            f1 = [x["metrics"]["f1"] for x in g]
            point = (float(np.mean([x["n_labeled"] for x in g])), float(np.mean(f1)), float(np.std(f1)))
            if method in ("active_random", "active_suggested"):  # the first point of each of their loops
                for s in STRATEGIES:
                    series.setdefault(f"{method}_{s}", []).append(point)
            else:
                series.setdefault(method, []).append(point)
        for name, pts in sorted(series.items()):
            if name.startswith("active_suggested_") and name != "active_suggested_queue":
                continue
            xs, ys, es = zip(*sorted(pts), strict=True)
            ax.errorbar(xs, ys, yerr=es, fmt="o-" if len(pts) > 1 else "s", capsize=3, label=name, markersize=4)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{int(v):,}"))
        ax.set_xlabel("human labels")
        ax.set_ylabel("harmful F1")
        ax.set_title(ds)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="label_efficiency")
    ap.add_argument("--datasets", default="toxicchat,beavertails")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument(
        "--algorithms",
        default=",".join(SSL_ALGOS),
        help="semi-supervised algorithms the ssl part runs (comma-separated)",
    )
    ap.add_argument("--peers", default="lr_probe,setfit", help="peers part only: which peers to run")
    ap.add_argument(
        "--plans",
        default="",
        help="active part only: which selections to run (queue,random,least_confidence,suggested); default all",
    )
    ap.add_argument("--split", choices=("test", "dev"), default="test")
    ap.add_argument("--data-dir", default=os.environ.get("UMBRA_DATA_DIR", os.path.join(ROOT, "..", "shared", "data")))
    ap.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "umbra_bench"))
    ap.add_argument("--summary-only", action="store_true")
    args = ap.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    if set(parts) - set(PARTS):
        print(f"error: unknown part(s) {sorted(set(parts) - set(PARTS))}; known: {list(PARTS)}", file=sys.stderr)
        return 2
    if set(args.algorithms.split(",")) - set(SSL_ALGOS):
        print(f"error: unknown algorithm(s) in --algorithms; known: {list(SSL_ALGOS)}", file=sys.stderr)
        return 2
    datasets = [d for d in args.datasets.split(",") if d]
    for ds in datasets:
        for split in ("train", "test"):
            if not os.path.isfile(os.path.join(args.data_dir, ds, f"{split}.jsonl")):
                print(f"error: {args.data_dir}/{ds}/{split}.jsonl not found", file=sys.stderr)
                return 2
    b = Bench(args)
    if not args.summary_only:
        runners = {
            "peers": run_peers,
            "supervised": run_supervised,
            "ssl": run_ssl,
            "large": run_large,
            "active": run_active,
        }
        data = {ds: load_split(args.data_dir, ds, args.split) for ds in datasets}
        for part in parts:  # every seed of a part before the next part: partial runs stay comparable
            for seed in (int(s) for s in args.seeds.split(",") if s):
                for ds in datasets:
                    runners[part](b, ds, *data[ds], seed)
                    summarise(args.split)
    print(summarise(args.split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
