"""Robust UU learning: the risk, θ estimation and the refinement loop (CPU, no DB)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssl_engine.uu import (
    REFINERS,
    UUError,
    estimate_thetas,
    get_refiner,
    leaky,
    refine_labels,
    refiner,
    sigmoid_loss,
    uu_coefficients,
    uu_partial_risks,
    uu_risk,
    wilson_interval,
)


def _sig(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_coefficients_match_the_formula():
    c = uu_coefficients(0.3, 0.8, 0.2)
    gap = 0.6
    assert c.a == pytest.approx(0.3 * 0.8 / gap)
    assert c.c == pytest.approx(0.3 * 0.2 / gap)
    assert c.d == pytest.approx(0.7 * 0.8 / gap)
    assert c.b == pytest.approx(0.7 * 0.2 / gap)


def test_uu_risk_on_a_hand_computed_example():
    g_up = torch.tensor([2.0, -1.0])
    g_un = torch.tensor([0.5, -3.0, 1.0])
    c = uu_coefficients(0.3, 0.8, 0.2)
    rp_up = (_sig(-2.0) + _sig(1.0)) / 2  # ℓ(z, +1) = σ(−z)
    rp_un = (_sig(-0.5) + _sig(3.0) + _sig(-1.0)) / 3
    rn_up = (_sig(2.0) + _sig(-1.0)) / 2  # ℓ(z, −1) = σ(z)
    rn_un = (_sig(0.5) + _sig(-3.0) + _sig(1.0)) / 3
    expected = c.a * rp_up - c.c * rp_un + c.d * rn_un - c.b * rn_up
    assert uu_risk(g_up, g_un, c).item() == pytest.approx(expected, rel=1e-6)


def test_theta_one_and_zero_reduce_to_the_supervised_risk():
    torch.manual_seed(0)
    g_up, g_un = torch.randn(7), torch.randn(11)
    pi = 0.37
    c = uu_coefficients(pi, 1.0, 0.0)
    supervised = pi * sigmoid_loss(g_up, 1.0).mean() + (1 - pi) * sigmoid_loss(g_un, -1.0).mean()
    assert uu_risk(g_up, g_un, c).item() == pytest.approx(supervised.item(), rel=1e-6)
    assert uu_risk(g_up, g_un, c, robust=True).item() == pytest.approx(supervised.item(), rel=1e-6)


def test_robust_risk_flips_a_negative_partial_risk():
    # Scores that make the positive partial risk negative (over-fitting).
    c = uu_coefficients(0.5, 0.6, 0.4)
    g_up = torch.tensor([10.0, 10.0], requires_grad=True)
    g_un = torch.tensor([-10.0, -10.0], requires_grad=True)
    pos, neg = uu_partial_risks(g_up, g_un, c)
    assert pos.item() < 0
    robust = uu_risk(g_up, g_un, c, robust=True, lam=-0.001)
    assert robust.item() == pytest.approx(-0.001 * pos.item() + leaky(neg, -0.001).item(), rel=1e-6)
    assert robust.item() >= 0 or neg.item() < 0
    # The gradient through f on a negative part has the opposite sign of the plain one.
    gp_plain = torch.autograd.grad(pos, g_up, retain_graph=True)[0]
    gp_robust = torch.autograd.grad(leaky(pos, -0.001), g_up)[0]
    assert torch.all(torch.sign(gp_plain) == -torch.sign(gp_robust))


def test_coefficients_refuse_indistinguishable_sets():
    with pytest.raises(UUError, match="not distinguishable"):
        uu_coefficients(0.2, 0.3, 0.3)
    with pytest.raises(UUError, match="the robust risk needs λ < 0, got 0.1"):
        uu_risk(torch.zeros(1), torch.zeros(1), uu_coefficients(0.2, 0.9, 0.1), robust=True, lam=0.1)


def test_wilson_interval_contains_the_estimate_and_shrinks():
    lo, hi = wilson_interval(3, 10)
    assert lo < 0.3 < hi
    lo2, hi2 = wilson_interval(30, 100)
    assert hi2 - lo2 < hi - lo


def test_estimate_thetas_counts_human_labels_per_set():
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    human = {0: 1, 1: 1, 2: 0, 4: 0, 5: 0, 6: 1, 7: 0}
    est = estimate_thetas(labels, human)
    assert (est.n_p, est.pos_p, est.n_n, est.pos_n) == (3, 2, 4, 1)
    assert est.theta_p == pytest.approx(2 / 3) and est.theta_n == pytest.approx(1 / 4)
    assert est.prior == pytest.approx((2 / 3 * 4 + 1 / 4 * 6) / 10)
    assert est.interval_p[0] <= est.theta_p <= est.interval_p[1]
    assert est.labels_needed > len(human)  # 7 labels cannot separate these sets
    assert not est.separated


def test_estimate_thetas_errors_are_clear():
    with pytest.raises(UUError, match="U_p .* is empty"):
        estimate_thetas(np.zeros(5, int), {0: 0})
    with pytest.raises(UUError, match="no human-labeled item falls in U_p"):
        estimate_thetas(np.array([1, 0, 0]), {1: 0, 2: 1})


def _blobs(n=600, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    x = rng.normal(size=(n, 8)) + np.where(y[:, None] == 1, 1.5, -1.5) * np.eye(8)[0]
    flip = rng.random(n) < noise
    noisy = np.where(flip, 1 - y, y)
    human = {int(i): int(y[i]) for i in rng.choice(n, 60, replace=False)}
    return x, y, noisy, human


def test_refinement_improves_noisy_labels_and_stops_when_stable():
    x, y, noisy, human = _blobs()
    res = refine_labels(
        x, noisy, human, variant="robust", iterations=6, tol=0.01, select="last", scorer={"epochs": 100}
    )
    start_acc = (noisy == y).mean()
    assert (res.labels == y).mean() > start_acc + 0.15
    assert res.iterations[0].theta is not None and res.iterations[0].theta.theta_p > res.iterations[0].theta.theta_n
    assert res.converged and res.stopped_reason == "converged"
    assert len(res.iterations) < 6
    assert res.iterations[-1].frac_changed < 0.01
    assert all(it.labels.shape == y.shape for it in res.iterations)


def test_baselines_run_and_unknown_variant_is_rejected():
    x, y, noisy, human = _blobs(n=300)
    for variant in ("unbiased", "pn"):
        res = refine_labels(x, noisy, human, variant=variant, iterations=1, scorer={"epochs": 60})
        assert len(res.iterations) == 1 and res.variant == variant
    with pytest.raises(UUError, match="unknown variant"):
        refine_labels(x, noisy, human, variant="nope")


def test_refinement_refuses_a_useless_start():
    x, y, _, human = _blobs(n=200)
    rng = np.random.default_rng(1)
    coin = (rng.random(len(y)) < 0.5).astype(int)  # labels unrelated to the truth
    human = {i: int(y[i]) for i in range(0, 200, 2)}
    coin[list(human)] = np.tile([0, 1], 50)  # human items: the same harmful rate in both sets
    for k, i in enumerate(human):
        human[i] = int(k // 2 % 2)  # one in two harmful in each set
    with pytest.raises(UUError, match="not distinguishable"):
        refine_labels(x, coin, human)


def test_refiner_registry_has_uu_refine_and_rejects_duplicates():
    assert "uu_refine" in REFINERS
    with pytest.raises(ValueError, match="already registered"):
        refiner("uu_refine")(lambda *a: None)
    x, y, noisy, human = _blobs(n=200)
    res = get_refiner("uu_refine")(x, noisy, human, {"iterations": 1, "scorer": {"epochs": 30}}, 3)
    assert res.variant == "robust"
    with pytest.raises(ValueError, match="unknown uu_refine config"):
        get_refiner("uu_refine")(x, noisy, human, {"bogus": 1}, 0)


def test_best_human_selection_returns_the_most_agreeing_iteration():
    x, y, noisy, human = _blobs(n=300, noise=0.35, seed=2)
    res = refine_labels(x, noisy, human, iterations=3, tol=0.0, fix_prior=True, scorer={"epochs": 60})
    best = max(res.iterations, key=lambda it: (it.human_agreement, -it.iteration))
    assert np.array_equal(res.labels, best.labels)
    assert "selected iteration" in res.stopped_reason
    assert res.config["fix_prior"] is True
    coefs = [it.coefficients.prior for it in res.iterations]
    assert coefs == [coefs[0]] * len(coefs)  # π is estimated once and kept
