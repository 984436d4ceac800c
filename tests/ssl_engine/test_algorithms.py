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
    CurriculumMask,
    DistributionAlignment,
    MultiMatch,
    SelfAdaptiveThreshold,
    apm_margins,
    aum_update,
    multimatch_targets,
    pseudo_margin,
    vote,
)
from ssl_engine.configs import build_configs
from ssl_engine.data import TextTable, tokenized_items
from ssl_engine.model import build_model

HARMFUL = ["how to make a bomb", "kill people with a gun", "steal a weapon please", "hack and attack people"]
BENIGN = ["write a story about cats", "hello what is the weather", "explain python code please", "a poem about dogs"]


def _setup(tiny_backbone, name, seed=0, prior=None, **cfg):
    torch.manual_seed(seed)
    _, algo_cfg = build_configs(name, cfg)
    cls = ALGORITHMS[name]
    model, tok = build_model(
        tiny_backbone,
        n_heads=cls.n_heads(algo_cfg),
        n_out=2 + cls.extra_classes,
        head_hidden=16,
        dropout=0.0,
        mode="full",
        trainable_layers=0,
    )
    algo = cls(model, algo_cfg, n_classes=2, n_unlabeled=8, steps_per_epoch=2, seed=seed, class_prior=prior)
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
        losses.append([float(_step(model, algo, labeled, unl).loss.detach()) for _ in range(2)])
    assert losses[0] == losses[1]


def test_fixmatch_mask_respects_threshold(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "fixmatch", threshold=0.5)
    out = algo.train_step(labeled, unl)
    maxp = out.weak_logits.softmax(-1).mean(0).max(-1).values  # aligned weak-view probabilities
    assert torch.equal(out.weights, (maxp >= 0.5).float())
    model, algo, labeled, unl = _setup(tiny_backbone, "fixmatch", threshold=1.0)
    out = algo.train_step(labeled, unl)
    assert out.weights.sum() == 0 and out.log["unsupervised_loss"] == 0.0


def test_self_adaptive_threshold_matches_freematch_definition():
    th = SelfAdaptiveThreshold(2, 0.9)
    assert th.tau == 0.5 and np.allclose(th.p_tilde, [0.5, 0.5])
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8]])
    th.update(probs)
    tau = 0.9 * 0.5 + 0.1 * float(probs.max(-1).values.mean())
    pt = 0.9 * np.array([0.5, 0.5]) + 0.1 * probs.mean(0).numpy()
    assert th.tau == pytest.approx(tau)
    assert np.allclose(th.p_tilde, pt)
    expected = probs.max(-1).values.numpy() >= tau * pt[probs.argmax(-1).numpy()] / pt.max()
    assert th.mask(probs).numpy().tolist() == expected.astype(float).tolist()


def test_self_adaptive_threshold_relative_to_prior_gives_a_rare_class_the_global_threshold():
    """A class predicted exactly as often as its labeled share gets τ, not τ·(its share / the top share)."""
    plain, relative = SelfAdaptiveThreshold(2, 0.0), SelfAdaptiveThreshold(2, 0.0, prior=np.array([0.87, 0.13]))
    probs = torch.tensor([[1.0, 0.0]] * 87 + [[0.0, 1.0]] * 13)
    plain.update(probs)
    relative.update(probs)
    assert plain.class_thresholds()[1] == pytest.approx(plain.tau * 0.13 / 0.87, rel=0.05)
    assert relative.class_thresholds() == pytest.approx([relative.tau, relative.tau], rel=0.05)


def test_freematch_step_updates_threshold_and_masks(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "freematch", ema_momentum=0.5)
    out = algo.train_step(labeled, unl)
    probs = out.weak_logits.softmax(-1).mean(0)
    assert algo.sat.tau == pytest.approx(0.5 * 0.5 + 0.5 * float(probs.max(-1).values.mean()), rel=1e-5)
    assert torch.equal(out.weights, algo.sat.mask(probs))


def test_freematch_fairness_term_changes_the_loss_only_when_weighted(tiny_backbone):
    losses = []
    for weight in (0.0, 1.0):
        model, algo, labeled, unl = _setup(
            tiny_backbone, "freematch", seed=3, fairness_weight=weight, unlabeled_rampup=0.0
        )
        losses.append(float(algo.train_step(labeled, unl).loss.detach()))
    assert np.isfinite(losses).all() and losses[0] != losses[1]


def _skewed_pool(n=4000, prior=0.13, seed=0):
    """An over-confident model on a 13 %-harmful pool: harmful logit N(2, 1), benign N(0, 1.5)."""
    rng = np.random.default_rng(seed)
    harmful = rng.random(n) < prior
    z = np.where(harmful, rng.normal(2.0, 1.0, n), rng.normal(0.0, 1.5, n))
    return torch.tensor(np.stack([np.zeros(n), z], 1), dtype=torch.float32)


@pytest.mark.parametrize("mode", ["quantile", "mean"])
def test_distribution_alignment_keeps_pseudo_labels_near_the_labeled_prior(mode):
    logits = _skewed_pool()
    raw_share = float((logits.argmax(-1) == 1).float().mean())
    da = DistributionAlignment(np.array([0.87, 0.13]), momentum=0.9, mode=mode)
    shares = []
    for batch in logits.split(32):
        shares.append(float((da.align_logits(batch).argmax(-1) == 1).float().mean()))
    aligned_share = float(np.mean(shares[20:]))  # after the EMA has warmed up
    assert raw_share > 0.4  # the model flags far more than 13 %
    assert abs(aligned_share - 0.13) < (0.02 if mode == "quantile" else 0.05)
    assert abs(da.p_model[1] - float(logits.softmax(-1)[:, 1].mean())) < 0.05


def test_quantile_alignment_holds_the_hard_label_share_where_mean_alignment_does_not():
    """A model that spreads harmful mass (p 0.2-0.4 on many items) keeps mean-aligned hard labels rare."""
    rng = np.random.default_rng(0)
    n = 4000
    z = np.where(rng.random(n) < 0.13, rng.normal(0.5, 0.5, n), rng.normal(-1.2, 0.4, n))
    logits = torch.tensor(np.stack([np.zeros(n), z], 1), dtype=torch.float32)
    shares = {}
    for mode in ("mean", "quantile"):
        da = DistributionAlignment(np.array([0.87, 0.13]), momentum=0.9, mode=mode)
        out = [float((da.align_logits(b).argmax(-1) == 1).float().mean()) for b in logits.split(32)]
        shares[mode] = float(np.mean(out[20:]))
    assert abs(shares["quantile"] - 0.13) < 0.02
    assert abs(shares["mean"] - 0.13) > 0.04


def test_distribution_alignment_steers_fixmatch_pseudo_labels(tiny_backbone):
    """The same weak logits give different pseudo-labels once the labeled prior is skewed."""
    targets = []
    for prior in (np.array([0.5, 0.5]), np.array([0.99, 0.01])):
        model, algo, labeled, unl = _setup(
            tiny_backbone, "fixmatch", seed=1, prior=prior, threshold=0.0, distribution_alignment="mean"
        )
        targets.append(algo.train_step(labeled, unl).targets)
    assert (targets[1] == 0).all() and not torch.equal(targets[0], targets[1])


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
    for m in [1.0, 2.0, 6.0]:
        aum_update(a, s, np.array([0]), np.array([[m]]), 1.0)
    assert a[0, 0] == pytest.approx(3.0)  # δ = 1: exact running mean


def test_pseudo_margin_definition():
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    assert pseudo_margin(logits, torch.tensor([0])).item() == pytest.approx(1.5)
    assert pseudo_margin(logits, torch.tensor([2])).item() == pytest.approx(-3.0)


def test_curriculum_mask_is_class_adaptive():
    cm = CurriculumMask(7, 2, 0.95)
    cm.selected[:] = [0, 0, 0, 0, 1, -1, -1]  # σ = [4, 1], unused = 2 -> β = [1, 0.25]
    probs = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2]])
    probs[2] = torch.tensor([0.2, 0.8])
    # class 0: τ·1/(2−1) = 0.95; class 1: τ·0.25/1.75 ≈ 0.136
    assert cm.mask(probs).tolist() == [0.0, 1.0, 1.0]
    assert cm.beta().tolist() == [1.0, 0.25]


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


def test_multimatch_targets_on_hand_made_votes():
    labels = np.array([[0, 1], [0, 0], [0, 1]])  # (heads, examples)
    apm = np.array(
        [
            [[1.0, -1.0], [-1.0, 0.1]],  # head 0: ex0 label 0 APM 1.0; ex1 label 1 APM 0.1
            [[1.0, -1.0], [0.9, -0.9]],  # head 1: ex0 label 0 APM 1.0; ex1 label 0 APM 0.9
            [[0.2, -1.0], [-1.0, 0.8]],  # head 2: ex0 label 0 APM 0.2; ex1 label 1 APM 0.8
        ]
    )
    cut = np.full((3, 2), 0.5)
    out_labels, weights, types = multimatch_targets(labels, apm, cut, 3.0)
    # ex0: all agree on 0. head0 <- heads 1,2 (pass, fail) = low; head1 <- heads 0,2 = low; head2 <- heads 0,1 = high
    assert [t[0] for t in types] == [LOW_AGREE, LOW_AGREE, HIGH_AGREE]
    assert weights[:, 0].tolist() == [3.0, 3.0, 1.0] and out_labels[:, 0].tolist() == [0, 0, 0]
    # ex1: head0 <- heads1(0,pass),2(1,pass) = disagree, both pass -> 0
    #      head1 <- heads0(1,fail),2(1,pass) = agree, one passes -> label 1, w 3
    #      head2 <- heads0(1,fail),1(0,pass) = disagree, one passes -> label 0, w 3
    assert [t[1] for t in types] == [DISAGREE_BOTH, LOW_AGREE, DISAGREE_ONE]
    assert weights[:, 1].tolist() == [0.0, 3.0, 3.0]
    assert out_labels[1, 1] == 1 and out_labels[2, 1] == 0
    # first epoch: no cut-offs -> everything masked
    _, w0, t0 = multimatch_targets(labels, None, None, 3.0)
    assert (w0 == 0).all() and t0[0][0] == FIRST_EPOCH


def test_multimatch_pass_test_uses_the_taught_heads_cut_off():
    labels = np.array([[1], [1], [1]])
    apm = np.full((3, 1, 2), 0.6)
    cut = np.array([[0.0, 0.5], [0.0, 0.9], [0.0, 0.9]])  # only head 0's cut-off lets APM 0.6 pass
    _, weights, types = multimatch_targets(labels, apm, cut, 3.0)
    assert [t[0] for t in types] == [HIGH_AGREE, AGREE_NONE, AGREE_NONE]
    assert weights[:, 0].tolist() == [1.0, 0.0, 0.0]


def test_multimatch_updates_apm_every_step_before_the_vote(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "multimatch")
    assert isinstance(algo, MultiMatch)
    out = algo.train_step(labeled, unl)
    assert out.log["mask_ratio"] == 0.0  # first epoch: weight 0
    # APM after one sighting: s/(1+0) of the margin, at this step (not at the epoch's end)
    assert (algo.seen == 1).all()
    assert np.allclose(algo.apm, apm_margins(out.weak_logits).numpy() * 0.997, atol=1e-5)
    second = algo.train_step(labeled, unl)
    r = 0.997 / 2
    expected = apm_margins(second.weak_logits).numpy() * r + apm_margins(out.weak_logits).numpy() * 0.997 * (1 - r)
    assert (algo.seen == 2).all() and np.allclose(algo.apm, expected, atol=1e-5)


def test_multimatch_never_seen_example_never_passes(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "multimatch")
    unl = {k: {kk: (vv[:4] if kk != "index" else vv[:4]) for kk, vv in b.items()} for k, b in unl.items()}
    algo.train_step(labeled, unl)  # examples 0-3 seen, 4-7 never
    algo.on_epoch_end()
    types, weights = algo.example_agreement()
    assert all(t in (AGREE_NONE, DISAGREE_NONE) for t in types[4:]) and (weights[4:] == 0).all()


def test_multimatch_recalibrates_every_epoch_and_skips_empty_classes(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "multimatch")
    algo.train_step(labeled, unl)
    algo.on_epoch_end()
    assert algo.cutoffs is not None and algo.epoch == 1
    # every head labels every example 0: class 1 has no agreed examples
    algo.last_pl[:] = 0
    algo.apm[1, :, 0] = np.linspace(1, 2, 8)
    algo.apm[2, :, 0] = np.linspace(3, 4, 8)
    algo.cutoffs[0, 1] = 0.123
    algo.recalibrate()
    voters = np.concatenate([np.linspace(1, 2, 8), np.linspace(3, 4, 8)])  # heads 1, 2 teach head 0
    assert algo.cutoffs[0, 0] == pytest.approx(np.percentile(voters, 5.0))
    assert algo.cutoffs[0, 1] == pytest.approx(0.123)  # kept, and the loop went on (continue, not break)
    algo.train_step(labeled, unl)
    algo.on_epoch_end()
    assert algo.epoch == 2


def test_multimatch_supervised_loss_sums_heads(tiny_backbone):
    model, algo, labeled, _ = _setup(tiny_backbone, "multimatch")
    model.eval()
    per_head = [torch.nn.functional.cross_entropy(lg, labeled["labels"]) for lg in model(labeled)]
    assert float(algo.supervised_loss(labeled)) == pytest.approx(float(sum(per_head)), rel=1e-5)


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


def test_class_balance_gives_each_class_the_same_total_weight():
    from ssl_engine.algorithms.policies import ClassBalance

    cb = ClassBalance(np.array([0.5, 0.5]), momentum=0.0)
    targets = torch.tensor([0] * 9 + [1])
    mult = cb(targets, torch.ones(10))
    assert float(mult[targets == 0].sum()) == pytest.approx(float(mult[targets == 1].sum()))
    assert float(mult.mean()) == pytest.approx(1.0)
    masked = cb(targets, torch.tensor([1.0] * 9 + [0.0]))  # only class 0 used: nothing to rebalance against
    assert float(masked[0]) == pytest.approx(0.5)


def test_unlabeled_weight_ramps_up_from_zero(tiny_backbone):
    model, algo, labeled, unl = _setup(tiny_backbone, "fixmatch", threshold=0.0, unlabeled_rampup=0.5)
    algo.total_steps = 4
    first = algo.train_step(labeled, unl)
    assert float(first.loss) == pytest.approx(first.log["supervised_loss"], rel=1e-6)  # λ_u · 0
    algo.train_step(labeled, unl)
    third = algo.train_step(labeled, unl)  # step 2 of 4 with a 2-step ramp: full weight
    assert float(third.loss) == pytest.approx(third.log["supervised_loss"] + third.log["unsupervised_loss"], rel=1e-5)
