"""Bulk storage of a round's predictions: COPY on PostgreSQL, batched bulk_create elsewhere.

Call inside the transaction that flips the round to ``succeeded`` (see
``annotations.services.rounds``): the rows only become visible with that flip.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson
from django.db import connection

from annotations.models import Prediction

BULK_BATCH = 2000
_COLUMNS = (
    "item_id",
    "training_round_id",
    "p_harmful",
    "head_probs",
    "pseudo_label",
    "used",
    "weight",
    "agreement",
    "margin_history",
    "review_priority",
    "review_reason",
)


def _unit(x: float) -> float:
    # float32 averaging can land a hair outside [0, 1]; the DB check constraint is strict.
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else float(x)


def _rows(training_round_id: int, predictions: Iterable, label_names: Sequence[str]):
    for p in predictions:
        yield (
            int(p.example_id),
            training_round_id,
            _unit(p.p_harmful),
            orjson.dumps([float(h) for h in p.head_probs]).decode(),
            label_names[int(p.pseudo_label)],
            bool(p.used),
            float(p.weight),
            (p.agreement or "")[:16],
            orjson.dumps([float(m) for m in p.margin_history]).decode(),
            float(p.review_priority),
            (p.review_reason or "")[:300],
        )


def predictions_store(*, training_round_id: int, predictions: Iterable, label_names: Sequence[str]) -> int:
    """Insert one Prediction row per engine ``ExamplePrediction`` (example_id = item id); returns the count."""
    rows = _rows(training_round_id, predictions, label_names)
    if connection.vendor == "postgresql":
        return _copy(rows)
    return _bulk_create(rows)


def _copy(rows) -> int:
    table = connection.ops.quote_name(Prediction._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _COLUMNS)
    n = 0
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _bulk_create(rows) -> int:
    n = 0
    batch: list[Prediction] = []
    for row in rows:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["head_probs"] = orjson.loads(values["head_probs"])
        values["margin_history"] = orjson.loads(values["margin_history"])
        batch.append(Prediction(**values))
        if len(batch) >= BULK_BATCH:
            Prediction.objects.bulk_create(batch)
            n += len(batch)
            batch = []
    if batch:
        Prediction.objects.bulk_create(batch)
        n += len(batch)
    return n
