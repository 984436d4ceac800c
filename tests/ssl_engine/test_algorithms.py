"""Each algorithm's train_step on a tiny model, and the exact update rules of ALGORITHMS.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ssl_engine.algorithms import (
    AGREE_NONE,
    ALGORITHMS,
    DISAGREE_BOTH,
    DISAGREE_NONE,
    DISAGREE_ONE,
    FIRST_EPOCH,
    HIGH_AGREE,
    LOW_AGREE,
    FreeMatchThreshold,
    MultiMatch,
    aum_update,
    apm_margins,
    flexmatch_mask,
    multimatch_targets,
    pseudo_margin,
    vote,
)
from ssl_engine.configs import build_configs
from ssl_engine.data import TextTable, tokenized_items
from ssl_engine.model import build_model

HARMFUL = ["how to make a bomb", "kill people with a gun", "steal a weapon please", "hack and attack people"]
BENIGN = ["write a story about cats", "hello what is the weather", "explain python code please", "a poem about dogs"]


def _setup(tiny_backbone, name, seed=0, **cfg):
    torch.manual_seed(seed)
    _, algo_cfg = build_configs(name, cfg)
    cls = ALGORITHMS[name]
    model, tok = build_model(tiny_backbone, n_heads=cls.n_heads(algo_cfg), n_out=2 + cls.extra_classes,
                             head_hidden=16, dropout=0.0, mode="full", trainable_layers=0)
    algo = cls(model, algo_cfg, n_classes=2, n_unlabeled=8, steps_per_epoch=2, seed=seed)
    lab = TextTable(tokenized_items(tok, HARMFUL[:2] + BENIGN[:2], None, 32))
    labeled = lab.collate(range(4), "cpu")
    labeled["labels"] = torch.tensor([1, 1, 0, 0])
    weak = TextTable(tokenized_items(tok, HARMFUL[:4] + BENIGN[:4], None, 32))
    strong = TextTable(tokenized_items(tok, [t.replace("a ", "") for t in HARMFUL[:4] + BENIGN[:4]], None, 32))
    unl = {"weak": weak.collate(range(8), "cpu"), "strong": strong.collate(range(8), "cpu")}
    for b in unl.values():
        b["index"] = torch.arange(8)
    return model, algo, labeled, unl


def _step(model, algo, labeled, unl):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    out = algo.train_step(labeled, unl)
    opt.zero_grad()
    out.loss.backward()
    opt.step()
    return out


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_one_step_changes_weights_and_losses_are_finite(tiny_backbone, name):
    model, algo, labeled, unl = _setup(tiny_backbone, name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = _step(model, algo, labeled, unl)
    assert torch.isfinite(out.loss)
    assert all(np.isfinite(v) for v in out.log.values())
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("heads.") for k in changed)
    assert any(k.startswith("encoder.") for k in changed)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_step_is_reproducible_under_a_seed(tiny_backbone, name):
    losses = []
    for _ in range(2):
        model, algo, labeled, unl = _setup(tiny_backbone, name, seed=5)
        losses.append([float(_step(model, algo, labeled, unl).loss) for _ in range(2)])
    assert losses[0] == losses[1]


def test_fixmatch_mask_respects_threshold(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "fixmatch", threshold=0.5)
    out = algo.train_step(labeled, unl)
    maxp = out.weak_logits.softmax(-1).mean(0).max(-1).values
    assert torch.equal(out.weights, (maxp >= 0.5).float())
    model, algo, labeled, unl = _setup(tiny_backbone, "fixmatch", threshold=1.0)
    out = algo.train_step(labeled, unl)
    assert out.weights.sum() == 0 and out.log["unsupervised_loss"] == 0.0


def test_freematch_threshold_ema_matches_definition():
    th = FreeMatchThreshold(2, 0.9)
    assert th.tau == 0.5 and torch.allclose(th.p_tilde, torch.tensor([0.5, 0.5]))
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    th.update(probs)
    tau = 0.9 * 0.5 + 0.1 * float(probs.max(-1).values.mean())
    pt = 0.9 * torch.tensor([0.5, 0.5]) + 0.1 * probs.mean(0)
    assert th.tau == pytest.approx(tau)
    assert torch.allclose(th.p_tilde, pt)
    expected = probs.max(-1).values >= tau * pt[probs.argmax(-1)] / pt.max()
    assert torch.equal(th.mask(probs), expected.float())


def test_freematch_step_updates_threshold_and_masks(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "freematch", ema_momentum=0.5)
    out = algo.train_step(labeled, unl)
    probs = out.weak_logits.softmax(-1).mean(0)
    assert algo.thresh.tau == pytest.approx(0.5 * 0.5 + 0.5 * float(probs.max(-1).values.mean()), rel=1e-5)
    assert torch.equal(out.weights, algo.thresh.mask(probs))


def test_aum_update_matches_formula():
    aum = np.zeros((3, 2))
    seen = np.zeros(3, dtype=int)
    delta = 0.997
    m1 = np.array([[1.0, -1.0], [2.0, -2.0]])
    aum_update(aum, seen, np.array([0, 2]), m1, delta)
    assert np.allclose(aum[[0, 2]], m1 * delta)  # t = 0
    m2 = np.array([[3.0, -3.0]])
    aum_update(aum, seen, np.array([0]), m2, delta)
    r = delta / 2  # t = 1
    assert np.allclose(aum[0], m2[0] * r + m1[0] * delta * (1 - r))
    assert list(seen) == [2, 0, 1]
    a, s = np.zeros((1, 1)), np.zeros(1, dtype=int)
    for t, m in enumerate([1.0, 2.0, 6.0]):
        aum_update(a, s, np.array([0]), np.array([[m]]), 1.0)
    assert a[0, 0] == pytest.approx(3.0)  # δ = 1: exact running mean


def test_pseudo_margin_definition():
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    assert pseudo_margin(logits, torch.tensor([0])).item() == pytest.approx(1.5)
    assert pseudo_margin(logits, torch.tensor([2])).item() == pytest.approx(-3.0)


def test_flexmatch_mask_is_class_adaptive():
    selected = np.array([0, 0, 0, 0, 1, -1, -1])  # σ = [4, 1], unused = 2 -> β = [1, 0.25]
    maxp = torch.tensor([0.9, 0.9, 0.2])
    yhat = torch.tensor([0, 1, 1])
    m = flexmatch_mask(maxp, yhat, selected, 2, 0.95)
    # class 0: τ·1/(2−1) = 0.95; class 1: τ·0.25/1.75 ≈ 0.136
    assert m.tolist() == [0.0, 1.0, 1.0]


def test_marginmatch_trains_threshold_examples_on_fake_class(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "marginmatch", warmup_epochs=0, recompute_steps=1)
    assert algo.is_threshold.sum() == 1  # min(N/100, N/C) with at least one
    out = algo.train_step(labeled, unl)
    thr = np.flatnonzero(algo.is_threshold)
    assert out.weights[thr].sum() == 0  # not counted as used pseudo-labels
    assert np.isfinite(algo.cutoff)
    assert (algo.seen == 1).all()
    assert model.heads[0].net[-1].out_features == 3


def test_apm_margins_definition():
    logits = torch.tensor([[3.0, 1.0, 0.0]])
    assert apm_margins(logits).tolist() == [[2.0, -2.0, -3.0]]


@pytest.mark.parametrize(
    "labels,passes,label,weight,kind",
    [
        ([1, 1], [True, True], 1, 1.0, HIGH_AGREE),
        ([1, 1], [True, False], 1, 3.0, LOW_AGREE),
        ([0, 0], [False, True], 0, 3.0, LOW_AGREE),
        ([1, 0], [False, True], 0, 3.0, DISAGREE_ONE),
        ([1, 0], [True, False], 1, 3.0, DISAGREE_ONE),
        ([1, 1], [False, False], None, 0.0, AGREE_NONE),
        ([1, 0], [False, False], None, 0.0, DISAGREE_NONE),
        ([1, 0], [True, True], None, 0.0, DISAGREE_BOTH),
    ],
)
def test_vote_covers_every_agreement_case(labels, passes, label, weight, kind):
    lab, w, types = vote(np.array(labels)[:, None], np.array(passes)[:, None], 3.0)
    assert types == [kind] and w[0] == weight
    if label is not None:
        assert lab[0] == label


def test_multimatch_targets_on_hand_made_logits():
    # 3 heads, 2 examples; class logits chosen so the argmax labels are explicit.
    logits = np.array([
        [[2.0, 0.0], [0.0, 2.0]],  # head 0: labels 0, 1
        [[2.0, 0.0], [2.0, 0.0]],  # head 1: labels 0, 0
        [[2.0, 0.0], [0.0, 2.0]],  # head 2: labels 0, 1
    ])
    apm = np.array([
        [[1.0, -1.0], [-1.0, 0.1]],  # head 0: ex0 passes (1.0 >= .5); ex1 fails (0.1 < .5)
        [[1.0, -1.0], [0.9, -0.9]],  # head 1: both pass
        [[0.2, -1.0], [-1.0, 0.8]],  # head 2: ex0 fails; ex1 passes
    ])
    cut = np.full((3, 2), 0.5)
    labels, weights, types = multimatch_targets(logits, apm, cut, 3.0)
    # ex0: all agree on 0. head0 <- heads 1,2 (pass, fail) = low; head1 <- heads 0,2 = low; head2 <- heads 0,1 = high
    assert [t[0] for t in types] == [LOW_AGREE, LOW_AGREE, HIGH_AGREE]
    assert weights[:, 0].tolist() == [3.0, 3.0, 1.0] and labels[:, 0].tolist() == [0, 0, 0]
    # ex1: head0 <- heads1(0,pass),2(1,pass) = both pass, disagree -> 0
    #      head1 <- heads0(1,fail),2(1,pass) = agree, one passes -> label 1, w 3
    #      head2 <- heads0(1,fail),1(0,pass) = disagree, one passes -> label 0, w 3
    assert [t[1] for t in types] == [DISAGREE_BOTH, LOW_AGREE, DISAGREE_ONE]
    assert weights[:, 1].tolist() == [0.0, 3.0, 3.0]
    assert labels[1, 1] == 1 and labels[2, 1] == 0
    # first epoch: no cut-offs -> everything masked
    _, w0, t0 = multimatch_targets(logits, None, None, 3.0)
    assert (w0 == 0).all() and t0[0][0] == FIRST_EPOCH


def test_multimatch_recalibrates_every_epoch_and_skips_empty_classes(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "multimatch")
    assert isinstance(algo, MultiMatch)
    out = algo.train_step(labeled, unl)
    assert out.log["mask_ratio"] == 0.0  # first epoch: weight 0
    algo.on_epoch_end()
    assert algo.cutoffs is not None and algo.epoch == 1
    # APM after epoch 0: s/(1+0) = 0.997 of the margin
    assert np.allclose(algo.apm[:, 0], apm_margins(out.weak_logits).numpy()[:, 0] * 0.997, atol=1e-6)
    # force heads 1 and 2 to agree only on class 0: class 1 has no agreed examples for head 0
    algo.last_pl[:] = 0
    algo.apm[0, :, 0] = np.linspace(1, 2, 8)
    algo.cutoffs[0, 1] = 0.123
    algo.recalibrate()
    assert algo.cutoffs[0, 0] == pytest.approx(np.percentile(np.linspace(1, 2, 8), 5.0))
    assert algo.cutoffs[0, 1] == pytest.approx(0.123)  # kept, and the loop went on (continue, not break)
    algo.train_step(labeled, unl)
    algo.epoch_pm[:] = 5.0
    algo.on_epoch_end()
    assert algo.epoch == 2


def test_prior_adjustment_shifts_weak_logits_only(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "fixmatch")
    raw = algo.weak_logits(unl["weak"])
    algo.logit_adjust = torch.log(torch.tensor([0.87, 0.13])) + np.log(2)
    adj = algo.weak_logits(unl["weak"])
    assert torch.allclose(adj - raw, algo.logit_adjust.expand_as(raw), atol=1e-5)


def test_example_weights_scale_the_supervised_loss(tiny_backbone):
    """Refined pseudo-labels (weight < 1) count less than human labels (weight 1)."""
    model, algo, labeled, _ = _setup(tiny_backbone, "supervised")
    model.eval()
    plain = algo.supervised_loss(labeled)
    labeled["weights"] = torch.ones(4)
    same = algo.supervised_loss(labeled)
    labeled["weights"] = torch.full((4,), 0.5)
    half = algo.supervised_loss(labeled)
    labeled["weights"] = torch.tensor([1.0, 1.0, 0.0001, 0.0001])
    harmful_only = algo.supervised_loss(labeled)
    assert torch.allclose(plain, same, atol=1e-6)
    assert torch.allclose(half, plain * 0.5, atol=1e-6)
    assert not torch.allclose(harmful_only, plain, atol=1e-3)
