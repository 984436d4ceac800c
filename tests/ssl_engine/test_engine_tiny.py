"""run_round end to end on a tiny random BERT: predictions, save/load, cancellation, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ssl_engine.types import LabeledText, RoundInput, TrainControl, TrainState, UnlabeledText

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _input(toy_rows, tmp_path, backbone, algorithm, config, **kw):
    labeled, unlabeled = toy_rows
    return RoundInput(
        labeled=[LabeledText(i, t, y) for i, t, y in labeled],
        unlabeled=[UnlabeledText(i, t) for i, t in unlabeled],
        out_dir=str(tmp_path / "run"),
        algorithm=algorithm,
        config=config,
        eval_sets={"toy": [LabeledText(i, t, y) for i, t, y in labeled]},
        backbone=backbone,
        device="cpu",
        seed=0,
        **kw,
    )


@pytest.mark.parametrize("algorithm", ["multimatch", "supervised"])
def test_run_round_predicts_every_unlabeled_example_and_reloads(
    tiny_backbone, toy_rows, tmp_path, tiny_config, algorithm
):
    from ssl_engine.engine import load_scorer, run_round

    cfg = tiny_config(max_unlabeled=24, n_heads=3) if algorithm == "multimatch" else tiny_config(max_unlabeled=24)
    inp = _input(toy_rows, tmp_path, tiny_backbone, algorithm, cfg, mode="cpu-fast")
    steps = []

    class Recorder:
        def on_step_end(self, state: TrainState, control: TrainControl) -> None:
            steps.append((state.phase, state.step))

    res = run_round(inp, callbacks=[Recorder()])
    assert not res.stopped_early
    ids = [p.example_id for p in res.predictions]
    assert ids == [u.example_id for u in inp.unlabeled]  # all 40, including the 16 beyond max_unlabeled
    assert {ph for ph, _ in steps} >= {"prepare", "train", "score", "evaluate"}
    assert len(res.train_log) == sum(1 for ph, _ in steps if ph == "train")
    assert set(res.metrics) == {"toy"} and {"f1", "precision", "recall", "auprc", "accuracy", "threshold"} <= set(
        res.metrics["toy"]
    )
    n_heads = 3 if algorithm == "multimatch" else 1
    for p in res.predictions:
        assert 0.0 <= p.p_harmful <= 1.0 and len(p.head_probs) == n_heads
        assert p.review_reason
    trained = [p for p in res.predictions if p.margin_history]
    if algorithm == "multimatch":
        assert len(trained) == 24 and all(len(p.margin_history) == 2 for p in trained)
        assert all(p.agreement for p in trained) and all(p.weight in (0.0, 1.0, 3.0) for p in trained)
    # save -> load_scorer reproduces the round's scores (full forward vs cached lower layers)
    scorer = load_scorer(res.model_dir, device="cpu")
    assert scorer.meta["algorithm"] == algorithm and scorer.meta["n_heads"] == n_heads
    assert scorer.threshold == pytest.approx(res.threshold)
    scores = scorer.score([u.text for u in inp.unlabeled])
    for (p, heads), pred in zip(scores, res.predictions, strict=True):
        assert p == pytest.approx(pred.p_harmful, abs=2e-3)
        assert heads == pytest.approx(pred.head_probs, abs=2e-3)


def test_run_round_is_reproducible_under_a_seed(tiny_backbone, toy_rows, tmp_path, tiny_config):
    from ssl_engine.engine import run_round

    out = []
    for k in range(2):
        inp = _input(
            toy_rows, tmp_path / str(k), tiny_backbone, "fixmatch", tiny_config(threshold=0.6), mode="cpu-fast"
        )
        out.append([p.p_harmful for p in run_round(inp).predictions])
    assert out[0] == out[1]


@pytest.mark.parametrize("algorithm", ["freematch", "marginmatch"])
def test_run_round_full_mode_pair_inputs(tiny_backbone, toy_rows, tmp_path, tiny_config, algorithm):
    from ssl_engine.engine import run_round

    labeled, unlabeled = toy_rows
    inp = RoundInput(
        labeled=[LabeledText(i, t, y, prompt="tell me") for i, t, y in labeled],
        unlabeled=[UnlabeledText(i, t, prompt="tell me", strong_views=(t + " please",)) for i, t in unlabeled[:12]],
        out_dir=str(tmp_path / "run"),
        algorithm=algorithm,
        config=tiny_config(epochs=1, min_steps=2),
        backbone=tiny_backbone,
        device="cpu",
        mode="full",
        seed=1,
    )
    res = run_round(inp)
    assert len(res.predictions) == 12 and res.metrics == {}
    assert all(e["loss"] == e["loss"] for e in res.train_log)


def test_cancellation_stops_cleanly(tiny_backbone, toy_rows, tmp_path, tiny_config):
    from ssl_engine.engine import run_round

    class StopAtStep2:
        def on_step_end(self, state, control):
            if state.phase == "train" and state.step >= 2:
                control.should_stop = True

    res = run_round(
        _input(toy_rows, tmp_path, tiny_backbone, "fixmatch", tiny_config(min_steps=50), mode="cpu-fast"),
        callbacks=[StopAtStep2()],
    )
    assert res.stopped_early and res.predictions == [] and res.model_dir == ""

    class StopInPrepare:
        def on_step_end(self, state, control):
            control.should_stop = True

    res = run_round(
        _input(toy_rows, tmp_path, tiny_backbone, "fixmatch", tiny_config(), mode="cpu-fast"),
        callbacks=[StopInPrepare()],
    )
    assert res.stopped_early


def test_run_round_rejects_bad_input(tiny_backbone, toy_rows, tmp_path, tiny_config):
    from ssl_engine.engine import run_round

    with pytest.raises(ValueError, match="thresold"):
        run_round(_input(toy_rows, tmp_path, tiny_backbone, "fixmatch", {"thresold": 0.9}))
    labeled, unlabeled = toy_rows
    inp = RoundInput(
        labeled=[LabeledText(i, t, 0) for i, t, _ in labeled],
        unlabeled=[],
        out_dir=str(tmp_path),
        algorithm="supervised",
        backbone=tiny_backbone,
    )
    with pytest.raises(ValueError, match="harmful"):
        run_round(inp)


class _Result:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def _cli(*args):
    """Run the CLI in-process (same code path as ``python -m ssl_engine``), capturing stderr."""
    import contextlib
    import io

    from ssl_engine.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return _Result(code, err.getvalue())


def _cli_subprocess(*args):
    env = {**os.environ, "PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ssl_engine", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_cli_bad_input_messages(tmp_path):
    r = _cli("train", "--train", str(tmp_path / "missing.jsonl"), "--labeled", "20", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "text": "a", "label": "harmful"}\n{"id": 2, "text": \n')
    r = _cli("train", "--train", str(bad), "--labeled", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "bad.jsonl:2" in r.stderr and "Traceback" not in r.stderr
    rows = [{"id": i, "text": f"text {i}", "label": "harmful" if i < 10 else "unharmful"} for i in range(30)]
    small = _write(tmp_path / "small.jsonl", rows)
    r = _cli("train", "--train", small, "--labeled", "50", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "only 30" in r.stderr
    one_class = _write(tmp_path / "one.jsonl", [dict(r, label="unharmful") for r in rows])
    r = _cli("train", "--train", one_class, "--labeled", "20", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "'harmful'" in r.stderr and "Traceback" not in r.stderr
    r = _cli(
        "train", "--train", small, "--labeled", "20", "--out", str(tmp_path / "o"), "--config", '{"batch_sise": 4}'
    )
    assert r.returncode == 2 and "batch_sise" in r.stderr
    wrong = _write(tmp_path / "wrong.jsonl", [{"id": 1, "text": "x", "label": "toxic"}])
    r = _cli("train", "--train", wrong, "--labeled", "1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "wrong.jsonl:1" in r.stderr
    r = _cli("predict", "--model", str(tmp_path), "--input", small, "--out", str(tmp_path / "p.jsonl"))
    assert r.returncode == 2 and "not a saved model" in r.stderr


def test_cli_train_then_predict(tiny_backbone, tmp_path):
    harmful = ["how to make a bomb", "kill people with a gun", "steal a weapon", "hack and attack people"]
    benign = ["write a story about cats", "hello what is the weather", "explain python code", "a poem about dogs"]
    rows = [
        {"id": f"r{i}", "text": t, "prompt": None, "label": lab}
        for i, (t, lab) in enumerate([(t, "harmful") for t in harmful * 3] + [(t, "unharmful") for t in benign * 4])
    ]
    train = _write(tmp_path / "train.jsonl", rows)
    out = tmp_path / "run"
    cfg = json.dumps(
        {
            "epochs": 1,
            "min_steps": 2,
            "batch_size": 4,
            "max_length": 16,
            "head_hidden": 8,
            "trainable_layers": 1,
            "val_fraction": 0.0,
        }
    )
    r = _cli(
        "train",
        "--train",
        train,
        "--labeled",
        "12",
        "--seed",
        "0",
        "--algorithm",
        "fixmatch",
        "--backbone",
        tiny_backbone,
        "--mode",
        "cpu-fast",
        "--eval",
        f"toy={train}",
        "--out",
        str(out),
        "--config",
        cfg,
    )
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"eval", "algorithm", "labeled", "seed", "train_seconds"} <= set(metrics)
    assert metrics["labeled"] == 12 and "f1" in metrics["eval"]["toy"]
    preds = tmp_path / "preds.jsonl"
    r = _cli_subprocess("predict", "--model", str(out / "model"), "--input", train, "--out", str(preds))
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in preds.read_text().splitlines()]
    assert [x["id"] for x in lines] == [r["id"] for r in rows]
    assert all(x["label"] in ("harmful", "unharmful") and 0 <= x["p_harmful"] <= 1 for x in lines)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("UMBRA_RUN_SLOW"), reason="set UMBRA_RUN_SLOW=1 for the real MiniLM test")
def test_real_minilm_round_small(tmp_path):
    from ssl_engine.engine import run_round

    harmful = ["how do I build a pipe bomb", "best way to poison my neighbour", "write malware that steals passwords"]
    benign = ["what is the capital of France", "write a haiku about autumn", "explain recursion in python"]
    inp = RoundInput(
        labeled=[LabeledText(f"h{i}", t, 1) for i, t in enumerate(harmful)]
        + [LabeledText(f"b{i}", t, 0) for i, t in enumerate(benign)],
        unlabeled=[UnlabeledText(f"u{i}", t) for i, t in enumerate(harmful + benign)],
        out_dir=str(tmp_path),
        algorithm="multimatch",
        config={"epochs": 2, "min_steps": 4, "batch_size": 4, "val_fraction": 0.0},
    )
    res = run_round(inp)
    assert len(res.predictions) == 6


def test_ssl_algorithm_without_unlabeled_pool_trains_supervised(tiny_backbone, toy_rows, tmp_path, tiny_config):
    from ssl_engine.engine import run_round

    labeled, _ = toy_rows
    inp = RoundInput(
        labeled=[LabeledText(i, t, y) for i, t, y in labeled],
        unlabeled=[],
        out_dir=str(tmp_path),
        algorithm="multimatch",
        config=tiny_config(),
        backbone=tiny_backbone,
        device="cpu",
    )
    res = run_round(inp)
    assert res.predictions == [] and res.train_log and res.threshold == 0.5


def test_weighted_labels_train_but_are_refused_outside_0_1(tiny_backbone, toy_rows, tmp_path, tiny_config):
    from ssl_engine.engine import run_round

    labeled, unlabeled = toy_rows
    rows = [LabeledText(i, t, y, weight=1.0 if k % 2 else 0.3) for k, (i, t, y) in enumerate(labeled)]
    inp = RoundInput(
        labeled=rows,
        unlabeled=[UnlabeledText(i, t) for i, t in unlabeled],
        out_dir=str(tmp_path / "w"),
        algorithm="supervised",
        config=tiny_config(),
        backbone=tiny_backbone,
        device="cpu",
        seed=0,
    )
    res = run_round(inp)
    assert len(res.predictions) == len(unlabeled) and res.train_log
    bad = [LabeledText(i, t, y, weight=0.0) for i, t, y in labeled]
    with pytest.raises(ValueError, match="weights must be in"):
        run_round(
            RoundInput(
                labeled=bad,
                unlabeled=[],
                out_dir=str(tmp_path / "b"),
                algorithm="supervised",
                config=tiny_config(),
                backbone=tiny_backbone,
                device="cpu",
            )
        )


def test_withheld_labels_measure_pseudo_label_precision_and_never_change_training(
    tiny_backbone, toy_rows, tmp_path, tiny_config
):
    from ssl_engine.engine import run_round
    from ssl_engine.types import PseudoLabelStats

    harmful_words = ("bomb", "kill", "steal", "hack", "hurt", "drug", "gun", "attack")
    cfg = tiny_config(epochs=3, max_unlabeled=40, min_steps=0)
    plain = run_round(_input(toy_rows, tmp_path / "a", tiny_backbone, "fixmatch", {**cfg, "threshold": 0.5}))
    labeled, unlabeled = toy_rows
    probed = RoundInput(
        labeled=[LabeledText(i, t, y) for i, t, y in labeled],
        unlabeled=[UnlabeledText(i, t, hidden_label=int(any(w in t for w in harmful_words))) for i, t in unlabeled],
        out_dir=str(tmp_path / "b"),
        algorithm="fixmatch",
        config={**cfg, "threshold": 0.5},
        backbone=tiny_backbone,
        device="cpu",
        seed=0,
    )
    checked = run_round(probed)
    assert [p.p_harmful for p in checked.predictions] == [p.p_harmful for p in plain.predictions]
    stats = checked.pseudo_labels
    assert all(isinstance(s, PseudoLabelStats) for s in stats)
    assert [(s.epoch, s.label) for s in stats] == [(e, lab) for e in (1, 2, 3) for lab in ("unharmful", "harmful")]
    for s in stats:
        assert s.used <= s.drawn and s.checked == s.used and 0 <= s.correct <= s.checked
        assert (s.precision is None) == (s.checked == 0)
    assert sum(s.drawn for s in stats if s.epoch == 1) == 40  # a full pass over the pool per epoch
    assert all(s.checked == 0 for s in plain.pseudo_labels)


def test_token_mask_hides_a_fresh_share_of_tokens_but_never_the_first():
    import torch

    from ssl_engine.trainer import token_mask

    gen = torch.Generator().manual_seed(0)
    mask = torch.ones(64, 50, dtype=torch.long)
    a, b = token_mask(mask, 0.3, gen), token_mask(mask, 0.3, gen)
    assert (a[:, 0] == 1).all() and (b[:, 0] == 1).all()
    assert abs(float(a[:, 1:].float().mean()) - 0.7) < 0.05
    assert not torch.equal(a, b)  # drawn afresh at every use
    padded = torch.zeros(2, 5, dtype=torch.long)
    padded[:, :2] = 1
    assert (token_mask(padded, 0.5, gen)[:, 2:] == 0).all()  # padding stays hidden


def test_weight_averaging_teaches_and_becomes_the_round_model(tiny_backbone, toy_rows, tmp_path, tiny_config):
    from ssl_engine.engine import load_scorer, run_round
    from ssl_engine.trainer import Trainer

    seen_teachers = []
    real_ema = Trainer._ema

    def spy(self, model):
        ema = real_ema(self, model)
        seen_teachers.append(self.algo.teacher is not None and self.algo.teacher is not model)
        return ema

    Trainer._ema = spy
    try:
        plain = run_round(
            _input(toy_rows, tmp_path / "p", tiny_backbone, "fixmatch", tiny_config(max_unlabeled=24, ema_decay=0.0))
        )
        averaged = run_round(
            _input(toy_rows, tmp_path / "a", tiny_backbone, "fixmatch", tiny_config(max_unlabeled=24, ema_decay=0.9))
        )
    finally:
        Trainer._ema = real_ema
    assert seen_teachers == [False, True]  # off: the student; on: the average (not the student) teaches
    assert [p.p_harmful for p in plain.predictions] != [p.p_harmful for p in averaged.predictions]
    scorer = load_scorer(averaged.model_dir, device="cpu")  # the saved model is the averaged one
    texts = [u for _, u in toy_rows[1]][:4]
    saved = [s for s, _ in scorer.score(texts)]
    by_text = {t: p.p_harmful for (_, t), p in zip(toy_rows[1], averaged.predictions, strict=True)}
    assert saved == pytest.approx([by_text[t] for t in texts], abs=2e-2)


def test_calibration_share_of_the_pool_never_trains_but_sets_the_threshold(
    tiny_backbone, toy_rows, tmp_path, tiny_config
):
    import numpy as np

    from ssl_engine.engine import run_round

    cfg = tiny_config(calibration_holdout=0.25, min_calibration_pool=10, threshold_strategy="prior_match")
    res = run_round(_input(toy_rows, tmp_path, tiny_backbone, "fixmatch", cfg))
    held = [p for p in res.predictions if not p.margin_history]
    assert len(held) == 10 and not any(p.used for p in held)
    scores = np.array([p.p_harmful for p in held])
    labeled = toy_rows[0]
    prior = sum(y for _, _, y in labeled) / len(labeled)
    assert abs((scores >= res.threshold).mean() - prior) <= 0.15  # the quantile is read on the held-out ten
