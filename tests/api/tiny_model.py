"""A tiny random model in the engine's serving format, built from a config (no download)."""

from __future__ import annotations


def build_tiny_model(out_dir: str, *, threshold: float = 0.5, seed: int = 0) -> str:
    """A 2-layer random BERT with two heads, saved in the engine's serving format (no download)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ssl_engine.model import SafetyModel, default_backbone, save_model

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(default_backbone())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    model = SafetyModel(BertModel(config, add_pooling_layer=False), n_heads=2, n_out=2, head_hidden=16, dropout=0.0)
    meta = {"format": "umbra-ssl-model/1", "label_names": ["unharmful", "harmful"], "positive_index": 1,
            "threshold": threshold, "algorithm": "multimatch", "n_heads": 2, "head_hidden": 16, "max_length": 64,
            "seed": seed, "backbone": "tiny-random-bert"}
    return save_model(model, tokenizer, out_dir, meta, 2)
