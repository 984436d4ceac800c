"""The single shared training loop: sampling, optimiser, AMP, callbacks, per-example tracking."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ssl_engine.algorithms import SSLAlgorithm, pseudo_margin
from ssl_engine.configs import TrainConfig
from ssl_engine.data import TextTable, bucketed_batches
from ssl_engine.model import autocast
from ssl_engine.types import Callback, TrainControl, TrainState


@dataclass
class UnlabeledTracking:
    """Per-example signals gathered while training (indices into the unlabeled subsample)."""

    n: int
    n_classes: int
    n_views: int = 1  # strong-view tables
    last_weight: np.ndarray = field(init=False)
    used: np.ndarray = field(init=False)
    raw_margin: np.ndarray = field(init=False)
    pseudo_label: np.ndarray = field(init=False)
    target: np.ndarray = field(init=False)  # the class the unlabeled loss used (after alignment / vote)
    history: list[np.ndarray] = field(default_factory=list)
    # per epoch: (target class, weight) of every example drawn that epoch (-1 / 0 when not drawn)
    target_history: list[np.ndarray] = field(default_factory=list)
    weight_history: list[np.ndarray] = field(default_factory=list)
    # strong-view CE against the pseudo-label: this epoch's (n, n_views), and one array per past epoch
    strong_epoch: np.ndarray = field(init=False)
    strong_history: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.last_weight = np.zeros(self.n)
        self.used = np.zeros(self.n, dtype=bool)
        self.raw_margin = np.zeros(self.n)
        self.pseudo_label = np.full(self.n, -1, dtype=np.int64)
        self.target = np.full(self.n, -1, dtype=np.int64)
        self._epoch_target = np.full(self.n, -1, dtype=np.int64)
        self._epoch_weight = np.zeros(self.n)
        self.strong_epoch = np.full((self.n, self.n_views), np.nan, dtype=np.float32)

    def record(self, idx: np.ndarray, targets: np.ndarray | None, weights: np.ndarray | None) -> None:
        if weights is not None:
            self.last_weight[idx] = weights
            self.used[idx] = weights > 0
            self._epoch_weight[idx] = weights
        if targets is not None:
            self.target[idx] = targets
            self._epoch_target[idx] = targets

    def end_epoch(self) -> None:
        self.strong_history.append(self.strong_epoch)
        self.strong_epoch = np.full((self.n, self.n_views), np.nan, dtype=np.float32)
        self.target_history.append(self._epoch_target)
        self.weight_history.append(self._epoch_weight)
        self._epoch_target = np.full(self.n, -1, dtype=np.int64)
        self._epoch_weight = np.zeros(self.n)


@dataclass
class LabeledTracking:
    """Per labeled row: mean training CE per epoch (rows are drawn several times an epoch)."""

    n: int
    loss_sum: np.ndarray = field(init=False)
    count: np.ndarray = field(init=False)
    history: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.loss_sum = np.zeros(self.n)
        self.count = np.zeros(self.n)

    def add(self, idx: np.ndarray, losses: np.ndarray) -> None:
        np.add.at(self.loss_sum, idx, losses)
        np.add.at(self.count, idx, 1)

    def end_epoch(self) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            self.history.append(np.where(self.count > 0, self.loss_sum / self.count, np.nan).astype(np.float32))
        self.loss_sum[:] = 0
        self.count[:] = 0


def notify(callbacks: Sequence[Callback], state: TrainState, control: TrainControl) -> bool:
    """Run every callback; return True when one asked to stop."""
    for cb in callbacks:
        cb.on_step_end(state, control)
    return control.should_stop


def schedule(cfg: TrainConfig, *, n_labeled: int, n_unlabeled: int) -> tuple[int, int]:
    """(steps per epoch, total steps): ``epochs`` full passes over the unlabeled subsample (over the
    labeled set when there is none), at least ``min_steps``, at most ``max_steps`` when set."""
    if n_unlabeled:
        per_epoch = math.ceil(n_unlabeled / (cfg.batch_size * cfg.unlabeled_ratio))
    else:
        per_epoch = max(1, math.ceil(n_labeled / cfg.batch_size))
    total = max(cfg.epochs * per_epoch, cfg.min_steps)
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    return per_epoch, total


def token_mask(attention_mask: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Hide a random share ``p`` of each row's tokens from attention and pooling (a fresh draw per call);
    the first token always stays, so no row is emptied."""
    keep = torch.rand(attention_mask.shape, generator=generator) >= p
    keep[:, 0] = True
    return attention_mask * keep.to(attention_mask.device, attention_mask.dtype)


class Trainer:
    """Runs ``algorithm.train_step`` for ``total_steps`` steps; algorithms never own a loop."""

    def __init__(
        self,
        algorithm: SSLAlgorithm,
        cfg: TrainConfig,
        *,
        labeled: TextTable,
        labels: np.ndarray,
        views: dict[str, list[TextTable]],
        weights: np.ndarray | None = None,
        n_classes: int,
        device: torch.device,
        seed: int,
        callbacks: Sequence[Callback] = (),
        control: TrainControl | None = None,
    ) -> None:
        self.algo, self.cfg = algorithm, cfg
        self.labeled, self.labels = labeled, labels
        # Per-example supervision weight: 1 for human labels, < 1 for refined pseudo-labels.
        self.weights = np.ones(len(labels), dtype=np.float32) if weights is None else np.asarray(weights, np.float32)
        self.views = views
        self.n_classes = n_classes
        self.device = device
        self.rng = np.random.default_rng(seed)
        self.mask_rng = torch.Generator().manual_seed(seed + 31)
        self.callbacks = callbacks
        self.control = control or TrainControl()
        self.log: list[dict[str, float]] = []
        self.n_unlabeled = len(views["weak"][0]) if "weak" in views else 0
        self.tracking = UnlabeledTracking(self.n_unlabeled, n_classes, n_views=max(1, len(views.get("strong", ()))))
        self.labeled_tracking = LabeledTracking(len(labels))
        self._view_choice: dict[str, np.ndarray] = {}
        self._view_offset: dict[str, np.ndarray] = {}
        self._view_draws: dict[str, np.ndarray] = {}
        self.view_rng = np.random.default_rng([seed, 1])
        self.u_batch = cfg.batch_size * cfg.unlabeled_ratio
        self.steps_per_epoch, self.total_steps = schedule(
            cfg, n_labeled=len(labels), n_unlabeled=self.n_unlabeled if algorithm.views else 0
        )

    # -- sampling ---------------------------------------------------------------------------
    def _labeled_batches(self):
        """Endless labeled batches: class-balanced draws, or shuffled passes for class-weighted CE."""
        bs = self.cfg.batch_size
        if self.cfg.labeled_sampling == "balanced":
            # Each batch holds equal shares of every class; within a chunk of batches the
            # k-th batch takes the k-th length slice of each class, so padding stays small.
            by_class = [np.flatnonzero(self.labels == c) for c in range(self.n_classes)]
            by_class = [ix for ix in by_class if len(ix)]
            n_cls = len(by_class)
            share = [bs // n_cls + (1 if k < bs % n_cls else 0) for k in range(n_cls)]
            perms = [ix[self.rng.permutation(len(ix))] for ix in by_class]
            pos = [0] * n_cls
            chunk = 32

            def draw(c: int, k: int) -> np.ndarray:
                out = []
                while len(out) < k:
                    if pos[c] >= len(perms[c]):
                        perms[c] = by_class[c][self.rng.permutation(len(by_class[c]))]
                        pos[c] = 0
                    take = min(k - len(out), len(perms[c]) - pos[c])
                    out.extend(perms[c][pos[c] : pos[c] + take])
                    pos[c] += take
                return np.array(out)

            while True:
                per_class = []
                for c in range(n_cls):
                    ix = draw(c, share[c] * chunk)
                    per_class.append(ix[np.argsort(self.labeled.lengths[ix], kind="stable")])
                batches = [
                    np.concatenate([per_class[c][j * share[c] : (j + 1) * share[c]] for c in range(n_cls)])
                    for j in range(chunk)
                ]
                for j in self.rng.permutation(chunk):
                    yield batches[j]
        else:
            all_idx = np.arange(len(self.labeled))
            while True:
                yield from bucketed_batches(self.labeled.lengths, all_idx, bs, self.rng)

    def _unlabeled_epoch(self):
        """One pass over the whole unlabeled subsample, in length-bucketed batches."""
        return bucketed_batches(self.views["weak"][0].lengths, np.arange(self.n_unlabeled), self.u_batch, self.rng)

    def _collate_views(self, idx: np.ndarray) -> dict[str, dict[str, torch.Tensor]]:
        out = {}
        for name, tables in self.views.items():
            if len(tables) == 1:
                batch = tables[0].collate(idx, self.device)
                self._view_choice[name] = np.zeros(len(idx), dtype=np.int64)
            else:  # rotate through the precomputed views, from a random start per example,
                # so every view of an example is drawn once it has been drawn len(tables) times
                if name not in self._view_offset:
                    self._view_offset[name] = self.view_rng.integers(len(tables), size=self.n_unlabeled)
                    self._view_draws[name] = np.zeros(self.n_unlabeled, dtype=np.int64)
                choice = (self._view_offset[name][idx] + self._view_draws[name][idx]) % len(tables)
                self._view_draws[name][idx] += 1
                self._view_choice[name] = choice
                rows = [tables[v].items[i] for v, i in zip(choice, idx, strict=True)]
                batch = TextTable(rows).collate(range(len(rows)), self.device)
            if name == "strong" and self.cfg.token_mask > 0:
                batch["attention_mask"] = token_mask(batch["attention_mask"], self.cfg.token_mask, self.mask_rng)
            batch["index"] = torch.as_tensor(idx, device=self.device)
            out[name] = batch
        return out

    # -- loop ---------------------------------------------------------------------------------
    def fit(self) -> bool:
        """Train; return True if a callback stopped it early."""
        model, cfg = self.algo.model, self.cfg
        params_enc = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("heads.")]
        params_head = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("heads.")]
        groups = [{"params": params_enc, "lr": cfg.lr}, {"params": params_head, "lr": cfg.head_lr}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=cfg.weight_decay)
        warm = max(1, int(cfg.warmup_ratio * self.total_steps))

        def lr_lambda(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (self.total_steps - step) / max(1, self.total_steps - warm))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
        ema = self._ema(model)
        amp = lambda: autocast(self.device, cfg.bf16)  # noqa: E731
        lab_iter = self._labeled_batches()
        u_batches: list[np.ndarray] = []
        state = TrainState(total_steps=self.total_steps, phase="train")
        model.train()
        for step in range(self.total_steps):
            lidx = next(lab_iter)
            labeled = self.labeled.collate(lidx, self.device)
            labeled["labels"] = torch.as_tensor(self.labels[lidx], device=self.device)
            labeled["weights"] = torch.as_tensor(self.weights[lidx], device=self.device)
            unlabeled: dict[str, dict[str, torch.Tensor]] = {}
            if self.n_unlabeled and self.algo.views:
                if not u_batches:
                    u_batches = self._unlabeled_epoch()
                unlabeled = self._collate_views(u_batches.pop())
            with amp():
                if self.algo.views and not unlabeled:
                    out = self.algo.supervised_step(labeled)
                else:
                    out = self.algo.train_step(labeled, unlabeled)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params_enc + params_head, 1.0)
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            self._track(out)
            if self.algo.last_labeled_loss is not None:
                self.labeled_tracking.add(lidx, self.algo.last_labeled_loss.float().cpu().numpy())
            epoch_done = self.n_unlabeled and self.algo.views and not u_batches
            if epoch_done:
                self.algo.on_epoch_end()
                self.tracking.history.append(
                    self.algo.example_margins(self.tracking.pseudo_label, self.tracking.raw_margin).copy()
                )
                self.tracking.end_epoch()
            if (step + 1) % self.steps_per_epoch == 0 or step + 1 == self.total_steps:
                self.labeled_tracking.end_epoch()
            entry = {"step": step + 1, "loss": float(out.loss.detach()), **out.log}
            self.log.append(entry)
            state.step, state.epoch = step + 1, (step + 1) // self.steps_per_epoch
            state.loss = entry["loss"]
            state.supervised_loss = float(out.log.get("supervised_loss", 0.0))
            state.unsupervised_loss = float(out.log.get("unsupervised_loss", 0.0))
            state.mask_ratio = float(out.log.get("mask_ratio", 0.0))
            if notify(self.callbacks, state, self.control):
                return True
        if self.n_unlabeled and self.algo.views and u_batches:
            self.tracking.end_epoch()  # a last, partial pass over the unlabeled subsample
        if ema is not None:  # the averaged weights are the round's model
            model.load_state_dict(ema.module.state_dict())
            self.algo.teacher = None
        model.eval()
        return False

    def _ema(self, model):
        """An exponential moving average of the model's weights (``ema_decay`` > 0), or None.

        The average is the teacher that gives pseudo-labels (steadier than the student it
        follows, so fewer of its own mistakes are fed back) and becomes the round's model. Its
        decay warms up as min(decay, (1 + n) / (10 + n)) so early steps are not averaged with
        the random initial heads for long.
        """
        decay = self.cfg.ema_decay
        if decay <= 0:
            return None
        from torch.optim.swa_utils import AveragedModel

        def avg(averaged, current, n):
            d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
            return d * averaged + (1.0 - d) * current

        ema = AveragedModel(model, avg_fn=avg, use_buffers=True)
        ema.module.eval()
        for p in ema.module.parameters():
            p.requires_grad_(False)
        self.algo.teacher = ema.module
        return ema

    def _track(self, out) -> None:
        if out.index is None or out.weak_logits is None:
            return
        idx = out.index.cpu().numpy()
        avg = out.weak_logits.float().mean(0)
        pl = avg.argmax(-1)
        self.tracking.pseudo_label[idx] = pl.cpu().numpy()
        self.tracking.raw_margin[idx] = pseudo_margin(avg, pl).cpu().numpy()
        self.tracking.record(
            idx,
            None if out.targets is None else out.targets.cpu().numpy(),
            None if out.weights is None else out.weights.detach().float().cpu().numpy(),
        )
        if out.strong_loss is not None and "strong" in self._view_choice:
            self.tracking.strong_epoch[idx, self._view_choice["strong"]] = out.strong_loss.float().cpu().numpy()
