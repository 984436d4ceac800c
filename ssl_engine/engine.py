"""Public engine API: ``run_round`` (one training round) and ``load_scorer`` (serving).

Both import torch lazily, so ``import ssl_engine.engine`` stays cheap for the web process.
A round is a sequence of named steps (:class:`_Round`): split labels, subsample the pool,
build the model, build the tables of the algorithm's views, fit, score the pool, choose the
threshold, evaluate, assemble predictions from the algorithm's own signals, report the
pseudo-labels, save.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Sequence
from typing import Any

from ssl_engine.settings import SCORER_RUNTIMES, EngineSettings
from ssl_engine.types import (
    Callback,
    ExamplePrediction,
    LabeledText,
    PseudoLabelStats,
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


FULL_MODE_MIN_LABELS = 1000


def resolve_mode(mode: str | None, device: str, n_labeled: int = 0) -> str:
    """The training mode: as asked, else ``full`` on a GPU or with at least ``FULL_MODE_MIN_LABELS``
    human labels (every layer trains: worth its CPU time once there is that much to learn from),
    else ``cpu-fast`` (top layers on cached lower-layer states)."""
    if mode:
        from ssl_engine.configs import MODES

        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {list(MODES)}")
        return mode
    return "full" if device.startswith("cuda") or n_labeled >= FULL_MODE_MIN_LABELS else "cpu-fast"


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


def class_prior(labeled: Sequence[LabeledText], n_classes: int):
    """Class shares of the human labels (weight 1), each counted with its ``prior_weight``."""
    import numpy as np

    counts = np.zeros(n_classes)
    for ex in labeled:
        if ex.weight >= 1.0:
            counts[ex.label] += ex.prior_weight
    if counts.sum() <= 0:  # only non-random labels: fall back to their plain class shares
        for ex in labeled:
            counts[ex.label] += 1.0
    return counts / counts.sum()


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


def _score_table(
    model,
    table,
    device,
    batch_size: int,
    progress=None,
    phase: str = "score",
    bf16: bool = True,
    features: dict | None = None,
):
    """Probabilities (n, H, C) over real classes for a TextTable, length-bucketed, no grad.

    With ``features`` (a dict), its ``"pooled"`` entry receives the L2-normalised (n, hidden)
    text representations of the same forward pass.
    """
    import numpy as np
    import torch

    from ssl_engine.model import autocast

    n = len(table)
    order = np.argsort(table.lengths, kind="stable")
    out = None
    model.eval()
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            sel = order[s : s + batch_size]
            batch = table.collate(sel, device)
            with autocast(device, bf16):
                logits, z = model.forward_with_features(batch)
            probs = logits.float().softmax(-1).cpu().numpy()  # (H, B, C')
            if out is None:
                out = np.zeros((n, probs.shape[0], probs.shape[2]), dtype=np.float32)
            out[sel] = probs.transpose(1, 0, 2)
            if features is not None:
                z = torch.nn.functional.normalize(z.float(), dim=-1).cpu().numpy()
                if "pooled" not in features:
                    features["pooled"] = np.zeros((n, z.shape[1]), dtype=np.float32)
                features["pooled"][sel] = z
            if progress is not None and progress(phase, min(n, s + batch_size), n):
                raise _Stopped
    if out is None:
        return np.zeros((0, 1, 2), dtype=np.float32)
    return out


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


def run_round(
    inp: RoundInput, *, callbacks: Sequence[Callback] = (), settings: EngineSettings | None = None
) -> RoundResult:
    """Train one round on ``inp`` and return the saved model dir, per-example outputs and metrics.

    Callbacks get ``on_step_end(state, control)`` after every optimiser step and during the
    preparation ("prepare"), scoring ("score") and evaluation ("evaluate") phases; setting
    ``control.should_stop`` ends the round at the next check and returns a result with
    ``stopped_early=True`` (no model saved, no predictions). ``settings`` are the deployment's
    (cache directory, threads); None reads them from the environment.
    """
    t0 = time.time()
    settings = settings or EngineSettings.from_env()
    settings.apply_threads()
    rnd = _Round(inp, callbacks, settings)
    try:
        return rnd.run()
    except _Stopped:
        return RoundResult(
            model_dir="",
            predictions=[],
            metrics={},
            threshold=0.5,
            train_log=[],
            train_seconds=time.time() - t0,
            stopped_early=True,
        )


class _Round:
    """One round's state, advanced by named steps (see :meth:`run`)."""

    def __init__(self, inp: RoundInput, callbacks: Sequence[Callback], settings: EngineSettings) -> None:
        import numpy as np

        from ssl_engine.algorithms import ALGORITHMS
        from ssl_engine.configs import build_configs

        self.t0 = time.time()
        self.inp, self.callbacks, self.settings = inp, callbacks, settings
        if inp.algorithm not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {inp.algorithm!r}; known: {sorted(ALGORITHMS)}")
        self.algo_cls = ALGORITHMS[inp.algorithm]
        self.cfg, self.algo_cfg = build_configs(inp.algorithm, inp.config)
        self.label_names = list(inp.label_names)
        self.n_classes = len(self.label_names)
        self.pos = positive_index(self.label_names)
        self.labels = np.array([ex.label for ex in inp.labeled], dtype=np.int64)
        self.weights = np.array([ex.weight for ex in inp.labeled], dtype=np.float32)
        self._validate()
        self.seed = int(inp.seed)
        random.seed(self.seed)
        np.random.seed(self.seed)
        import torch

        torch.manual_seed(self.seed)
        device_name = resolve_device(inp.device)
        self.device = torch.device(device_name)
        self.mode = resolve_mode(inp.mode, device_name, n_labeled=int((self.weights >= 1.0).sum()))
        from ssl_engine.model import default_backbone

        self.backbone = inp.backbone or default_backbone()
        self.control = TrainControl()
        self.progress = _Progress(callbacks, self.control)
        self.prior = class_prior(inp.labeled, self.n_classes)
        self.timings: dict[str, float] = {}

    def _validate(self) -> None:
        import numpy as np

        if len(self.inp.labeled) == 0:
            raise ValueError("no labeled examples")
        if self.labels.min() < 0 or self.labels.max() >= self.n_classes:
            raise ValueError(f"labels must be in [0, {self.n_classes - 1}]")
        if not np.all((self.weights > 0) & (self.weights <= 1)):
            raise ValueError("labeled example weights must be in (0, 1]")
        if any(ex.prior_weight < 0 for ex in self.inp.labeled):
            raise ValueError("labeled example prior weights must be >= 0")
        missing = [self.label_names[c] for c in range(self.n_classes) if not (self.labels == c).any()]
        if missing:
            raise ValueError(f"no labeled example of class(es) {missing}")

    def run(self) -> RoundResult:
        self.progress.check("prepare")
        self.split_labels()
        self.subsample_pool()
        self.build_model()
        self.build_tables()
        self.timings["prepare_seconds"] = time.time() - self.t0
        self.fit()
        self.score_pool()
        self.choose_threshold()
        self.evaluate()
        predictions = self.assemble_predictions()
        model_dir = self.save()
        self.timings["total_seconds"] = time.time() - self.t0
        return RoundResult(
            model_dir=model_dir,
            predictions=predictions,
            metrics=self.metrics,
            threshold=self.threshold.threshold,
            train_log=list(self.trainer.log),
            train_seconds=self.timings["total_seconds"],
            timings=self.timings,
            view_losses=self.view_losses(),
            pseudo_labels=self.pseudo_label_report(),
            threshold_strategy=self.threshold.strategy,
            threshold_note=self.threshold.note,
            mode=self.mode,
        )

    # -- steps --------------------------------------------------------------------------------
    def split_labels(self) -> None:
        """Labeled train / validation split (threshold choice); only human labels may validate."""
        import numpy as np

        cfg = self.cfg
        human = np.flatnonzero(self.weights >= 1.0)
        expected_val_pos = cfg.val_fraction * int((self.labels[human] == self.pos).sum())
        want_val = len(human) > 0 and (
            cfg.threshold_strategy == "val_f1"
            or (cfg.threshold_strategy == "auto" and expected_val_pos >= cfg.min_val_positives)
        )
        if want_val:
            _, val_h = stratified_split(self.labels[human], cfg.val_fraction, self.seed)
            self.val_idx = np.sort(human[val_h])
            self.train_idx = np.setdiff1d(np.arange(len(self.labels)), self.val_idx)
        else:
            self.train_idx, self.val_idx = np.arange(len(self.labels)), np.array([], dtype=int)
        self.lab_train = [self.inp.labeled[i] for i in self.train_idx]
        self.lab_val = [self.inp.labeled[i] for i in self.val_idx]

    def subsample_pool(self) -> None:
        """A seeded training subsample of the pool (items with precomputed views always join); all are scored."""
        import numpy as np

        cfg, n_pool = self.cfg, len(self.inp.unlabeled)
        rng = np.random.default_rng(self.seed + 17)
        with_views = np.array([i for i, e in enumerate(self.inp.unlabeled) if e.strong_views], dtype=np.int64)
        # Items that never train: the threshold is read on scores the model did not fit (pool items
        # pseudo-labeled in training score higher than unseen texts of the same kind).
        self.calib_idx = np.array([], dtype=np.int64)
        if self.algo_cls.views and n_pool >= cfg.min_calibration_pool and cfg.calibration_holdout > 0:
            plain = np.setdiff1d(np.arange(n_pool), with_views)
            k = min(len(plain), int(round(cfg.calibration_holdout * n_pool)))
            self.calib_idx = np.sort(rng.choice(plain, size=k, replace=False))
        candidates = np.setdiff1d(np.arange(n_pool), self.calib_idx)
        cap = cfg.max_unlabeled
        if len(candidates) <= cap:
            sub = candidates
        elif len(with_views):
            keep = with_views if len(with_views) <= cap else rng.choice(with_views, size=cap, replace=False)
            others = np.setdiff1d(candidates, keep)
            sub = np.sort(np.concatenate([keep, rng.choice(others, size=cap - len(keep), replace=False)]))
        else:
            sub = np.sort(rng.choice(candidates, size=cap, replace=False))
        self.sub_idx = sub
        self.uses_unlabeled = bool(self.algo_cls.views) and len(sub) > 0
        self.train_unl = [self.inp.unlabeled[i] for i in sub] if self.uses_unlabeled else []

    def build_model(self) -> None:
        from ssl_engine.data import StateCache
        from ssl_engine.model import build_model

        cfg = self.cfg
        self.n_heads = self.algo_cls.n_heads(self.algo_cfg)
        self.model, self.tokenizer = build_model(
            self.backbone,
            n_heads=self.n_heads,
            n_out=self.n_classes + self.algo_cls.extra_classes,
            head_hidden=cfg.head_hidden,
            dropout=cfg.dropout,
            mode=self.mode,
            trainable_layers=cfg.trainable_layers,
            lora_r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
        )
        self.model.to(self.device)
        from ssl_engine.model import bf16_supported

        self.bf16 = cfg.bf16 and bf16_supported(self.device)
        layer_tag = "pooled" if self.model.pools_in_cache else self.model.split_layer
        layer_tag = f"{layer_tag}bf16" if self.bf16 else layer_tag  # bf16 states differ from fp32 ones
        self.cache = (
            StateCache(self.settings.cache_root, self.backbone, layer_tag, cfg.max_length)
            if self.mode == "cpu-fast"
            else None
        )

    def table(self, texts, prompts, phase: str):
        """A table of ``texts`` (cached lower-layer states in cpu-fast mode, token ids otherwise)."""
        from ssl_engine.data import build_table

        tbl = build_table(
            texts,
            prompts,
            tokenizer=self.tokenizer,
            max_length=self.cfg.max_length,
            model=self.model if self.cache is not None else None,
            cache=self.cache,
            device=self.device,
            batch_size=self.cfg.score_batch_size,
            progress=lambda d, t: self.progress(phase, d, t),
            bf16=self.bf16,
        )
        if tbl is None:
            raise _Stopped
        return tbl

    def build_tables(self) -> None:
        """The labeled table (with labeled copies of precomputed views) and one table list per view."""
        cfg, lab = self.cfg, self.lab_train
        self.lab_views = (
            [(k, j) for k, e in enumerate(lab) for j in range(_n_views(e, cfg))] if cfg.labeled_views else []
        )
        self.lab_table = self.table(
            [e.text for e in lab] + [lab[k].strong_views[j] for k, j in self.lab_views],
            [e.prompt for e in lab] + [lab[k].prompt for k, _ in self.lab_views],
            "prepare",
        )
        # cpu-fast scores the training subsample from the cache too, whatever the algorithm
        self.score_sub = self.uses_unlabeled or (self.cache is not None and len(self.sub_idx) > 0)
        rows = [self.inp.unlabeled[i] for i in self.sub_idx] if self.score_sub else []
        self.weak_table = (
            self.table([e.text for e in rows], [e.prompt for e in rows], "prepare") if self.score_sub else None
        )
        self.views: dict[str, list] = {}
        for view in self.algo_cls.views if self.uses_unlabeled else ():
            if view == "weak":
                self.views["weak"] = [self.weak_table]
            elif view == "strong":
                self.views["strong"] = self.strong_tables()
            else:
                raise ValueError(f"unknown view {view!r} declared by {self.inp.algorithm!r}")

    def strong_tables(self) -> list:
        """Enough tables that every precomputed view (up to ``max_strong_views``) is drawn; table v holds
        view v mod k of an item with k of them, else the v-th cached text augmentation of it."""
        from ssl_engine.augment import get_augmenter

        cfg, unl = self.cfg, self.train_unl
        aug = get_augmenter(cfg.strong_augmenter)
        n_tables = max([cfg.n_strong_views] + [_n_views(e, cfg) for e in unl])
        tables = []
        for v in range(n_tables):
            texts = []
            for e in unl:
                if k := _n_views(e, cfg):
                    texts.append(e.strong_views[v % k])
                else:
                    r = random.Random(f"{cfg.augment_seed}|{cfg.strong_augmenter}|{v % cfg.n_strong_views}|{e.text}")
                    texts.append(aug(e.text, r))
            tables.append(self.table(texts, [e.prompt for e in unl], "prepare"))
        return tables

    def fit(self) -> None:
        """Build the algorithm and run the shared training loop."""
        import numpy as np

        from ssl_engine.trainer import Trainer, schedule

        cfg = self.cfg
        copies = np.array([k for k, _ in self.lab_views], dtype=np.int64)
        y_human = self.labels[self.train_idx]
        y_train = np.concatenate([y_human, y_human[copies]])
        w_train = np.concatenate([self.weights[self.train_idx], self.weights[self.train_idx][copies]])
        class_weights = None
        if cfg.labeled_sampling == "weighted":
            counts = np.bincount(y_train, minlength=self.n_classes).astype(np.float64)
            class_weights = len(y_train) / (self.n_classes * np.maximum(counts, 1))
        per_epoch, total = schedule(cfg, n_labeled=len(y_train), n_unlabeled=len(self.train_unl))
        self.algo = self.algo_cls(
            self.model,
            self.algo_cfg,
            n_classes=self.n_classes,
            n_unlabeled=len(self.train_unl),
            steps_per_epoch=per_epoch,
            total_steps=total,
            class_weights=class_weights,
            class_prior=self.prior,
            label_smoothing=cfg.label_smoothing,
            seed=self.seed,
        )
        self.trainer = Trainer(
            self.algo,
            cfg,
            labeled=self.lab_table,
            labels=y_train,
            weights=w_train,
            views=self.views,
            n_classes=self.n_classes,
            device=self.device,
            seed=self.seed,
            callbacks=self.callbacks,
            control=self.control,
        )
        t = time.time()
        if self.trainer.fit():
            raise _Stopped
        self.timings["train_seconds"] = time.time() - t
        self.timings["steps"] = self.trainer.total_steps

    def score_pool(self) -> None:
        """Probabilities of every unlabeled item: the training subsample from its table, the rest streamed."""
        import numpy as np

        t, cfg, n_pool = time.time(), self.cfg, len(self.inp.unlabeled)
        self.unl_probs = np.zeros((n_pool, self.n_heads, self.n_classes), dtype=np.float32)
        self.pool_features: np.ndarray | None = None
        rest = np.arange(n_pool)
        if self.score_sub:
            feats: dict = {}
            self.unl_probs[self.sub_idx] = _restrict(
                _score_table(
                    self.model,
                    self.weak_table,
                    self.device,
                    cfg.score_batch_size,
                    self.progress,
                    bf16=self.bf16,
                    features=feats,
                ),
                self.n_classes,
            )
            rest = np.setdiff1d(rest, self.sub_idx)
            if "pooled" in feats:
                self.pool_features = np.zeros((n_pool, feats["pooled"].shape[1]), dtype=np.float32)
                self.pool_features[self.sub_idx] = feats["pooled"]
        if len(rest):
            feats = {}
            self.unl_probs[rest] = _restrict(
                _stream_scores(
                    self.model,
                    self.tokenizer,
                    [self.inp.unlabeled[i] for i in rest],
                    cfg,
                    self.device,
                    self.progress,
                    features=feats,
                ),
                self.n_classes,
            )
            if self.pool_features is None:
                self.pool_features = np.zeros((n_pool, feats["pooled"].shape[1]), dtype=np.float32)
            self.pool_features[rest] = feats["pooled"]
        self.pool_scores = _avg_probs(self.unl_probs)[:, self.pos] if n_pool else np.zeros(0)
        self.timings["score_seconds"] = time.time() - t
        self.timings["score_items_per_s"] = (
            n_pool / self.timings["score_seconds"] if self.timings["score_seconds"] else 0
        )

    def scores_of(self, rows: Sequence[LabeledText], phase: str):
        """p(harmful) of labeled rows (validation or evaluation sets)."""
        tbl = self.table([e.text for e in rows], [e.prompt for e in rows], phase)
        probs = _score_table(
            self.model, tbl, self.device, self.cfg.score_batch_size, self.progress, phase, bf16=self.bf16
        )
        return _avg_probs(_restrict(probs, self.n_classes))[:, self.pos]

    def choose_threshold(self) -> None:
        """The configured strategy from ``ssl_engine.thresholds`` (never on evaluation sets)."""
        import numpy as np

        from ssl_engine.thresholds import ThresholdInputs, choose_threshold

        val_scores = val_labels = None
        if len(self.lab_val):
            val_scores = self.scores_of(self.lab_val, "evaluate")
            val_labels = (self.labels[self.val_idx] == self.pos).astype(int)
        name = self.cfg.threshold_strategy
        if self.n_classes != 2 and name in ("auto", "prior_match"):
            name = "fixed"
        calib = self.pool_scores[self.calib_idx] if len(self.calib_idx) else self.pool_scores
        self.threshold = choose_threshold(
            name,
            ThresholdInputs(
                pool_scores=calib,
                prior=float(self.prior[self.pos]),
                fixed=self.cfg.fixed_threshold,
                val_scores=val_scores,
                val_labels=None if val_labels is None else np.asarray(val_labels),
            ),
        )

    def evaluate(self) -> None:
        import numpy as np

        from ssl_engine.metrics import binary_metrics

        self.metrics: dict[str, dict] = {}
        for name, rows in self.inp.eval_sets.items():
            rows = list(rows)
            if rows:
                y = np.array([e.label for e in rows]) == self.pos
                self.metrics[name] = binary_metrics(y, self.scores_of(rows, "evaluate"), self.threshold.threshold)
        self.progress.check("evaluate")

    def assemble_predictions(self) -> list[ExamplePrediction]:
        """One prediction per unlabeled item, with the algorithm's own review signals, in queue order."""
        from ssl_engine.review import queue_order, review_signal

        avg = _avg_probs(self.unl_probs) if len(self.unl_probs) else self.unl_probs
        tracking, thr = self.trainer.tracking, self.threshold.threshold
        agreement = self.algo.example_agreement() if self.uses_unlabeled else None
        dis_w = float(getattr(self.algo_cfg, "disagreement_weight", 3.0))
        sub_pos = {int(g): k for k, g in enumerate(self.sub_idx)} if self.uses_unlabeled else {}
        rows = []
        for i, ex in enumerate(self.inp.unlabeled):
            p = float(avg[i, self.pos])
            heads = tuple(float(x) for x in self.unl_probs[i, :, self.pos])
            k = sub_pos.get(i)
            hist, used, weight, agr = (), False, 0.0, ""
            if k is not None:
                hist = tuple(float(h[k]) for h in tracking.history)
                used, weight = bool(tracking.used[k]), float(tracking.last_weight[k])
                if agreement is not None:
                    agr, weight = agreement[0][k], float(agreement[1][k])
            if self.n_classes != 2:
                pl = int(avg[i].argmax())
            elif self.pos == 1:
                pl = int(p >= thr)
            else:
                pl = int(p < thr)
            prio, reason = review_signal(
                p_harmful=p,
                head_probs=heads,
                threshold=thr,
                history=hist,
                weight=weight,
                agreement=agr,
                disagreement_weight=dis_w,
            )
            if k is None and self.uses_unlabeled:
                reason += "; not in the training subsample (scored only)"
            rows.append((ex.example_id, p, heads, pl, used, weight, agr, hist, prio, reason))
        import numpy as np

        # the whole pool was scored from the training table: its representations order the queue
        priorities = queue_order(np.array([r[8] for r in rows]), self.pool_features)
        return [
            ExamplePrediction(
                example_id=eid,
                p_harmful=p,
                head_probs=heads,
                pseudo_label=pl,
                used=used,
                weight=weight,
                agreement=agr,
                margin_history=hist,
                review_priority=float(prio),
                review_reason=reason,
            )
            for (eid, p, heads, pl, used, weight, agr, hist, _, reason), prio in zip(rows, priorities, strict=True)
        ]

    def pseudo_label_report(self) -> list[PseudoLabelStats]:
        """Per epoch and class: pseudo-labels drawn and used, and checked against withheld labels."""
        import numpy as np

        tr = self.trainer.tracking if self.uses_unlabeled else None
        if tr is None or not tr.target_history:
            return []
        hidden = np.array([-1 if e.hidden_label is None else int(e.hidden_label) for e in self.train_unl])
        out = []
        for ep, (tgt, w) in enumerate(zip(tr.target_history, tr.weight_history, strict=True), 1):
            for c, name in enumerate(self.label_names):
                drawn = tgt == c
                used = drawn & (w > 0)
                checked = used & (hidden >= 0)
                out.append(
                    PseudoLabelStats(
                        epoch=ep,
                        label=name,
                        drawn=int(drawn.sum()),
                        used=int(used.sum()),
                        mean_weight=float(w[used].mean()) if used.any() else 0.0,
                        checked=int(checked.sum()),
                        correct=int((checked & (hidden == c)).sum()),
                    )
                )
        return out

    def view_losses(self) -> list[ViewLoss]:
        return _view_losses(self.trainer, self.train_unl, self.lab_train, self.lab_views, self.cfg)

    def save(self) -> str:
        from ssl_engine.configs import config_as_dict
        from ssl_engine.model import save_model

        model_dir = os.path.join(self.inp.out_dir, MODEL_SUBDIR)
        meta = {
            "format": "umbra-ssl-model/1",
            "label_names": self.label_names,
            "positive_index": self.pos,
            "threshold": self.threshold.threshold,
            "threshold_strategy": self.threshold.strategy,
            "algorithm": self.inp.algorithm,
            "config": {"train": config_as_dict(self.cfg), "algorithm": config_as_dict(self.algo_cfg)},
            "seed": self.seed,
            "backbone": self.backbone,
            "mode": self.mode,
            "n_heads": self.n_heads,
            "head_hidden": self.cfg.head_hidden,
            "max_length": self.cfg.max_length,
            "class_prior": [float(x) for x in self.prior],
            "data_hashes": {
                "labeled": _hash_examples(self.inp.labeled),
                "unlabeled": _hash_examples(self.inp.unlabeled),
                "labeled_train": _hash_examples(self.lab_train),
                "labeled_val": _hash_examples(self.lab_val),
            },
            "counts": {
                "labeled_train": len(self.lab_train),
                "labeled_val": len(self.lab_val),
                "labeled_view_copies": len(self.lab_views),
                "unlabeled_pool": len(self.inp.unlabeled),
                "unlabeled_trained": len(self.train_unl),
                "unlabeled_with_views": sum(1 for e in self.train_unl if e.strong_views),
            },
        }
        save_model(self.model, self.tokenizer, model_dir, meta, self.n_classes)
        return model_dir


def _n_views(example, cfg) -> int:
    """Precomputed strong views of ``example`` that a round uses."""
    return min(len(example.strong_views), cfg.max_strong_views)


def _view_losses(trainer, train_unl, lab_train, lab_views, cfg) -> list[ViewLoss]:
    """Per-epoch training loss of every precomputed view, flagged against its population."""
    import warnings

    import numpy as np

    from ssl_engine.augment.curation import view_loss_report

    kw = {
        "quantile": cfg.loss_flag_quantile,
        "min_fraction": cfg.loss_flag_min_fraction,
        "warmup_epochs": cfg.loss_flag_warmup_epochs,
    }
    out: list[ViewLoss] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of never-drawn rows is NaN, as meant
        if trainer.tracking.strong_history and train_unl and any(e.strong_views for e in train_unl):
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
            out += view_loss_report(
                views, np.array(rows).reshape(len(views), hist.shape[0]), ref_rows, labeled=False, **kw
            )
        if lab_views and trainer.labeled_tracking.history:
            lhist = np.stack(trainer.labeled_tracking.history, axis=1)  # (rows, epochs)
            n = len(lab_train)
            out += view_loss_report(
                [(lab_train[k].example_id, j) for k, j in lab_views], lhist[n:], lhist[:n], labeled=True, **kw
            )
    return out


def _stream_scores(model, tokenizer, rows, cfg, device, progress, features: dict | None = None):
    """Score examples not in any table: tokenize per chunk, full forward, length-bucketed
    (``features`` as in :func:`_score_table`)."""
    import numpy as np

    from ssl_engine.data import TextTable, tokenized_items

    out = None
    chunk = max(cfg.score_batch_size * 16, 1024)
    for s in range(0, len(rows), chunk):
        part = rows[s : s + chunk]
        tbl = TextTable(tokenized_items(tokenizer, [r.text for r in part], [r.prompt for r in part], cfg.max_length))
        feats: dict | None = {} if features is not None else None
        probs = _score_table(model, tbl, device, cfg.score_batch_size, bf16=cfg.bf16, features=feats)
        if out is None:
            out = np.zeros((len(rows), probs.shape[1], probs.shape[2]), dtype=np.float32)
        out[s : s + len(part)] = probs
        if features is not None:
            features.setdefault("pooled", np.zeros((len(rows), feats["pooled"].shape[1]), dtype=np.float32))
            features["pooled"][s : s + len(part)] = feats["pooled"]
        if progress("score", s + len(part), len(rows)):
            raise _Stopped
    return out


class Scorer:
    """A loaded model for serving: ``score`` returns (p_harmful averaged, per-head p_harmful).

    ``runtime`` (default: ``settings.scorer_runtime``): ``"fp32"`` runs the saved weights as they
    are; ``"int8"`` quantizes the encoder's Linear layers to int8 with dynamic activation
    quantization (``torch.ao.quantization.quantize_dynamic``, per-channel weights) after loading,
    CPU only. The heads stay fp32, and the threshold is the saved fp32 model's.
    """

    def __init__(
        self,
        model_dir: str,
        device: str | None = None,
        settings: EngineSettings | None = None,
        runtime: str | None = None,
    ) -> None:
        from ssl_engine.model import load_saved

        settings = settings or EngineSettings.from_env()
        settings.apply_threads()
        self.runtime = runtime or settings.scorer_runtime
        if self.runtime not in SCORER_RUNTIMES:
            raise ValueError(f"unknown scorer runtime {self.runtime!r}; expected one of {SCORER_RUNTIMES}")
        self.device = resolve_device(device)
        self.model, self.tokenizer, self.meta = load_saved(model_dir, self.device)
        if self.runtime == "int8":
            if str(self.device) != "cpu":
                raise ValueError(f"the int8 scorer runtime runs on the CPU only, not on {self.device}")
            self.model.encoder = quantize_int8(self.model.encoder)
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
        probs = _score_table(self.model, tbl, self.device, batch_size, bf16=self.runtime == "fp32")
        avg = _avg_probs(probs)
        k = self.positive_index
        return [(float(avg[i, k]), tuple(float(x) for x in probs[i, :, k])) for i in range(len(texts))]


def quantize_int8(module):
    """``module`` with every Linear layer replaced by a dynamically quantized int8 one (per-channel weights)."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's eager quantization warns that it moves to torchao
        warnings.simplefilter("ignore")
        return quantize_dynamic(module, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)


def load_scorer(
    model_dir: str, device: str | None = None, settings: EngineSettings | None = None, runtime: str | None = None
) -> Scorer:
    """Load a model saved by ``run_round`` once; reuse the returned scorer for every request."""
    return Scorer(model_dir, device, settings, runtime)


def labeled_from_rows(rows: Sequence[dict], label_names: Sequence[str]) -> list[LabeledText]:
    """Build LabeledText from JSONL-style dicts (id, text, prompt, label name, optional prior_weight)."""
    idx = {n: i for i, n in enumerate(label_names)}
    return [
        LabeledText(
            example_id=str(r["id"]),
            text=r["text"],
            label=idx[r["label"]],
            prompt=r.get("prompt"),
            prior_weight=float(r.get("prior_weight", 1.0)),
        )
        for r in rows
    ]
