"""Label-efficiency benchmark: harmful F1 vs number of labels, per algorithm (resumable).

    python benchmarks/label_efficiency.py [--datasets toxicchat,beavertails] [--seeds 0,1,2]
        [--algorithms supervised,fixmatch,...] [--mode cpu-fast] [--data-dir /work/shared/data]
    python -m ssl_engine bench ...   (same)

Runs, per dataset and seed: every algorithm at 200 labels, ``supervised`` at 2,000 and all
labels. Each run writes one JSON under benchmarks/results/label_efficiency_runs/ and is
skipped when that file exists. The table (mean ± std of harmful F1 on test.jsonl, train
time) and a PNG plot go to benchmarks/results/label_efficiency.{md,png}.

The data sets are read from --data-dir and never copied. Test data is only evaluated,
never used for any choice: thresholds come from a split of the labeled draw.
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

RESULTS = os.path.join(ROOT, "benchmarks", "results")
RUNS = os.path.join(RESULTS, "label_efficiency_runs")
ALL_ALGOS = ("supervised", "fixmatch", "freematch", "marginmatch", "multimatch")
# Settings for the default CPU benchmark (chosen on a dev split carved from train, not on test).
CPU_CONFIG = {"epochs": 3, "epoch_unlabeled": 640, "min_steps": 120}
LARGE_SUPERVISED = {"epochs": 1, "min_steps": 250}  # 2,000 / all labels: >= 1 pass over the labeled set


def planned_runs(datasets, seeds, algorithms, n_small: int = 200, n_mid: int = 2000):
    for ds in datasets:
        for seed in seeds:
            for alg in algorithms:
                yield ds, alg, n_small, seed
            if "supervised" in algorithms:
                yield ds, "supervised", n_mid, seed
                yield ds, "supervised", "all", seed


def run_one(ds: str, alg: str, n, seed: int, *, data_dir: str, mode: str | None, workdir: str) -> dict:
    from ssl_engine.cli import draw_labeled, read_jsonl, run_from_rows

    train = read_jsonl(os.path.join(data_dir, ds, "train.jsonl"), need_label=True)
    test = read_jsonl(os.path.join(data_dir, ds, "test.jsonl"), need_label=True)
    n_lab = len(train) if n == "all" else int(n)
    labeled, rest = draw_labeled(train, n_lab, seed)
    config = dict(CPU_CONFIG) if n != "all" and n_lab <= 200 else dict(LARGE_SUPERVISED)
    out_dir = os.path.join(workdir, f"{ds}_{alg}_{n}_{seed}")
    res = run_from_rows(labeled, rest, {ds: test}, algorithm=alg, seed=seed, out_dir=out_dir, mode=mode,
                        config=config)
    shutil.rmtree(out_dir, ignore_errors=True)  # models are large; the benchmark keeps metrics only
    res.pop("model_dir", None)
    res.update({"dataset": ds, "labels": n, "n_labeled": n_lab})
    return res


def summarise(datasets, algorithms) -> str:
    import numpy as np

    rows = []
    if os.path.isdir(RUNS):
        for name in sorted(os.listdir(RUNS)):
            if name.endswith(".json"):
                with open(os.path.join(RUNS, name)) as f:
                    rows.append(json.load(f))
    lines = ["# Label efficiency (harmful-class F1 on each test.jsonl)", "",
             "Backbone all-MiniLM-L6-v2, mode cpu-fast (2 top layers trained on cached lower-layer states), "
             "2 shared CPU cores (other jobs running; seconds are wall time under load, 1 torch thread). "
             "Threshold (threshold_strategy=auto, never on test): 200 labels -> prior_match (the (1-π) quantile "
             "of the unlabeled pool's scores, π = harmful share of the labeled draw); 2,000 / all labels -> "
             "F1-best threshold on a 20 % validation split of the labeled draw. "
             "mean ± std over the seeds present (n = number of seeds).",
             f"Settings: 200 labels {CPU_CONFIG}; 2,000 / all labels {LARGE_SUPERVISED}; other TrainConfig "
             "defaults (batch 16, 1 unlabeled per labeled, max_length 64, lr 1e-4 / heads 1e-3, balanced "
             "labeled batches, strong view = word_dropout, 2 cached views per text).", "",
             "| dataset | algorithm | labels | F1 | precision | recall | AUPRC | seconds/run | n |",
             "|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["algorithm"], str(r["labels"])), []).append(r)
    order = {a: i for i, a in enumerate(ALL_ALGOS)}
    for key in sorted(groups, key=lambda k: (k[0], {"200": 0, "2000": 1, "all": 2}.get(k[2], 3), order.get(k[1], 9))):
        ds, alg, n = key
        g = groups[key]
        m = {k: np.array([x["eval"][ds][k] for x in g]) for k in ("f1", "precision", "recall", "auprc")}
        secs = np.array([x["train_seconds"] for x in g])
        lines.append(f"| {ds} | {alg} | {n} | {m['f1'].mean():.3f} ± {m['f1'].std():.3f} | "
                     f"{m['precision'].mean():.3f} | {m['recall'].mean():.3f} | {m['auprc'].mean():.3f} | "
                     f"{secs.mean():.0f} | {len(g)} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "label_efficiency.md"), "w") as f:
        f.write(text)
    _plot(groups)
    return text


def _plot(groups) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    datasets = sorted({k[0] for k in groups})
    if not datasets:
        return
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        sup = []
        for n in ("200", "2000", "all"):
            g = groups.get((ds, "supervised", n))
            if g:
                x = float(np.mean([r["n_labeled"] for r in g]))
                f = [r["eval"][ds]["f1"] for r in g]
                sup.append((x, np.mean(f), np.std(f)))
        if sup:
            xs, ys, es = zip(*sup)
            ax.errorbar(xs, ys, yerr=es, marker="o", label="supervised")
        for alg in ALL_ALGOS[1:]:
            g = groups.get((ds, alg, "200"))
            if g:
                f = [r["eval"][ds]["f1"] for r in g]
                ax.errorbar([200], [np.mean(f)], yerr=[np.std(f)], marker="s", linestyle="", label=alg)
        ax.set_xscale("log")
        ticks = sorted({int(x) for x, _, _ in sup} | {200}) if sup else [200]
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{t:,}" for t in ticks])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("labeled examples")
        ax.set_ylabel("harmful F1 (test)")
        ax.set_title(ds)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "label_efficiency.png"), dpi=120)
    plt.close(fig)


def measure_modes(data_dir: str, workdir: str, modes=("cpu-fast", "lora", "full"), steps: int = 20) -> str:
    """Seconds per step, preparation and scoring throughput of each mode (multimatch, 200 labels).

    A full round is extrapolated as prepare + steps x s/step + scoring of the pool and test set,
    with the benchmark's step count; cpu-fast preparation is measured on a warm cache.
    """
    import numpy as np

    from ssl_engine.cli import draw_labeled, read_jsonl, run_from_rows
    from ssl_engine.engine import load_scorer

    train = read_jsonl(os.path.join(data_dir, "toxicchat", "train.jsonl"), need_label=True)
    test = read_jsonl(os.path.join(data_dir, "toxicchat", "test.jsonl"), need_label=True)
    labeled, rest = draw_labeled(train, 200, 0)
    lines = ["# Mode costs (toxicchat, multimatch, 200 labels, all-MiniLM-L6-v2, CPU)", "",
             "| mode | trainable params | s/step | prepare s | score items/s (pool) | est. round s "
             "(120 steps, 4,152 pool + 1,088 test) |", "|---|---|---|---|---|---|"]
    for mode in modes:
        out_dir = os.path.join(workdir, f"modes_{mode}")
        cfg = {"max_steps": steps, "min_steps": steps, "epoch_unlabeled": 640}
        res = run_from_rows(labeled, rest[:1000], {}, algorithm="multimatch", seed=0, out_dir=out_dir, mode=mode,
                            config=cfg)
        t = res["timings"]
        s_step = t["train_seconds"] / t["steps"]
        ips = t["score_items_per_s"]
        est = t["prepare_seconds"] * 4.152 + 120 * s_step + (4152 + 1088) / max(ips, 1e-9)
        if mode == "cpu-fast":  # warm cache: only tokenisation remains of the preparation
            res2 = run_from_rows(labeled, rest[:1000], {}, algorithm="multimatch", seed=0, out_dir=out_dir,
                                 mode=mode, config=cfg)
            est = res2["timings"]["prepare_seconds"] * 4.152 + 120 * s_step + (4152 + 1088) / max(ips, 1e-9)
        trainable = {"cpu-fast": "top 2 layers + heads", "lora": "LoRA r=8 (q,k,v) + heads",
                     "full": "all + heads"}[mode]
        lines.append(f"| {mode} | {trainable} | {s_step:.2f} | {t['prepare_seconds']:.0f} | {ips:.0f} | {est:.0f} |")
        scorer_dir = res["model_dir"]
        if mode == "cpu-fast":
            scorer = load_scorer(scorer_dir, device="cpu")
            texts = [r["text"] for r in test]
            short = [x for x in texts if len(x) < 200][:1000]
            t0 = time.time()
            scorer.score(short, batch_size=64)
            short_ips = len(short) / (time.time() - t0)
            t0 = time.time()
            scorer.score(texts[:1000], batch_size=64)
            all_ips = 1000 / (time.time() - t0)
        shutil.rmtree(out_dir, ignore_errors=True)
    lines += ["", f"load_scorer().score on ToxicChat test texts: {short_ips:.0f} items/s for short texts (<200 chars), "
              f"{all_ips:.0f} items/s for the first 1,000 texts (max_length 64), batch 64, "
              f"{os.environ.get('UMBRA_NUM_THREADS', 'default')} torch thread(s), shared 2-core machine.",
              f"Measured with {steps} steps per mode; load average at the end: {os.getloadavg()[0]:.1f}."]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(RESULTS, "label_efficiency_modes.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="label_efficiency")
    parser.add_argument("--datasets", default="toxicchat,beavertails")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--algorithms", default=",".join(ALL_ALGOS))
    parser.add_argument("--mode", default=None, help="cpu-fast | lora | full (default: by device)")
    parser.add_argument("--data-dir", default=os.environ.get("UMBRA_DATA_DIR", "/work/shared/data"))
    parser.add_argument("--workdir", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "umbra_bench"))
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--measure-modes", action="store_true", help="time cpu-fast / lora / full and exit")
    args = parser.parse_args(argv)
    if args.measure_modes:
        os.makedirs(RESULTS, exist_ok=True)
        print(measure_modes(args.data_dir, args.workdir))
        return 0
    datasets = [d for d in args.datasets.split(",") if d]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    algorithms = [a for a in args.algorithms.split(",") if a]
    unknown = set(algorithms) - set(ALL_ALGOS)
    if unknown:
        print(f"error: unknown algorithm(s) {sorted(unknown)}", file=sys.stderr)
        return 2
    for ds in datasets:
        for split in ("train", "test"):
            if not os.path.isfile(os.path.join(args.data_dir, ds, f"{split}.jsonl")):
                print(f"error: {args.data_dir}/{ds}/{split}.jsonl not found", file=sys.stderr)
                return 2
    os.makedirs(RUNS, exist_ok=True)
    if not args.summary_only:
        threads = os.environ.get("UMBRA_NUM_THREADS")
        if threads:
            import torch

            torch.set_num_threads(int(threads))
        for ds, alg, n, seed in planned_runs(datasets, seeds, algorithms):
            path = os.path.join(RUNS, f"{ds}_{alg}_{n}_{seed}.json")
            if os.path.exists(path):
                continue
            t0 = time.time()
            res = run_one(ds, alg, n, seed, data_dir=args.data_dir, mode=args.mode, workdir=args.workdir)
            with open(path + ".tmp", "w") as f:
                json.dump(res, f, indent=2)
            os.replace(path + ".tmp", path)
            print(f"{ds} {alg} {n} seed={seed}: F1={res['eval'][ds]['f1']:.3f} ({time.time() - t0:.0f}s)", flush=True)
            summarise(datasets, algorithms)
    print(summarise(datasets, algorithms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
