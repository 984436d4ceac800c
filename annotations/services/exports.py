"""Streamed export of items with their current human label and latest prediction."""

from __future__ import annotations

from typing import IO

import orjson

from annotations.models import Project
from annotations.selectors.items import export_records


def items_export(*, project: Project, out: IO[bytes]) -> int:
    """Write the project's items as JSONL to ``out``; returns the number of records."""
    n = 0
    for record in export_records(project=project):
        out.write(orjson.dumps(record) + b"\n")
        n += 1
    return n
