"""Benchmark: offline LLM rewrites (SmolLM2-135M-Instruct) — throughput, curation yield, F1 effect.

Part A (always): generation throughput of the offline default on this machine,
batched vs one text at a time, and the share of variants that survive answer
parsing and curation (MiniLM similarity band, duplicates, refusals, language...).

Part B (``--f1``): the SSL effect at 200 labels with ``ssl_engine.engine.run_round``
(cpu-fast mode): (a) the cheap augmenter only, (b) curated LLM rewrites as strong
views, (c) uncurated rewrites (every raw answer, stripped). Only ``--pool`` unlabeled
texts get rewrites (generation is slow on CPU), and the pool is restricted to them
in all three arms so the comparison is fair.

Run: nice -n 10 .venv/bin/python benchmarks/augmentation.py [--n 24] [--f1 --pool 300]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path("/work/shared/data/toxicchat")
CACHE = Path.home() / ".cache" / "umbra" / "bench"
OUT = Path(__file__).resolve().parent / "results" / "augmentation.md"


def load(split):
    rows = [json.loads(line) for line in (DATA / f"{split}.jsonl").open()]
    return rows


def part_a(n, n_single, n_variants, threads):
    from ssl_engine.augment.curation import curate_variants, minilm_embedder
    from ssl_engine.augment.llm import rewrite_texts
    from ssl_engine.augment.providers import LocalHFProvider

    rows = load("train")
    rng = np.random.default_rng(7)
    idx = rng.permutation(len(rows))
    # Short and medium prompts (the bulk of ToxicChat); long ones are reported separately by length.
    texts = [rows[i]["text"] for i in idx if len(rows[i]["text"]) <= 400][:n]
    t0 = time.perf_counter()
    prov = LocalHFProvider(batch_size=8)
    conv_dir = prov.model_dir()
    first_prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    prov.load()
    load_s = time.perf_counter() - t0

    def run(batch_size, sub):
        prov.batch_size = batch_size
        prov.stats.update(new_tokens=0, sequences=0, seconds=0.0)
        import random

        t = time.perf_counter()
        res = rewrite_texts(
            sub, provider=prov, n_variants=n_variants, batch_size=batch_size, max_rounds=1, rng=random.Random(0)
        )
        dt = time.perf_counter() - t
        return res, dt, dict(prov.stats)

    res_b, dt_b, st_b = run(8, texts)
    res_1, dt_1, st_1 = run(1, texts[:n_single])
    raw_total = sum(len(r.variants) + len(r.rejected) for r in res_b)
    parsed_ok = sum(len(r.variants) for r in res_b)
    reasons = {}
    for r in res_b:
        for x in r.rejected:
            reasons[x.reason.split(":")[0]] = reasons.get(x.reason.split(":")[0], 0) + 1
    embed = minilm_embedder()
    rep = curate_variants(texts, [list(r.variants) for r in res_b], embed=embed)
    examples = []
    for r, ds in zip(res_b[:6], rep.decisions[:6], strict=True):
        for d in ds[:2]:
            examples.append((r.source[:90], d.text[:110], "kept" if d.kept else "; ".join(d.reasons)[:60]))
    return {
        "texts": texts,
        "res": res_b,
        "rep": rep,
        "first_prep": first_prep,
        "load_s": load_s,
        "conv_dir": conv_dir,
        "batched": (len(texts), dt_b, st_b),
        "single": (n_single, dt_1, st_1),
        "raw_total": raw_total,
        "parsed_ok": parsed_ok,
        "parse_reasons": reasons,
        "examples": examples,
    }


def part_b(pool_n, n_labels, seeds, n_variants, threads):
    """SSL effect at ``n_labels`` labels: cheap vs curated vs uncurated LLM strong views."""
    import random

    from ssl_engine.augment.curation import curate_variants, minilm_embedder
    from ssl_engine.augment.llm import rewrite_texts
    from ssl_engine.augment.providers import LocalHFProvider
    from ssl_engine.engine import run_round
    from ssl_engine.types import LabeledText, RoundInput, UnlabeledText

    train, test = load("train"), load("test")
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(train))
    pool_rows = [train[i] for i in perm[n_labels * 2 : n_labels * 2 + pool_n]]
    cache = CACHE / f"aug_pool_{pool_n}_{n_variants}.json"
    if cache.exists():
        gen = json.loads(cache.read_text())
        gen_s = gen["seconds"]
    else:
        prov = LocalHFProvider(batch_size=8)
        t = time.perf_counter()
        res = rewrite_texts(
            [r["text"][:600] for r in pool_rows],
            provider=prov,
            n_variants=n_variants,
            batch_size=8,
            max_rounds=1,
            rng=random.Random(0),
        )
        gen_s = time.perf_counter() - t
        gen = {
            "seconds": gen_s,
            "parsed": [list(r.variants) for r in res],
            "raw": [list(r.variants) + [x.raw.strip() for x in r.rejected if x.raw.strip()] for r in res],
        }
        CACHE.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(gen))
    rep = curate_variants([r["text"][:600] for r in pool_rows], gen["parsed"], embed=minilm_embedder())
    curated = rep.kept
    eval_rows = test
    evals = {"test": [LabeledText(r["id"], r["text"], int(r["label"] == "harmful")) for r in eval_rows]}
    out = {}
    for seed in range(seeds):
        srng = np.random.default_rng(100 + seed)
        lab_idx = srng.choice(perm[: n_labels * 2], n_labels, replace=False)
        labeled = [LabeledText(train[i]["id"], train[i]["text"], int(train[i]["label"] == "harmful")) for i in lab_idx]
        arms = {
            "a_cheap": [UnlabeledText(r["id"], r["text"]) for r in pool_rows],
            "b_curated_llm": [
                UnlabeledText(r["id"], r["text"], strong_views=tuple(v))
                for r, v in zip(pool_rows, curated, strict=True)
            ],
            "c_uncurated_llm": [
                UnlabeledText(r["id"], r["text"], strong_views=tuple(v))
                for r, v in zip(pool_rows, gen["raw"], strict=True)
            ],
        }
        for arm, unl in arms.items():
            t = time.perf_counter()
            rr = run_round(
                RoundInput(labeled=labeled, unlabeled=unl, out_dir=str(CACHE / f"round_{arm}_{seed}"), algorithm="fixmatch",
                           eval_sets=evals, mode="cpu-fast", device="cpu", seed=seed)
            )  # fmt: skip
            out.setdefault(arm, []).append((rr.metrics["test"]["f1"], time.perf_counter() - t))
    return {
        "gen_s": gen_s,
        "pool": pool_n,
        "curated_share": rep.n_kept / max(1, rep.n_total),
        "with_view": sum(bool(v) for v in curated),
        "runs": out,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--n-single", type=int, default=8)
    ap.add_argument("--variants", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--f1", action="store_true")
    ap.add_argument("--pool", type=int, default=300)
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    a = part_a(args.n, args.n_single, args.variants, args.threads)
    nb, dtb, stb = a["batched"]
    ns, dts, sts = a["single"]
    rep = a["rep"]
    lines = [
        "# LLM augmentation (offline default: SmolLM2-135M-Instruct)",
        "",
        f"Machine: 2 CPU cores shared with other jobs (load average during the run: {os.getloadavg()[0]:.1f}); "
        f"torch threads {args.threads}; fp32. Texts: ToxicChat train prompts ≤ 400 chars, fixed random sample. "
        f"Prompt version: umbra-rewrite-v1 (system instructions + 2 few-shot demos), temperature 0.9, top-p 0.95, "
        f"{args.variants} variants per text, one round (no top-up).",
        "",
        "## Throughput",
        "",
        f"- One-time GGUF → safetensors conversion + tokenizer: {a['first_prep']:.1f} s (0 if already cached; cache `{a['conv_dir']}`); "
        f"model load from the cache: {a['load_s']:.2f} s.",
        "",
        "| mode | texts | wall s | variants/s (raw answers) | new tokens/s | texts/s |",
        "|---|---|---|---|---|---|",
        f"| batched (8 texts × {args.variants} samples per generate) | {nb} | {dtb:.1f} | {stb['sequences'] / dtb:.2f} | {stb['new_tokens'] / dtb:.1f} | {nb / dtb:.2f} |",
        f"| one text at a time ({args.variants} samples per generate) | {ns} | {dts:.1f} | {sts['sequences'] / dts:.2f} | {sts['new_tokens'] / dts:.1f} | {ns / dts:.2f} |",
        "",
        "## Yield",
        "",
        f"- Raw answers: {a['raw_total']}; accepted by answer parsing: {a['parsed_ok']} ({a['parsed_ok'] / max(1, a['raw_total']):.0%}); "
        f"parse rejections: {a['parse_reasons']}.",
        f"- Passing curation (MiniLM cosine band [0.5, 0.98], near-duplicate Jaccard 0.9, length, refusal, language): "
        f"{rep.n_kept} of {rep.n_total} parsed ({rep.n_kept / max(1, rep.n_total):.0%}); overall {rep.n_kept / max(1, a['raw_total']):.0%} of raw answers. "
        f"Drops by reason: {rep.counts}.",
        "",
        "Examples (source → variant → decision):",
        "",
    ]
    for s, v, d in a["examples"]:
        lines.append(f"- `{s!r}` → `{v!r}` → {d}")
    if args.f1:
        b = part_b(args.pool, args.labels, args.seeds, args.variants, args.threads)
        lines += [
            "",
            f"## F1 effect at {args.labels} labels (FixMatch, cpu-fast, ToxicChat test)",
            "",
            f"Unlabeled pool restricted to {b['pool']} train texts that got rewrites (generation {b['gen_s']:.0f} s); "
            f"{b['curated_share']:.0%} of parsed rewrites pass curation, {b['with_view']} pool texts keep ≥ 1 curated view "
            "(texts without one fall back to the cheap augmenter).",
            "",
            "| arm | harmful F1 (per seed) | mean | round s |",
            "|---|---|---|---|",
        ]
        for arm, runs in b["runs"].items():
            f1s = [f for f, _ in runs]
            lines.append(
                f"| {arm} | {', '.join(f'{f:.3f}' for f in f1s)} | {np.mean(f1s):.3f} | {np.mean([s for _, s in runs]):.0f} |"
            )
    else:
        lines += ["", "## F1 effect", "", "Not run (pass `--f1`)."]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
