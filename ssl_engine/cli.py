"""Command line: train a round from JSONL (with optional precomputed views), predict with a saved model.

Bad input (missing file, malformed line, too few labels, a missing class) gives a one-line
message on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence

from ssl_engine import LABEL_NAMES


class InputError(Exception):
    """A user-facing problem with the command's input."""


def read_jsonl(path: str, *, need_label: bool) -> list[dict]:
    """Rows of a JSONL file with ``id``, ``text``, optional ``prompt`` and (if needed) ``label``."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n}: malformed JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{n}: expected a JSON object")
            if not isinstance(row.get("text"), str):
                raise InputError(f"{path}:{n}: missing or non-string 'text'")
            if row.get("prompt") is not None and not isinstance(row["prompt"], str):
                raise InputError(f"{path}:{n}: 'prompt' must be a string or null")
            if "id" not in row:
                row["id"] = f"line-{n}"
            if need_label and row.get("label") not in LABEL_NAMES:
                raise InputError(f"{path}:{n}: 'label' must be one of {list(LABEL_NAMES)}, got {row.get('label')!r}")
            rows.append(row)
    if not rows:
        raise InputError(f"{path}: no examples")
    return rows


def draw_labeled(rows: Sequence[dict], n: int, seed: int, min_per_class: int = 4):
    """Stratified seeded draw of ``n`` labeled rows (at least ``min_per_class`` of each class).

    Returns (labeled, rest); ``n`` >= len(rows) takes everything.
    """
    import numpy as np

    by_class = {c: [i for i, r in enumerate(rows) if r["label"] == c] for c in LABEL_NAMES}
    for c, ix in by_class.items():
        if len(ix) < min(min_per_class, max(1, n // 2)):
            raise InputError(
                f"class {c!r} has {len(ix)} examples in the training file; need at least "
                f"{min(min_per_class, max(1, n // 2))}"
            )
    if n >= len(rows):
        return list(rows), []
    if n < 2 * min_per_class:
        raise InputError(f"--labeled {n} is too small: need at least {2 * min_per_class} (a few per class)")
    rng = np.random.default_rng(seed)
    picked = []
    for ix in by_class.values():
        k = max(min_per_class, int(round(n * len(ix) / len(rows))))
        k = min(k, len(ix))
        picked.extend(rng.choice(ix, size=k, replace=False).tolist())
    short = n - len(picked)
    if short > 0:
        left = np.setdiff1d(np.arange(len(rows)), picked)
        picked.extend(rng.choice(left, size=short, replace=False).tolist())
    elif short < 0:  # rounding overshoot: drop from the largest class
        big = max(by_class, key=lambda c: len(by_class[c]))
        big_set = set(by_class[big])
        drop = [i for i in picked if i in big_set][:-short]
        picked = [i for i in picked if i not in set(drop)]
    chosen = set(picked)
    return [rows[i] for i in sorted(chosen)], [r for i, r in enumerate(rows) if i not in chosen]


def _parse_eval(specs: Sequence[str]) -> dict[str, str]:
    out = {}
    for spec in specs:
        if "=" not in spec:
            raise InputError(f"--eval expects NAME=FILE.jsonl, got {spec!r}")
        name, path = spec.split("=", 1)
        out[name] = path
    return out


def train_main(args: argparse.Namespace) -> int:
    from ssl_engine.configs import validate_config

    config = json.loads(args.config) if args.config else {}
    if args.unlabeled is not None:
        config.setdefault("max_unlabeled", max(1, args.unlabeled))
    try:
        validate_config(args.algorithm, config)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    rows = read_jsonl(args.train, need_label=True)
    evals = {name: read_jsonl(path, need_label=True) for name, path in _parse_eval(args.eval).items()}
    if args.labeled > len(rows):
        raise InputError(f"--labeled {args.labeled} but {args.train} has only {len(rows)} examples")
    labeled, rest = draw_labeled(rows, args.labeled, args.seed)
    if args.unlabeled is not None:
        rest = rest[: args.unlabeled]
    views = read_views(args.views) if args.views else None
    result = run_from_rows(
        labeled,
        rest,
        evals,
        algorithm=args.algorithm,
        seed=args.seed,
        out_dir=args.out,
        mode=args.mode,
        backbone=args.backbone,
        config=config,
        device=args.device,
        views=views,
    )
    print(json.dumps({k: result["eval"][k]["f1"] for k in result["eval"]}))
    return 0


def read_views(path: str) -> dict[str, tuple[str, ...]]:
    """Precomputed strong views (LLM rewrites, backtranslations): JSONL rows ``{"id", "views": [...]}``
    or ``{"id", "text"}`` (one view per row; several rows may share an id)."""
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n}: malformed JSON ({exc.msg})") from None
            if not isinstance(row, dict) or "id" not in row:
                raise InputError(f"{path}:{n}: expected a JSON object with an 'id'")
            views = row.get("views", [row.get("text")] if "text" in row else None)
            if not isinstance(views, list) or not all(isinstance(v, str) and v.strip() for v in views):
                raise InputError(f"{path}:{n}: 'views' must be a list of non-empty strings (or give one 'text')")
            out.setdefault(str(row["id"]), []).extend(views)
    return {k: tuple(v) for k, v in out.items()}


def run_from_rows(
    labeled,
    unlabeled,
    evals,
    *,
    algorithm,
    seed,
    out_dir,
    mode=None,
    backbone=None,
    config=None,
    device=None,
    views=None,
    hidden_labels: bool = False,
    settings=None,
    keep_predictions: bool = False,
) -> dict:
    """Run one round on JSONL rows and write ``out_dir/metrics.json``; return that dict.

    ``views`` maps an id to its precomputed strong views. With ``hidden_labels`` the unlabeled
    rows' labels travel as withheld labels (pseudo-label precision only; never trained on).
    A labeled row may carry ``prior_weight`` (see ``LabeledText``). ``keep_predictions`` adds
    the per-item predictions (id, p_harmful, review priority and reason) to the returned dict.
    """
    from ssl_engine.engine import labeled_from_rows, run_round
    from ssl_engine.types import RoundInput, UnlabeledText

    views = views or {}
    idx = {n: i for i, n in enumerate(LABEL_NAMES)}
    os.makedirs(out_dir, exist_ok=True)
    labeled_texts = [
        dataclasses.replace(x, strong_views=views.get(x.example_id, ()))
        for x in labeled_from_rows(labeled, LABEL_NAMES)
    ]
    inp = RoundInput(
        labeled=labeled_texts,
        unlabeled=[
            UnlabeledText(
                str(r["id"]),
                r["text"],
                r.get("prompt"),
                strong_views=views.get(str(r["id"]), ()),
                hidden_label=idx.get(r.get("label")) if hidden_labels else None,
            )
            for r in unlabeled
        ],
        out_dir=out_dir,
        algorithm=algorithm,
        config=config or {},
        eval_sets={k: labeled_from_rows(v, LABEL_NAMES) for k, v in evals.items()},
        label_names=LABEL_NAMES,
        mode=mode,
        backbone=backbone,
        device=device,
        seed=seed,
    )
    t0 = time.time()
    res = run_round(inp, settings=settings)
    out = {
        "eval": res.metrics,
        "algorithm": algorithm,
        "labeled": len(labeled),
        "unlabeled": len(unlabeled),
        "seed": seed,
        "train_seconds": time.time() - t0,
        "threshold": res.threshold,
        "timings": res.timings,
        "mode": res.mode or mode,
        "config": config or {},
        "model_dir": res.model_dir,
        "threshold_strategy": res.threshold_strategy,
        "threshold_note": res.threshold_note,
        "pseudo_labels": [dataclasses.asdict(s) | {"precision": s.precision} for s in res.pseudo_labels],
    }
    if keep_predictions:
        out["predictions"] = [
            {
                "example_id": p.example_id,
                "p_harmful": p.p_harmful,
                "review_priority": p.review_priority,
                "review_reason": p.review_reason,
            }
            for p in res.predictions
        ]
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump({k: v for k, v in out.items() if k != "predictions"}, f, indent=2)
    return out


def predict_main(args: argparse.Namespace) -> int:
    from ssl_engine.model import META_FILE

    if not os.path.isfile(os.path.join(args.model, META_FILE)):
        raise InputError(f"{args.model}: not a saved model (no {META_FILE})")
    rows = read_jsonl(args.input, need_label=False)
    from ssl_engine.engine import load_scorer

    scorer = load_scorer(args.model, device=args.device)
    names = scorer.meta["label_names"]
    k = scorer.positive_index
    scores = scorer.score([r["text"] for r in rows], [r.get("prompt") for r in rows], batch_size=args.batch_size)
    with open(args.out, "w", encoding="utf-8") as f:
        for r, (p, _) in zip(rows, scores, strict=True):
            label = names[k] if p >= scorer.threshold else names[1 - k] if len(names) == 2 else names[k]
            f.write(json.dumps({"id": r["id"], "p_harmful": p, "label": label}) + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ssl_engine.configs import ALGORITHM_NAMES, DEFAULT_ALGORITHM, MODES

    parser = argparse.ArgumentParser(prog="python -m ssl_engine")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one round from a labeled JSONL file")
    t.add_argument("--train", required=True)
    t.add_argument("--labeled", type=int, required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--algorithm", choices=ALGORITHM_NAMES, default=DEFAULT_ALGORITHM)
    t.add_argument("--unlabeled", type=int, default=None, help="cap on the unlabeled pool")
    t.add_argument("--mode", choices=MODES, default=None)
    t.add_argument("--backbone", default=None)
    t.add_argument("--device", default=None)
    t.add_argument(
        "--config",
        default=None,
        help='JSON object of TrainConfig/algorithm settings, e.g. \'{"strong_augmenter": "synonym"}\'',
    )
    t.add_argument(
        "--views",
        default=None,
        metavar="VIEWS.jsonl",
        help='precomputed strong views (LLM rewrites, backtranslations): {"id", "views": [...]} per line',
    )
    t.add_argument("--eval", action="append", default=[], metavar="NAME=FILE.jsonl")
    t.add_argument("--out", required=True)
    p = sub.add_parser("predict", help="score a JSONL file with a saved model")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default=None)
    p.add_argument("--batch-size", type=int, default=64)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return train_main(args)
        return predict_main(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # configuration problems surfaced by the engine
        print(f"error: {exc}", file=sys.stderr)
        return 2
