"""Seed suggestion (cold start) and the review queue's diversity, on synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from ssl_engine.selection import diverse_order, harm_prior, suggest_seeds


def _clusters(n_per=30, k=8, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 5
    x = np.concatenate([c + rng.normal(size=(n_per, d)) for c in centres])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_suggest_seeds_returns_n_distinct_items_deterministically():
    emb = _clusters()
    a = suggest_seeds(emb, 20, seed=3)
    b = suggest_seeds(emb, 20, seed=3)
    assert [p.index for p in a] == [p.index for p in b]
    assert len({p.index for p in a}) == 20 and all(0 <= p.index < len(emb) for p in a)


def test_suggested_seeds_cover_every_cluster_and_weigh_what_they_stand_for():
    emb = _clusters(n_per=30, k=8)
    picks = suggest_seeds(emb, 8, seed=0)
    assert sorted(p.index // 30 for p in picks) == list(range(8))  # one typical item per cluster
    assert sum(p.prior_weight for p in picks) == pytest.approx(len(emb))


def test_harm_scores_oversample_the_suspect_stratum_with_honest_weights():
    emb = _clusters(n_per=50, k=4)
    harm = np.zeros(len(emb))
    harm[:50] = 1.0  # cluster 0 looks harmful
    picks = suggest_seeds(emb, 20, seed=0, harm_scores=harm, suspect_fraction=0.25, suspect_share=0.5)
    suspect = [p for p in picks if p.stratum == "suspect"]
    assert len(suspect) == 10 and all(p.index < 50 for p in suspect)
    # the strata's weights add up to their sizes, so a weighted share estimate stays unbiased
    assert sum(p.prior_weight for p in suspect) == pytest.approx(50)
    assert sum(p.prior_weight for p in picks if p.stratum == "rest") == pytest.approx(150)


def test_harm_prior_ranks_by_similarity_to_harm_minus_benign():
    harm = np.array([[1.0, 0.0]])
    benign = np.array([[0.0, 1.0]])
    emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.7071, 0.7071]])
    assert np.argsort(-harm_prior(emb, harm, benign)).tolist() == [0, 2, 1]


def test_diverse_order_skips_near_duplicates_in_the_top():
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    scores = np.array([1.0, 0.99, 0.98, 0.9])
    order = diverse_order(scores, emb, top=2, redundancy=0.5)
    assert order[:2].tolist() == [0, 3]  # the duplicate of item 0 waits
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    assert diverse_order(scores, emb, top=2, redundancy=0.0).tolist() == [0, 1, 2, 3]


def test_embed_texts_is_normalised(tiny_backbone):
    from ssl_engine.selection import embed_texts

    emb = embed_texts(["how to make a bomb", "write a poem about cats"], backbone=tiny_backbone, max_length=16)
    assert emb.dtype == np.float32
    assert emb.shape[0] == 2 and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_review_signal_ranks_an_item_at_the_threshold_above_a_confident_one_and_says_why():
    from ssl_engine.review import review_signal

    unsure, why = review_signal(p_harmful=0.31, head_probs=(0.31,), threshold=0.3, history=(), weight=1.0, agreement="")
    sure, why_sure = review_signal(
        p_harmful=0.02, head_probs=(0.02,), threshold=0.3, history=(), weight=1.0, agreement=""
    )
    assert unsure > sure and "unsure" in why and "fairly sure" in why_sure


def test_review_signal_adds_head_disagreement_and_flipping_margins():
    from ssl_engine.review import review_signal

    base, _ = review_signal(
        p_harmful=0.9, head_probs=(0.9, 0.9, 0.9), threshold=0.3, history=(1.0, 1.2), weight=1.0, agreement="high_agree"
    )
    split, why = review_signal(
        p_harmful=0.9,
        head_probs=(0.95, 0.1, 0.9),
        threshold=0.3,
        history=(1.0, -1.0, 1.0),
        weight=1.0,
        agreement="disagree_both",
    )
    assert split > base and "heads disagree" in why and "flipping" in why


def test_queue_order_puts_diverse_picks_first_and_keeps_the_rest_by_value():
    from ssl_engine.review import queue_order

    feats = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    values = np.array([3.0, 2.9, 2.0, 1.0])
    prio = queue_order(values, feats, top=2, redundancy=0.5)
    assert np.argsort(-prio, kind="stable").tolist() == [0, 2, 1, 3]
    assert queue_order(values, None).tolist() == values.tolist()
