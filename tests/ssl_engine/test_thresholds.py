"""Each decision-threshold strategy on hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_engine.thresholds import THRESHOLD_STRATEGY_NAMES, ThresholdInputs, choose_threshold, f1_best_threshold


def test_fixed_returns_the_configured_value():
    choice = choose_threshold("fixed", ThresholdInputs(pool_scores=np.array([0.1, 0.9]), prior=0.5, fixed=0.3))
    assert choice.threshold == 0.3 and choice.strategy == "fixed"


def test_val_f1_picks_the_cut_that_separates_the_validation_split():
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9])
    labels = np.array([0, 0, 0, 1, 1, 1])
    choice = choose_threshold(
        "val_f1", ThresholdInputs(pool_scores=np.zeros(0), prior=0.5, val_scores=scores, val_labels=labels)
    )
    assert 0.3 < choice.threshold <= 0.6 and choice.strategy == "val_f1"


def test_val_f1_refuses_without_a_validation_split():
    with pytest.raises(ValueError, match="needs a labeled validation split"):
        choose_threshold("val_f1", ThresholdInputs(pool_scores=np.array([0.5]), prior=0.5))


def test_f1_best_threshold_breaks_ties_towards_one_half():
    # every cut between 0.2 and 0.8 is perfect; the one nearest 0.5 wins
    assert f1_best_threshold(np.array([0, 1]), np.array([0.2, 0.8])) == pytest.approx(0.5)


def test_prior_match_flags_the_labeled_share_of_the_pool():
    pool = np.linspace(0.0, 1.0, 101)
    choice = choose_threshold("prior_match", ThresholdInputs(pool_scores=pool, prior=0.2))
    assert (pool >= choice.threshold).mean() == pytest.approx(0.2, abs=0.011)
    assert "20.0%" in choice.note or "19.8%" in choice.note or "20.8%" in choice.note


def test_prior_match_on_saturated_scores_stays_a_real_score_boundary():
    # 70 items tied at 1e-9 and 30 at 1 - 1e-9: the closest achievable share to 13 % is 30 %
    pool = np.array([1e-9] * 70 + [1 - 1e-9] * 30)
    choice = choose_threshold("prior_match", ThresholdInputs(pool_scores=pool, prior=0.13))
    assert choice.threshold == pytest.approx(1 - 1e-9)
    assert (pool >= choice.threshold).mean() == pytest.approx(0.3)


def test_auto_uses_validation_when_present_else_the_prior():
    pool = np.linspace(0, 1, 11)
    with_val = ThresholdInputs(
        pool_scores=pool, prior=0.1, val_scores=np.array([0.2, 0.8]), val_labels=np.array([0, 1])
    )
    assert choose_threshold("auto", with_val).strategy == "val_f1"
    assert choose_threshold("auto", ThresholdInputs(pool_scores=pool, prior=0.1)).strategy == "prior_match"
    assert choose_threshold("auto", ThresholdInputs(pool_scores=np.zeros(0), prior=0.1)).strategy == "fixed"


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(ValueError, match="known"):
        choose_threshold("magic", ThresholdInputs(pool_scores=np.zeros(1), prior=0.1))
    assert {"fixed", "val_f1", "prior_match"} <= set(THRESHOLD_STRATEGY_NAMES)


def test_expected_f1_flags_more_than_the_prior_when_scores_are_spread_and_the_prior_high():
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.2, 0.9, 2000)  # many undecided items on a 58 %-harmful pool
    choice = choose_threshold("expected_f1", ThresholdInputs(pool_scores=spread, prior=0.58))
    assert (spread >= choice.threshold).mean() > 0.7


def test_expected_f1_stays_near_the_prior_when_scores_are_sharp():
    sharp = np.array([0.01] * 870 + [0.99] * 130)
    choice = choose_threshold("expected_f1", ThresholdInputs(pool_scores=sharp, prior=0.13))
    assert (sharp >= choice.threshold).mean() == pytest.approx(0.13)


def test_calibration_in_the_large_matches_the_prior():
    from ssl_engine.thresholds import calibrate_in_the_large

    q = calibrate_in_the_large(np.linspace(0.05, 0.95, 101), 0.2)
    assert q.mean() == pytest.approx(0.2, abs=1e-4) and np.all(np.diff(q) > 0)
