"""Peer methods for the label-efficiency benchmark, on the same draws and the same MiniLM body.

- ``lr_probe``: frozen encoder (mean-pooled, L2-normalised sentence embeddings, 256 tokens) +
  class-balanced logistic regression (scikit-learn).
- ``setfit``: SetFit (``make bench-install``) with the same MiniLM body: contrastive pairs, 1 epoch,
  batch 16, 256 tokens, a class-balanced logistic-regression head. ``SETFIT_ITERATIONS`` pair
  iterations per example (the SetFit paper used 20; 5 here, 2,000 pairs for 200 labels, because
  one 20-iteration run took ~1 h 50 min on the shared CPU: padding every pair batch to its
  longest text makes SetFit's fp32 steps 5-10x dearer than the engine's bucketed bf16 ones).

Both choose their decision threshold with the rule Umbra uses at this label count when no
validation split can be carved (``prior_match``: flag the labeled harmful share of the
unlabeled pool), so the comparison is of the scores, not of threshold luck.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence

import numpy as np

from ssl_engine.metrics import binary_metrics
from ssl_engine.thresholds import ThresholdInputs, choose_threshold

_EMB_CACHE: dict[str, np.ndarray] = {}
SETFIT_ITERATIONS = 5


def joined(rows: Sequence[dict]) -> list[str]:
    """The text of each row, its prompt first for the response task (as curation embeds them)."""
    return [f"{r['prompt']}\n\n{r['text']}" if r.get("prompt") else r["text"] for r in rows]


def embeddings(rows: Sequence[dict], key: str) -> np.ndarray:
    """Frozen sentence embeddings of ``rows`` (memoised per process under ``key``)."""
    from ssl_engine.selection import embed_texts

    if key not in _EMB_CACHE:
        _EMB_CACHE[key] = embed_texts(joined(rows), max_length=256)
    return _EMB_CACHE[key]


def _finish(name: str, y_test, p_test, p_pool, prior: float, t0: float) -> dict:
    choice = choose_threshold("prior_match", ThresholdInputs(pool_scores=np.asarray(p_pool), prior=prior))
    return {
        "method": name,
        "metrics": binary_metrics(np.asarray(y_test), np.asarray(p_test), choice.threshold),
        "threshold": choice.threshold,
        "threshold_strategy": "prior_match",
        "seconds": time.time() - t0,
    }


def lr_probe(labeled, pool, test, *, emb_lab, emb_pool, emb_test, seed: int) -> dict:
    """Class-balanced logistic regression on frozen embeddings."""
    from sklearn.linear_model import LogisticRegression

    t0 = time.time()
    y = np.array([r["label"] == "harmful" for r in labeled], dtype=int)
    clf = LogisticRegression(class_weight="balanced", max_iter=2000, C=1.0, random_state=seed).fit(emb_lab, y)
    yt = np.array([r["label"] == "harmful" for r in test], dtype=int)
    return _finish(
        "lr_probe", yt, clf.predict_proba(emb_test)[:, 1], clf.predict_proba(emb_pool)[:, 1], float(y.mean()), t0
    )


def setfit(labeled, pool, test, *, seed: int) -> dict:
    """SetFit with the bundled MiniLM body; SETFIT_ITERATIONS pair iterations (CPU budget), else its defaults."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from ssl_engine.model import default_backbone

    t0 = time.time()
    y = [int(r["label"] == "harmful") for r in labeled]
    model = SetFitModel.from_pretrained(default_backbone(), head_params={"class_weight": "balanced", "max_iter": 2000})
    model.model_body.max_seq_length = 256
    with tempfile.TemporaryDirectory(prefix="umbra-setfit-") as out:  # its checkpoints, never in the repo
        args = TrainingArguments(
            output_dir=out, batch_size=16, num_epochs=1, num_iterations=SETFIT_ITERATIONS, seed=seed, report_to="none"
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=Dataset.from_dict({"text": joined(labeled), "label": y})
        )
        trainer.train()
    p_test = np.asarray(model.predict_proba(joined(test)))[:, 1]
    p_pool = np.asarray(model.predict_proba(joined(pool)))[:, 1]
    yt = np.array([r["label"] == "harmful" for r in test], dtype=int)
    return _finish("setfit", yt, p_test, p_pool, float(np.mean(y)), t0)
