"""Text tables (token ids or cached lower-layer states), dynamic padding, length bucketing.

Data code is generic: it builds one table per *view* an algorithm declares and never
looks at algorithm names.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ssl_engine.model import SafetyModel, tokenize


def text_key(text: str, prompt: str | None) -> str:
    h = hashlib.sha1()
    h.update((prompt or "").encode("utf-8"))
    h.update(b"\x00\x01")
    h.update(text.encode("utf-8"))
    return h.hexdigest()


def backbone_fingerprint(backbone: str) -> str:
    """Stable id of a backbone: the HF id, or for a local dir its config + weight sizes."""
    parts = [backbone]
    if os.path.isdir(backbone):
        for name in sorted(os.listdir(backbone)):
            path = os.path.join(backbone, name)
            if name == "config.json":
                with open(path, "rb") as f:
                    parts.append(hashlib.sha1(f.read()).hexdigest())
            elif name.endswith((".safetensors", ".bin")):
                parts.append(f"{name}:{os.path.getsize(path)}:{int(os.path.getmtime(path))}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:16]


class StateCache:
    """On-disk cache of lower-layer hidden states keyed by (backbone, text hash, layer, max_length).

    Each write is one immutable shard (``<uuid>.pt`` plus ``<uuid>.keys.json``), so several
    processes can share a cache directory; shards are memory-mapped on read.
    """

    def __init__(self, root: str, backbone: str, layer: int, max_length: int) -> None:
        self.dir = os.path.join(root, f"{backbone_fingerprint(backbone)}_L{layer}_M{max_length}")
        os.makedirs(self.dir, exist_ok=True)
        self._index: dict[str, tuple[str, int]] = {}
        self._shards: dict[str, tuple[torch.Tensor, list[int]]] = {}
        self._seen_files: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        for name in os.listdir(self.dir):
            if not name.endswith(".keys.json") or name in self._seen_files:
                continue
            try:
                with open(os.path.join(self.dir, name)) as f:
                    keys = json.load(f)
            except (OSError, ValueError):
                continue
            shard = name[: -len(".keys.json")]
            for i, k in enumerate(keys):
                self._index.setdefault(k, (shard, i))
            self._seen_files.add(name)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def get(self, key: str) -> torch.Tensor:
        shard, i = self._index[key]
        if shard not in self._shards:
            obj = torch.load(os.path.join(self.dir, shard + ".pt"), mmap=True, weights_only=True)
            offsets = obj["offsets"].tolist()
            self._shards[shard] = (obj["data"], offsets)
        data, offsets = self._shards[shard]
        return data[offsets[i] : offsets[i + 1]]

    def put_many(self, keys: list[str], states: list[torch.Tensor]) -> None:
        if not keys:
            return
        shard = uuid.uuid4().hex
        lengths = [s.shape[0] for s in states]
        offsets = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.long)
        data = torch.cat([s.to(torch.float16).cpu() for s in states])
        tmp = os.path.join(self.dir, f".{shard}.tmp")
        torch.save({"data": data, "offsets": offsets}, tmp)
        os.replace(tmp, os.path.join(self.dir, shard + ".pt"))
        tmpk = os.path.join(self.dir, f".{shard}.keys.tmp")
        with open(tmpk, "w") as f:
            json.dump(keys, f)
        os.replace(tmpk, os.path.join(self.dir, shard + ".keys.json"))
        self._seen_files.add(shard + ".keys.json")
        for i, k in enumerate(keys):
            self._index.setdefault(k, (shard, i))


class TextTable:
    """One view of a list of texts, ready to be collated into padded batches."""

    def __init__(self, items: list[dict[str, torch.Tensor]]) -> None:
        self.items = items
        self.lengths = np.array([len(it["attention_mask"]) for it in items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.items)

    def collate(self, idx: Sequence[int], device: str | torch.device) -> dict[str, torch.Tensor]:
        rows = [self.items[i] for i in idx]
        max_len = max(len(r["attention_mask"]) for r in rows)
        out: dict[str, torch.Tensor] = {}
        for key in rows[0]:
            first = rows[0][key]
            shape = (len(rows), max_len, *first.shape[1:])
            buf = torch.zeros(shape, dtype=first.dtype)
            for j, r in enumerate(rows):
                buf[j, : len(r[key])] = r[key]
            out[key] = buf.to(device, non_blocking=True)
        return out


def tokenized_items(tokenizer, texts: Sequence[str], prompts: Sequence[str | None] | None, max_length: int):
    enc = tokenize(tokenizer, texts, prompts, max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return [{k: torch.tensor(enc[k][i], dtype=torch.long) for k in keys} for i in range(len(texts))]


def build_table(
    texts: Sequence[str],
    prompts: Sequence[str | None] | None,
    *,
    tokenizer,
    max_length: int,
    model: SafetyModel | None = None,
    cache: StateCache | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    progress: Callable[[int, int], bool] | None = None,
    bf16: bool = False,
) -> TextTable | None:
    """Token-id table, or (with ``model`` and ``cache``) a table of cached lower-layer states.

    ``progress(done, total)`` is called between batches; returning True cancels (-> None).
    """
    prompts = list(prompts) if prompts is not None else [None] * len(texts)
    tok_items = tokenized_items(tokenizer, texts, prompts, max_length)
    if model is None or cache is None:
        return TextTable(tok_items)
    keys = [text_key(t, p) for t, p in zip(texts, prompts, strict=True)]
    missing = sorted(
        {k: i for i, k in enumerate(keys) if k not in cache}.values(), key=lambda i: len(tok_items[i]["input_ids"])
    )
    total = len(missing)
    table_for_missing = TextTable([tok_items[i] for i in missing])
    model.eval()
    done = 0
    pending_k: list[str] = []
    pending_s: list[torch.Tensor] = []
    from ssl_engine.model import autocast

    with torch.inference_mode(), autocast(device, bf16):
        for start in range(0, total, batch_size):
            sel = list(range(start, min(total, start + batch_size)))
            batch = table_for_missing.collate(sel, device)
            if model.pools_in_cache:
                states = model.lower_pooled(batch).float().cpu()[:, None]
            else:
                states = model.lower_states(batch).float().cpu()
            for j, s in enumerate(sel):
                n = 1 if model.pools_in_cache else int(batch["attention_mask"][j].sum())
                pending_k.append(keys[missing[s]])
                pending_s.append(states[j, :n].clone())
            done += len(sel)
            if sum(x.shape[0] for x in pending_s) > 200_000:
                cache.put_many(pending_k, pending_s)
                pending_k, pending_s = [], []
            if progress is not None and progress(done, total):
                cache.put_many(pending_k, pending_s)
                return None
    cache.put_many(pending_k, pending_s)
    items = []
    name = "pooled" if model.pools_in_cache else "hidden"
    for k in keys:
        hid = cache.get(k)
        items.append({name: hid, "attention_mask": torch.ones(hid.shape[0], dtype=torch.long)})
    return TextTable(items)


def bucketed_batches(
    lengths: np.ndarray, idx: np.ndarray, batch_size: int, rng: np.random.Generator, chunk: int = 50
) -> list[np.ndarray]:
    """Shuffle, sort by length within chunks of ``chunk`` batches, shuffle the batches."""
    idx = idx[rng.permutation(len(idx))]
    batches = []
    span = batch_size * chunk
    for s in range(0, len(idx), span):
        part = idx[s : s + span]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]
