"""Issue 16: the int8 serving runtime (dynamic int8 Linear layers) scores like fp32 on a tiny random model."""

from __future__ import annotations

import pytest

from ssl_engine.settings import EngineSettings


@pytest.fixture(scope="module")
def saved_tiny_model(tiny_backbone, tmp_path_factory) -> str:
    """A tiny random BERT with two heads, saved in the serving format without training."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from ssl_engine.model import SafetyModel, save_model

    torch.manual_seed(0)
    model = SafetyModel(
        AutoModel.from_pretrained(tiny_backbone, add_pooling_layer=False),
        n_heads=2,
        n_out=2,
        head_hidden=16,
        dropout=0.0,
    )
    meta = {
        "format": "umbra-ssl-model/1",
        "label_names": ["unharmful", "harmful"],
        "positive_index": 1,
        "threshold": 0.5,
        "algorithm": "multimatch",
        "n_heads": 2,
        "head_hidden": 16,
        "max_length": 32,
        "seed": 0,
        "backbone": "tiny",
    }
    return save_model(
        model, AutoTokenizer.from_pretrained(tiny_backbone), str(tmp_path_factory.mktemp("m") / "model"), meta, 2
    )


def test_int8_quantizes_the_encoder_and_scores_close_to_fp32(saved_tiny_model, toy_texts):
    import torch

    from ssl_engine.engine import load_scorer

    texts = [*toy_texts[0], *toy_texts[1]]
    fp32 = load_scorer(saved_tiny_model, device="cpu", runtime="fp32")
    int8 = load_scorer(saved_tiny_model, device="cpu", runtime="int8")
    assert int8.runtime == "int8" and int8.threshold == fp32.threshold
    linear = [m for m in int8.model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    quantized = [m for m in int8.model.encoder.modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    assert not linear and len(quantized) == 12  # 2 layers × (q, k, v, attention out, FFN in, FFN out)
    a = [p for p, _ in fp32.score(texts)]
    b = [p for p, _ in int8.score(texts)]
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 0.02


def test_the_runtime_comes_from_the_deployment_settings(saved_tiny_model):
    from ssl_engine.engine import load_scorer

    settings = EngineSettings.from_env({"UMBRA_SCORER_RUNTIME": "int8"})
    assert settings.scorer_runtime == "int8"
    assert load_scorer(saved_tiny_model, device="cpu", settings=settings).runtime == "int8"
    assert EngineSettings.from_env({}).scorer_runtime == "fp32"


def test_an_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="unknown scorer runtime 'fp16'"):
        EngineSettings(scorer_runtime="fp16")
