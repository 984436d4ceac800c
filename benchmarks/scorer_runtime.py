"""Scorer runtimes on CPU: fp32 (the saved weights) vs int8 (dynamic int8 Linear layers), in one run.

For a saved model (``--model``; trained e.g. with ``python -m ssl_engine train``) this reports

* **speed**: CPU time per text (``time.process_time``, ``--threads`` torch threads, so with 1
  thread it is per core) for single-text calls and for batches of ``--batch``, the two
  runtimes interleaved round by round (``--rounds``) so load drift on a shared machine hits
  both alike; median over rounds, and texts/s per core;
* **quality**: harmful-class F1, precision and recall on ``--data`` (ToxicChat test) at the
  fp32 model's own threshold (the one saved with it) for both runtimes, how many decisions
  differ and the largest |Δ p(harmful)|.

Usage::

    .venv/bin/python benchmarks/scorer_runtime.py --model path/to/model --out benchmarks/results/scorer_runtime.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNTIMES = ("fp32", "int8")


def _rows(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _cpu_ms_per_text(scorer, texts: list[str], batch: int) -> float:
    t0 = time.process_time()
    if batch == 1:
        for t in texts:
            scorer.score([t], batch_size=1)
    else:
        for s in range(0, len(texts), batch):
            scorer.score(texts[s : s + batch], batch_size=batch)
    return (time.process_time() - t0) / len(texts) * 1000


def _quality(p: list[float], y: list[int], threshold: float) -> dict:
    pred = [int(x >= threshold) for x in p]
    tp = sum(1 for a, b in zip(pred, y, strict=True) if a and b)
    fp = sum(1 for a, b in zip(pred, y, strict=True) if a and not b)
    fn = sum(1 for a, b in zip(pred, y, strict=True) if not a and b)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {
        "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
        "precision": prec,
        "recall": rec,
        "flagged": sum(pred),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="A saved model folder (umbra_model.json inside).")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "toxicchat" / "test.jsonl"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-single", type=int, default=100, help="Single-text calls per runtime and round.")
    ap.add_argument("--n-batched", type=int, default=256, help="Texts scored in batches per runtime and round.")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from ssl_engine.engine import load_scorer
    from ssl_engine.settings import EngineSettings

    settings = EngineSettings(num_threads=args.threads)
    scorers = {rt: load_scorer(args.model, device="cpu", settings=settings, runtime=rt) for rt in RUNTIMES}
    threshold = scorers["fp32"].threshold
    rows = _rows(args.data)
    texts = [r["text"] for r in rows]
    labels = [int(r["label"] == "harmful") for r in rows]

    # Quality on the whole test file, at the fp32 model's threshold.
    probs = {rt: [p for p, _ in sc.score(texts, batch_size=64)] for rt, sc in scorers.items()}
    quality = {rt: _quality(probs[rt], labels, threshold) for rt in RUNTIMES}
    differ = sum(1 for a, b in zip(probs["fp32"], probs["int8"], strict=True) if (a >= threshold) != (b >= threshold))
    max_dp = max(abs(a - b) for a, b in zip(probs["fp32"], probs["int8"], strict=True))

    # Speed: the same texts for both runtimes, interleaved round by round (alternating order).
    single_texts = texts[: args.n_single]
    batched_texts = texts[args.n_single : args.n_single + args.n_batched]
    for sc in scorers.values():  # warm-up
        _cpu_ms_per_text(sc, single_texts[:10], 1)
        _cpu_ms_per_text(sc, batched_texts[: args.batch], args.batch)
    single = {rt: [] for rt in RUNTIMES}
    batched = {rt: [] for rt in RUNTIMES}
    load_before = os.getloadavg()[0]
    for r in range(args.rounds):
        for rt in RUNTIMES if r % 2 == 0 else RUNTIMES[::-1]:
            single[rt].append(_cpu_ms_per_text(scorers[rt], single_texts, 1))
            batched[rt].append(_cpu_ms_per_text(scorers[rt], batched_texts, args.batch))
    load_after = os.getloadavg()[0]
    speed = {
        rt: {"single_ms": statistics.median(single[rt]), "batch_ms": statistics.median(batched[rt])} for rt in RUNTIMES
    }

    meta = scorers["fp32"].meta
    lines = [
        "# Scorer runtimes on CPU: fp32 vs int8",
        "",
        f"Model `{args.model}` ({meta.get('algorithm')}, {meta.get('mode')}, {meta.get('counts', {}).get('labeled_train')} "
        f"labels, max_length {meta.get('max_length')}, threshold {threshold:.4f} from the fp32 model); "
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} torch thread(s). "
        f"Load average {load_before:.1f} before / {load_after:.1f} after the speed runs (shared machine: CPU time, "
        "not wall time, is compared).",
        "",
        f"## Speed (CPU ms per text, median of {args.rounds} interleaved rounds; {args.n_single} single-text calls, "
        f"{args.n_batched} texts in batches of {args.batch}; the first texts of {Path(args.data).name})",
        "",
        "| runtime | single text: CPU ms | texts/s per core | batch: CPU ms per text | texts/s per core |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for rt in RUNTIMES:
        sp = speed[rt]
        lines.append(
            f"| {rt} | {sp['single_ms']:.2f} | {1000 / sp['single_ms']:.1f} | {sp['batch_ms']:.2f} | "
            f"{1000 / sp['batch_ms']:.1f} |"
        )
    s_gain = speed["fp32"]["single_ms"] / speed["int8"]["single_ms"]
    b_gain = speed["fp32"]["batch_ms"] / speed["int8"]["batch_ms"]
    lines += [
        "",
        f"int8 vs fp32: **{s_gain:.2f}×** less CPU per single text, **{b_gain:.2f}×** per batched text (target ≥ 2×).",
        "",
        f"## Quality on {Path(args.data).parent.name}/{Path(args.data).name} ({len(rows)} texts, "
        f"{sum(labels)} harmful), threshold {threshold:.4f}",
        "",
        "| runtime | F1 | precision | recall | flagged |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for rt in RUNTIMES:
        q = quality[rt]
        lines.append(f"| {rt} | {q['f1']:.4f} | {q['precision']:.4f} | {q['recall']:.4f} | {q['flagged']} |")
    df1 = quality["int8"]["f1"] - quality["fp32"]["f1"]
    lines += [
        "",
        f"ΔF1 (int8 − fp32) **{df1:+.4f}** (target |ΔF1| ≤ 0.005); {differ} of {len(rows)} decisions differ; "
        f"largest |Δ p(harmful)| {max_dp:.4f}.",
        "",
        f"Reproduce: `.venv/bin/python benchmarks/scorer_runtime.py --model {args.model} --threads {args.threads}`.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
