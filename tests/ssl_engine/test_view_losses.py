"""Precomputed strong views (reviewed augmentations): every view trains, and its loss is tracked and flagged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ssl_engine.augment.curation import view_loss_report
from ssl_engine.types import LabeledText, RoundInput, UnlabeledText


def test_view_loss_report_flags_against_the_whole_population():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.05, 0.4, size=(50, 4))  # the round's other examples
    views = np.array(
        [
            [1.0, 2.0, 2.2, 2.5],  # stays high: flagged
            [1.0, 0.2, 0.1, 0.1],  # learned: not flagged
            [np.nan, np.nan, np.nan, np.nan],  # never drawn: not flagged, mean NaN
            [1.0, np.nan, 3.0, np.nan],  # drawn once after warm-up, high then: flagged
        ]
    )
    ids = [("a", 0), ("a", 1), ("b", 0), ("c", 2)]
    out = view_loss_report(ids, views, reference, labeled=False, quantile=0.9, min_fraction=0.75, warmup_epochs=1)
    assert [(v.example_id, v.view_index) for v in out] == ids
    assert [v.flagged for v in out] == [True, False, False, True]
    assert out[0].reason.startswith("high_loss") and out[1].reason == "" and math.isnan(out[2].mean_loss)
    assert out[0].mean_loss == pytest.approx(np.mean([1.0, 2.0, 2.2, 2.5]))
    assert math.isnan(out[2].losses[0]) and len(out[0].losses) == 4 and not out[0].labeled
    assert view_loss_report([], np.zeros((0, 4)), reference, labeled=True) == []


def test_every_precomputed_view_of_an_unlabeled_item_trains(tiny_backbone, toy_rows, tmp_path, tiny_config):
    from ssl_engine.engine import run_round

    labeled, unlabeled = toy_rows
    with_views = {"u3": 3, "u17": 3, "u30": 1}  # three views for two items: one beyond n_strong_views=2
    unl = [
        UnlabeledText(i, t, strong_views=tuple(f"{t} view {k}" for k in range(with_views.get(i, 0))))
        for i, t in unlabeled
    ]
    inp = RoundInput(
        labeled=[LabeledText(i, t, y) for i, t, y in labeled],
        unlabeled=unl,
        out_dir=str(tmp_path / "run"),
        algorithm="fixmatch",
        config=tiny_config(epochs=15, max_unlabeled=12, min_steps=0, n_strong_views=2),
        backbone=tiny_backbone,
        device="cpu",
        mode="cpu-fast",
        seed=0,
    )
    res = run_round(inp)
    assert {(v.example_id, v.view_index) for v in res.view_losses} == {
        ("u3", 0),
        ("u3", 1),
        ("u3", 2),
        ("u17", 0),
        ("u17", 1),
        ("u17", 2),
        ("u30", 0),
    }
    # items with views always join the 12-item training subsample; every epoch is a full pass over it
    preds = {p.example_id: p for p in res.predictions}
    assert all(preds[i].margin_history for i in with_views)
    assert sum(1 for p in res.predictions if p.margin_history) == 12
    for v in res.view_losses:
        assert not v.labeled and len(v.losses) == 15
        # drawn every epoch, rotating through the item's views: 15 draws over 3 views = 5 each
        assert sum(not math.isnan(x) for x in v.losses) == 15 // with_views[v.example_id]
        assert all(x >= 0 for x in v.losses if not math.isnan(x))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_labeled_copy_that_contradicts_its_label_is_flagged(
    tiny_backbone, toy_rows, toy_texts, tmp_path, tiny_config, seed
):
    from ssl_engine.engine import run_round

    harmful, benign = toy_texts
    labeled, _ = toy_rows
    lab = [LabeledText(i, t, y) for i, t, y in labeled]
    # "how to make a bomb" (harmful) with a faithful variant and one that is a benign labeled text verbatim:
    # the copy contradicts a human label, so the model cannot fit both and its loss stays high
    lab[0] = LabeledText("l0", harmful[0], 1, strong_views=(harmful[0] + " please", benign[0]))
    inp = RoundInput(
        labeled=lab,
        unlabeled=[],
        out_dir=str(tmp_path / "run"),
        algorithm="supervised",
        config=tiny_config(
            epochs=20, min_steps=0, lr=3e-3, head_lr=1e-2, loss_flag_warmup_epochs=2, loss_flag_min_fraction=0.5
        ),
        backbone=tiny_backbone,
        device="cpu",
        mode="cpu-fast",
        seed=seed,
    )
    res = run_round(inp)
    assert [(v.example_id, v.view_index, v.labeled) for v in res.view_losses] == [("l0", 0, True), ("l0", 1, True)]
    faithful, contradicting = res.view_losses
    assert contradicting.flagged and contradicting.reason.startswith("high_loss")
    assert not faithful.flagged and faithful.reason == ""
    assert contradicting.mean_loss > 2 * faithful.mean_loss
    assert len(faithful.losses) == 20
    # the copies trained: meta counts them apart from the human labels
    import json
    import os

    with open(os.path.join(res.model_dir, "umbra_model.json")) as f:
        meta = json.load(f)
    assert meta["counts"]["labeled_train"] == len(lab) and meta["counts"]["labeled_view_copies"] == 2
    # switched off, the copies neither train nor get a report
    res_off = run_round(
        RoundInput(
            **{**inp.__dict__, "out_dir": str(tmp_path / "off"), "config": {**inp.config, "labeled_views": False}}
        )
    )
    assert res_off.view_losses == []
