"""Full-text search of item text on SQLite: an FTS5 table kept in step with ``annotations_item`` by triggers.

PostgreSQL gets a GIN index on ``to_tsvector('simple', text || ' ' || prompt)`` in migration
0010 instead. On SQLite, table-rebuilding migrations (``ALTER`` that SQLite cannot do in place)
drop a table's triggers with it, so the FTS table and its triggers are (re)created after every
``migrate`` by :func:`ensure_sqlite_fts` (``post_migrate``), and rebuilt when a trigger was missing.
"""

from __future__ import annotations

import re

FTS_TABLE = "annotations_item_fts"
_TRIGGERS = {
    "annotations_item_fts_ai": (
        "CREATE TRIGGER annotations_item_fts_ai AFTER INSERT ON annotations_item BEGIN "
        "INSERT INTO annotations_item_fts(rowid, text, prompt) VALUES (new.id, new.text, new.prompt); END"
    ),
    "annotations_item_fts_ad": (
        "CREATE TRIGGER annotations_item_fts_ad AFTER DELETE ON annotations_item BEGIN "
        "INSERT INTO annotations_item_fts(annotations_item_fts, rowid, text, prompt) "
        "VALUES ('delete', old.id, old.text, old.prompt); END"
    ),
    "annotations_item_fts_au": (
        "CREATE TRIGGER annotations_item_fts_au AFTER UPDATE OF text, prompt ON annotations_item BEGIN "
        "INSERT INTO annotations_item_fts(annotations_item_fts, rowid, text, prompt) "
        "VALUES ('delete', old.id, old.text, old.prompt); "
        "INSERT INTO annotations_item_fts(rowid, text, prompt) VALUES (new.id, new.text, new.prompt); END"
    ),
}
_TOKEN = re.compile(r"\w+", re.UNICODE)


def ensure_sqlite_fts(*, using: str = "default", **_) -> bool:
    """Create the FTS5 table and triggers if missing (and rebuild the index then); True if it changed anything."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "sqlite":
        return False
    with connection.cursor() as cur:
        cur.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='annotations_item'")
        if cur.fetchone() is None:
            return False
        cur.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE 'annotations_item_fts%'"
        )
        present = {row[0] for row in cur.fetchall()}
        missing = [name for name in _TRIGGERS if name not in present]
        if FTS_TABLE in present and not missing:
            return False
        if FTS_TABLE not in present:
            cur.execute(
                f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(text, prompt, content='annotations_item', "
                "content_rowid='id')"
            )
        for name in missing:
            cur.execute(_TRIGGERS[name])
        cur.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
    return True


def sqlite_match_query(text: str) -> str:
    """User text as an FTS5 query: every word quoted (no operators from the user), all required."""
    return " ".join(f'"{t}"' for t in _TOKEN.findall(text.lower())[:32])


def sqlite_any_query(words: list[str]) -> str:
    """Any of ``words`` (for similar items)."""
    return " OR ".join(f'"{w}"' for w in words if _TOKEN.fullmatch(w))
