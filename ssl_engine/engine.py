"""Public engine API: ``run_round`` (one training round) and ``load_scorer`` (serving).

Both import torch lazily, so ``import ssl_engine.engine`` stays cheap for the web process.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Sequence
from typing import Any

from ssl_engine.types import (
    Callback,
    ExamplePrediction,
    LabeledText,
    RoundInput,
    RoundResult,
    TrainControl,
    TrainState,
    ViewLoss,
)

MODEL_SUBDIR = "model"


def resolve_device(device: str | None) -> str:
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_mode(mode: str | None, device: str) -> str:
    if mode:
        from ssl_engine.configs import MODES

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {list(MODES)}")
        return mode
    return "full" if device.startswith("cuda") else "cpu-fast"


def positive_index(label_names: Sequence[str]) -> int:
    names = [n.lower() for n in label_names]
    return names.index("harmful") if "harmful" in names else 1


def _hash_examples(rows: Sequence[Any]) -> str:
    h = hashlib.sha1()
    for r in rows:
        h.update(str(r.example_id).encode())
        h.update(b"\x00")
        h.update(r.text.encode("utf-8"))
        h.update(b"\x00")
        h.update((r.prompt or "").encode("utf-8"))
        h.update(str(getattr(r, "label", "")).encode())
        h.update(b"\x01")
    return h.hexdigest()


def stratified_split(labels, fraction: float, seed: int, min_per_class: int = 2):
    """Indices (train, val) with ``fraction`` of each class in val; no val if a class is too small."""
    import numpy as np

    labels = np.asarray(labels)
    rng = np.random.default_rng(seed + 1013)
    if fraction <= 0:
        return np.arange(len(labels)), np.array([], dtype=int)
    val = []
    for c in np.unique(labels):
        ix = np.flatnonzero(labels == c)
        k = int(round(len(ix) * fraction))
        if k < min_per_class or len(ix) - k < min_per_class:
            return np.arange(len(labels)), np.array([], dtype=int)
        val.extend(rng.choice(ix, size=k, replace=False).tolist())
    val_arr = np.array(sorted(val), dtype=int)
    train = np.setdiff1d(np.arange(len(labels)), val_arr)
    return train, val_arr


class _Stopped(Exception):
    pass


class _Progress:
    """Reports preparation/scoring progress through the callbacks and raises on cancel."""

    def __init__(self, callbacks: Sequence[Callback], control: TrainControl) -> None:
        self.callbacks, self.control = callbacks, control
        self.state = TrainState(phase="prepare")

    def __call__(self, phase: str, done: int, total: int) -> bool:
        self.state.phase = phase
        self.state.step, self.state.total_steps = done, total
        for cb in self.callbacks:
            cb.on_step_end(self.state, self.control)
        return self.control.should_stop

    def check(self, phase: str, done: int = 0, total: int = 0) -> None:
        if self(phase, done, total):
            raise _Stopped


def _score_table(model, table, device, batch_size: int, progress=None, phase: str = "score"):
    """Probabilities (n, H, C) over real classes for a TextTable, length-bucketed, no grad."""
    import numpy as np
    import torch

    n = len(table)
    order = np.argsort(table.lengths, kind="stable")
    out = None
    model.eval()
    use_amp = str(device).startswith("cuda")
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            sel = order[s : s + batch_size]
            batch = table.collate(sel, device)
            with torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else _null():
                logits = model(batch).float()
            probs = logits.softmax(-1).cpu().numpy()  # (H, B, C')
            if out is None:
                out = np.zeros((n, probs.shape[0], probs.shape[2]), dtype=np.float32)
            out[sel] = probs.transpose(1, 0, 2)
            if progress is not None and progress(phase, min(n, s + batch_size), n):
                raise _Stopped
    return out


def _null():
    import contextlib

    return contextlib.nullcontext()


def _avg_probs(logit_probs):
    """(n, H, C) head probabilities -> (n, C) probability from the averaged head logits."""
    import numpy as np

    logp = np.log(np.clip(logit_probs, 1e-12, 1.0))
    avg = logp.mean(1)
    avg = avg - avg.max(1, keepdims=True)
    e = np.exp(avg)
    return e / e.sum(1, keepdims=True)


def _restrict(probs, n_classes: int):
    """Drop extra (fake) classes and renormalise."""
    p = probs[..., :n_classes]
    return p / p.sum(-1, keepdims=True)


def run_round(inp: RoundInput, *, callbacks: Sequence[Callback] = ()) -> RoundResult:
    """Train one round on ``inp`` and return the saved model dir, per-example outputs and metrics.

    Callbacks get ``on_step_end(state, control)`` after every optimiser step and during the
    preparation ("prepare"), scoring ("score") and evaluation ("evaluate") phases; setting
    ``control.should_stop`` ends the round at the next check and returns a result with
    ``stopped_early=True`` (no model saved, no predictions).
    """
    import numpy as np
    import torch

    from ssl_engine.algorithms import ALGORITHMS
    from ssl_engine.augment import get_augmenter
    from ssl_engine.configs import build_configs
    from ssl_engine.data import StateCache, build_table, cache_root
    from ssl_engine.metrics import binary_metrics, choose_threshold
    from ssl_engine.model import build_model, default_backbone, save_model
    from ssl_engine.review import review_signal
    from ssl_engine.trainer import Trainer

    t0 = time.time()
    _apply_thread_setting()
    if inp.algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {inp.algorithm!r}; known: {sorted(ALGORITHMS)}")
    cfg, algo_cfg = build_configs(inp.algorithm, inp.config)
    label_names = list(inp.label_names)
    n_classes = len(label_names)
    pos = positive_index(label_names)
    labels_all = np.array([ex.label for ex in inp.labeled], dtype=np.int64)
    if len(inp.labeled) == 0:
        raise ValueError("no labeled examples")
    if labels_all.min() < 0 or labels_all.max() >= n_classes:
        raise ValueError(f"labels must be in [0, {n_classes - 1}]")
    weights_all = np.array([ex.weight for ex in inp.labeled], dtype=np.float32)
    if not np.all((weights_all > 0) & (weights_all <= 1)):
        raise ValueError("labeled example weights must be in (0, 1]")
    missing = [label_names[c] for c in range(n_classes) if not (labels_all == c).any()]
    if missing:
        raise ValueError(f"no labeled example of class(es) {missing}")

    seed = int(inp.seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    device_name = resolve_device(inp.device)
    device = torch.device(device_name)
    mode = resolve_mode(inp.mode, device_name)
    backbone = inp.backbone or default_backbone()
    control = TrainControl()
    progress = _Progress(callbacks, control)
    algo_cls = ALGORITHMS[inp.algorithm]

    try:
        progress.check("prepare")
        # labeled: train / validation (threshold) split, never touching eval sets
        # Only full-weight (human) labels may judge the threshold; weighted pseudo-labels only train.
        human_idx = np.flatnonzero(weights_all >= 1.0)
        expected_val_pos = cfg.val_fraction * int((labels_all[human_idx] == pos).sum())
        want_val = len(human_idx) > 0 and (cfg.threshold_strategy == "val_f1" or (
            cfg.threshold_strategy == "auto" and expected_val_pos >= cfg.min_val_positives))
        if want_val:
            _, val_h = stratified_split(labels_all[human_idx], cfg.val_fraction, seed)
            val_idx = np.sort(human_idx[val_h])
            tr_idx = np.setdiff1d(np.arange(len(labels_all)), val_idx)
        else:
            tr_idx, val_idx = np.arange(len(labels_all)), np.array([], dtype=int)
        lab_train = [inp.labeled[i] for i in tr_idx]
        lab_val = [inp.labeled[i] for i in val_idx]
        # unlabeled: seeded training subsample; every item is still scored
        n_pool = len(inp.unlabeled)
        rng = np.random.default_rng(seed + 17)
        with_views = np.array([i for i, e in enumerate(inp.unlabeled) if e.strong_views], dtype=np.int64)
        if n_pool > cfg.max_unlabeled and len(with_views):
            # items with precomputed views (reviewed augmentations) always train, up to the cap
            keep = with_views if len(with_views) <= cfg.max_unlabeled else \
                rng.choice(with_views, size=cfg.max_unlabeled, replace=False)
            others = np.setdiff1d(np.arange(n_pool), keep)
            fill = rng.choice(others, size=cfg.max_unlabeled - len(keep), replace=False)
            sub_idx = np.sort(np.concatenate([keep, fill]))
        elif n_pool > cfg.max_unlabeled:
            sub_idx = np.sort(rng.choice(n_pool, size=cfg.max_unlabeled, replace=False))
        else:
            sub_idx = np.arange(n_pool)
        uses_unlabeled = bool(algo_cls.views) and len(sub_idx) > 0
        train_unl = [inp.unlabeled[i] for i in sub_idx] if uses_unlabeled else []
        # positions in train_unl of items with precomputed views: drawn first in every epoch
        unl_with_views = np.array([k for k, e in enumerate(train_unl) if e.strong_views], dtype=np.int64)

        model, tokenizer = build_model(
            backbone, n_heads=algo_cls.n_heads(algo_cfg), n_out=n_classes + algo_cls.extra_classes,
            head_hidden=cfg.head_hidden, dropout=cfg.dropout, mode=mode, trainable_layers=cfg.trainable_layers,
            lora_r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
        )
        model.to(device)
        layer_tag = "pooled" if model.pools_in_cache else model.split_layer
        cache = StateCache(cache_root(cfg.cache_dir), backbone, layer_tag, cfg.max_length) \
            if mode == "cpu-fast" else None

        def table(texts, prompts, phase):
            tbl = build_table(
                texts, prompts, tokenizer=tokenizer, max_length=cfg.max_length,
                model=model if cache is not None else None, cache=cache, device=device,
                batch_size=cfg.score_batch_size, progress=lambda d, t: progress(phase, d, t),
            )
            if tbl is None:
                raise _Stopped
            return tbl

        # precomputed views of labeled examples train as labeled copies (never those of validation rows)
        lab_views = [(k, j) for k, e in enumerate(lab_train)
                     for j in range(min(len(e.strong_views), cfg.max_strong_views))] if cfg.labeled_views else []
        lab_table = table([e.text for e in lab_train] + [lab_train[k].strong_views[j] for k, j in lab_views],
                          [e.prompt for e in lab_train] + [lab_train[k].prompt for k, _ in lab_views], "prepare")
        views: dict[str, list] = {}
        # cpu-fast scores the training subsample from the cache too, whatever the algorithm
        score_sub = uses_unlabeled or (cache is not None and len(sub_idx) > 0)
        sub_rows = [inp.unlabeled[i] for i in sub_idx] if score_sub else []
        weak_table = table([e.text for e in sub_rows], [e.prompt for e in sub_rows], "prepare") if score_sub else None
        if uses_unlabeled:
            for view in algo_cls.views:
                if view == "weak":
                    views["weak"] = [weak_table]
                elif view == "strong":
                    aug = get_augmenter(inp.strong_augmenter)
                    # enough tables that every precomputed view (up to max_strong_views) is drawn;
                    # table v holds view v mod k of an example with k of them, else an on-the-fly one
                    n_tables = max([cfg.n_strong_views] + [_n_views(e, cfg) for e in train_unl])
                    tables = []
                    for v in range(n_tables):
                        texts = []
                        for e in train_unl:
                            if k := _n_views(e, cfg):
                                texts.append(e.strong_views[v % k])
                            else:
                                r = random.Random(f"{cfg.augment_seed}|{v % cfg.n_strong_views}|{e.text}")
                                texts.append(aug(e.text, r))
                        tables.append(table(texts, [e.prompt for e in train_unl], "prepare"))
                    views["strong"] = tables
                else:
                    raise ValueError(f"unknown view {view!r} declared by {inp.algorithm!r}")
        prep_seconds = time.time() - t0

        copies = np.array([k for k, _ in lab_views], dtype=np.int64)
        y_human = labels_all[tr_idx]
        y_train = np.concatenate([y_human, y_human[copies]])
        w_train = np.concatenate([weights_all[tr_idx], weights_all[tr_idx][copies]])
        class_weights = None
        if cfg.labeled_sampling == "weighted":
            counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
            class_weights = torch.tensor(len(y_train) / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)
        epoch_size = min(len(train_unl), cfg.epoch_unlabeled) if cfg.epoch_unlabeled else len(train_unl)
        trainer_probe_spe = max(1, -(-epoch_size // (cfg.batch_size * cfg.unlabeled_ratio))) if train_unl else 1
        logit_adjust = None
        if cfg.prior_adjust:
            prior = np.bincount(y_human, minlength=n_classes).astype(np.float64) / len(y_human)
            logit_adjust = torch.tensor(np.log(np.maximum(prior, 1e-3)) + np.log(n_classes), dtype=torch.float32)
        algo = algo_cls(
            model, algo_cfg, n_classes=n_classes, n_unlabeled=len(train_unl), steps_per_epoch=trainer_probe_spe,
            class_weights=class_weights, logit_adjust=logit_adjust, seed=seed,
        )
        trainer = Trainer(
            algo, cfg, labeled=lab_table, labels=y_train, weights=w_train, views=views,
            n_classes=n_classes, device=device, seed=seed, callbacks=callbacks, control=control,
            priority=unl_with_views,
        )
        t_train = time.time()
        if trainer.fit():
            raise _Stopped
        train_only_seconds = time.time() - t_train
        view_losses = _view_losses(trainer, train_unl, lab_train, lab_views, cfg)

        # score every unlabeled item: the training subsample from its table, the rest streamed
        t_score = time.time()
        n_heads = algo_cls.n_heads(algo_cfg)
        unl_probs = np.zeros((n_pool, n_heads, n_classes), dtype=np.float32)
        if score_sub:
            unl_probs[sub_idx] = _restrict(
                _score_table(model, weak_table, device, cfg.score_batch_size, progress), n_classes)
            rest = np.setdiff1d(np.arange(n_pool), sub_idx)
        else:
            rest = np.arange(n_pool)
        if len(rest):
            unl_probs[rest] = _restrict(_stream_scores(
                model, tokenizer, [inp.unlabeled[i] for i in rest], cfg, device, progress), n_classes)
        score_seconds = time.time() - t_score

        # decision threshold: labeled validation split, or the labeled prior on the unlabeled pool
        threshold, strategy = cfg.fixed_threshold, "fixed"
        if len(lab_val) and cfg.threshold_strategy in ("auto", "val_f1"):
            val_table = table([e.text for e in lab_val], [e.prompt for e in lab_val], "evaluate")
            pv = _avg_probs(_restrict(_score_table(model, val_table, device, cfg.score_batch_size), n_classes))
            threshold, strategy = choose_threshold(labels_all[val_idx] == pos, pv[:, pos]), "val_f1"
        elif n_pool and n_classes == 2 and cfg.threshold_strategy in ("auto", "prior_match"):
            human = labels_all[weights_all >= 1.0]
            prior = float(((human if len(human) else labels_all) == pos).mean())
            pool_scores = _avg_probs(unl_probs)[:, pos]
            threshold = float(np.quantile(pool_scores, 1.0 - prior))
            threshold, strategy = min(max(threshold, 1e-6), 1.0 - 1e-6), "prior_match"
            flagged = float((pool_scores >= threshold).mean())
            if abs(flagged - prior) > max(0.05, prior) or not 1e-3 <= threshold <= 1.0 - 1e-3:
                # Saturated scores (an over-confident model on a tiny seed set): the quantile lands
                # among ties or in the 4th decimal of a saturated sigmoid, which is noise; fall back.
                threshold, strategy = cfg.fixed_threshold, "fixed (prior_match: saturated scores)"

        # eval sets
        metrics: dict[str, dict[str, float]] = {}
        for name, rows in inp.eval_sets.items():
            rows = list(rows)
            if not rows:
                continue
            tbl = table([e.text for e in rows], [e.prompt for e in rows], "evaluate")
            pe = _avg_probs(_restrict(_score_table(model, tbl, device, cfg.score_batch_size, progress, "evaluate"),
                                      n_classes))
            y = np.array([e.label for e in rows]) == pos
            metrics[name] = binary_metrics(y, pe[:, pos], threshold)
        progress.check("evaluate")

        # predictions + review signals
        avg = _avg_probs(unl_probs)
        tracking = trainer.tracking
        agreement = algo.example_agreement() if uses_unlabeled else None
        dis_w = float(getattr(algo_cfg, "disagreement_weight", 3.0))
        sub_pos = {int(g): k for k, g in enumerate(sub_idx)} if uses_unlabeled else {}
        preds: list[ExamplePrediction] = []
        for i, ex in enumerate(inp.unlabeled):
            p = float(avg[i, pos])
            heads = tuple(float(x) for x in unl_probs[i, :, pos])
            k = sub_pos.get(i)
            if k is not None:
                hist = tuple(float(h[k]) for h in tracking.history)
                used, weight = bool(tracking.used[k]), float(tracking.last_weight[k])
                agr = ""
                if agreement is not None:
                    agr, weight = agreement[0][k], float(agreement[1][k])
            else:
                hist, used, weight, agr = (), False, 0.0, ""
            if n_classes == 2:
                pl = int(p >= threshold) if pos == 1 else int(p < threshold)
            else:
                pl = int(avg[i].argmax())
            prio, reason = review_signal(p_harmful=p, head_probs=heads, threshold=threshold, history=hist,
                                         weight=weight, agreement=agr, disagreement_weight=dis_w)
            if k is None and uses_unlabeled:
                reason += "; not in the training subsample (scored only)"
            preds.append(ExamplePrediction(
                example_id=ex.example_id, p_harmful=p, head_probs=heads, pseudo_label=pl, used=used,
                weight=weight, agreement=agr, margin_history=hist, review_priority=prio, review_reason=reason,
            ))

        # save
        model_dir = os.path.join(inp.out_dir, MODEL_SUBDIR)
        meta = {
            "format": "umbra-ssl-model/1",
            "label_names": label_names,
            "positive_index": pos,
            "threshold": threshold,
            "threshold_strategy": strategy,
            "algorithm": inp.algorithm,
            "config": {"train": _asdict(cfg), "algorithm": _asdict(algo_cfg)},
            "seed": seed,
            "backbone": backbone,
            "mode": mode,
            "n_heads": n_heads,
            "head_hidden": cfg.head_hidden,
            "max_length": cfg.max_length,
            "data_hashes": {
                "labeled": _hash_examples(inp.labeled),
                "unlabeled": _hash_examples(inp.unlabeled),
                "labeled_train": _hash_examples(lab_train),
                "labeled_val": _hash_examples(lab_val),
            },
            "counts": {"labeled_train": len(lab_train), "labeled_val": len(lab_val),
                       "labeled_view_copies": len(lab_views), "unlabeled_pool": n_pool,
                       "unlabeled_trained": len(train_unl),
                       "unlabeled_with_views": len(unl_with_views)},
        }
        save_model(model, tokenizer, model_dir, meta, n_classes)
        total = time.time() - t0
        log = list(trainer.log)
        timing = {"prepare_seconds": prep_seconds, "train_seconds": train_only_seconds,
                  "score_seconds": score_seconds, "score_items_per_s": n_pool / score_seconds if score_seconds else 0.0,
                  "total_seconds": total, "steps": trainer.total_steps}
        return RoundResult(model_dir=model_dir, predictions=preds, metrics=metrics, threshold=threshold,
                           train_log=log, train_seconds=total, timings=timing, view_losses=view_losses)
    except _Stopped:
        return RoundResult(model_dir="", predictions=[], metrics={}, threshold=0.5, train_log=[],
                           train_seconds=time.time() - t0, stopped_early=True)


def _n_views(example, cfg) -> int:
    """Precomputed strong views of ``example`` that a round uses."""
    return min(len(example.strong_views), cfg.max_strong_views)


def _view_losses(trainer, train_unl, lab_train, lab_views, cfg) -> list[ViewLoss]:
    """Per-epoch training loss of every precomputed view, flagged against its population."""
    import warnings

    import numpy as np

    from ssl_engine.augment.curation import view_loss_report

    kw = {"quantile": cfg.loss_flag_quantile, "min_fraction": cfg.loss_flag_min_fraction,
          "warmup_epochs": cfg.loss_flag_warmup_epochs}
    out: list[ViewLoss] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of never-drawn rows is NaN, as meant
        if trainer.tracking.strong_history and train_unl:
            hist = np.stack(trainer.tracking.strong_history)  # (epochs, n, tables)
            views, rows, ref = [], [], []
            for k, e in enumerate(train_unl):
                nv = _n_views(e, cfg)
                if not nv:
                    ref.append(k)
                for j in range(nv):
                    views.append((e.example_id, j))
                    rows.append(np.nanmean(hist[:, k, j::nv], axis=1))  # tables v with v mod nv == j
            ref_rows = np.nanmean(hist[:, ref, :], axis=2).T
            out += view_loss_report(views, np.array(rows).reshape(len(views), hist.shape[0]), ref_rows,
                                    labeled=False, **kw)
        if lab_views and trainer.labeled_tracking.history:
            lhist = np.stack(trainer.labeled_tracking.history, axis=1)  # (rows, epochs)
            n = len(lab_train)
            out += view_loss_report([(lab_train[k].example_id, j) for k, j in lab_views], lhist[n:], lhist[:n],
                                    labeled=True, **kw)
    return out


def _apply_thread_setting() -> None:
    """Honour UMBRA_NUM_THREADS (torch intra-op threads); on shared cores 1 beats oversubscription."""
    threads = os.environ.get("UMBRA_NUM_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def _asdict(obj) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(obj)


def _stream_scores(model, tokenizer, rows, cfg, device, progress):
    """Score examples not in any table: tokenize per chunk, full forward, length-bucketed."""
    import numpy as np

    from ssl_engine.data import TextTable, tokenized_items

    out = None
    chunk = max(cfg.score_batch_size * 16, 1024)
    for s in range(0, len(rows), chunk):
        part = rows[s : s + chunk]
        tbl = TextTable(tokenized_items(tokenizer, [r.text for r in part], [r.prompt for r in part], cfg.max_length))
        probs = _score_table(model, tbl, device, cfg.score_batch_size)
        if out is None:
            out = np.zeros((len(rows), probs.shape[1], probs.shape[2]), dtype=np.float32)
        out[s : s + len(part)] = probs
        if progress("score", s + len(part), len(rows)):
            raise _Stopped
    return out


class Scorer:
    """A loaded model for serving: ``score`` returns (p_harmful averaged, per-head p_harmful)."""

    def __init__(self, model_dir: str, device: str | None = None) -> None:
        from ssl_engine.model import load_saved

        _apply_thread_setting()
        self.device = resolve_device(device)
        self.model, self.tokenizer, self.meta = load_saved(model_dir, self.device)
        self.threshold = float(self.meta["threshold"])
        self.positive_index = int(self.meta.get("positive_index", 1))
        self.max_length = int(self.meta.get("max_length", 128))

    def score(
        self, texts: Sequence[str], prompts: Sequence[str | None] | None = None, batch_size: int = 64
    ) -> list[tuple[float, tuple[float, ...]]]:
        from ssl_engine.data import TextTable, tokenized_items

        if not len(texts):
            return []
        if prompts is not None and len(prompts) != len(texts):
            raise ValueError("prompts must be None or as long as texts")
        tbl = TextTable(tokenized_items(self.tokenizer, list(texts), prompts, self.max_length))
        probs = _score_table(self.model, tbl, self.device, batch_size)
        avg = _avg_probs(probs)
        k = self.positive_index
        return [(float(avg[i, k]), tuple(float(x) for x in probs[i, :, k])) for i in range(len(texts))]


def load_scorer(model_dir: str, device: str | None = None) -> Scorer:
    """Load a model saved by ``run_round`` once; reuse the returned scorer for every request."""
    return Scorer(model_dir, device)


def labeled_from_rows(rows: Sequence[dict], label_names: Sequence[str]) -> list[LabeledText]:
    """Build LabeledText from JSONL-style dicts (id, text, prompt, label name)."""
    idx = {n: i for i, n in enumerate(label_names)}
    return [LabeledText(example_id=str(r["id"]), text=r["text"], label=idx[r["label"]], prompt=r.get("prompt"))
            for r in rows]
