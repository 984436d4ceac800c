"""The serving path's reads: one short SQL statement each, no ORM query compilation.

``POST /v1/moderations`` is the hot path: a MiniLM call on one short text costs a few
milliseconds, and compiling three ORM querysets (token, project, active model) cost about as
much again (``benchmarks/moderation_latency.py``). These reads run the same lookups as
hand-written SQL over the models' own table and column names and build model instances with
``Model.from_db``, so the rest of the app sees ordinary objects. They are exact: nothing here
is cached, so a revoked token, a changed membership or a newly activated model version is seen
by the very next request of every process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import connection

from annotations.models import ApiToken, Membership, ModelVersion, Project, Role


def _cols(model, alias: str, fields=None) -> tuple[list[str], str, list]:
    """(attnames, ``alias.col, …``, per-column converters) of ``model``'s concrete fields (all, or those named).

    The converters are the ones the ORM applies to the same columns (the backend's, e.g.
    SQLite's text → aware datetime, then the field's own), so the rows match ORM results.
    """
    chosen = [f for f in model._meta.concrete_fields if fields is None or f.name in fields]
    converters = []
    for f in chosen:
        col = f.get_col(alias)
        converters.append(
            [(conv, col) for conv in connection.ops.get_db_converters(col) + f.get_db_converters(connection)]
        )
    return (
        [f.attname for f in chosen],
        ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in chosen),
        converters,
    )


def _convert(values, converters) -> list:
    out = list(values)
    for i, convs in enumerate(converters):
        for conv, col in convs:
            out[i] = conv(out[i], col, connection)
    return out


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _token_sql() -> tuple[str, list[str], list[str], list]:
    user_model = get_user_model()
    t_names, t_cols, t_conv = _cols(ApiToken, "t")
    u_names, u_cols, u_conv = _cols(user_model, "u")
    sql = (
        f"SELECT {t_cols}, {u_cols} FROM {_table(ApiToken)} t JOIN {_table(user_model)} u ON u.id = t.user_id "
        "WHERE t.key_hash = %s AND t.revoked_at IS NULL"
    )
    return sql, t_names, u_names, t_conv + u_conv


def token_with_user(*, key_hash: str) -> ApiToken | None:
    """The unrevoked token with ``key_hash``, its ``user`` loaded (expiry and activity are the caller's checks)."""
    sql, t_names, u_names, converters = _token_sql()
    with connection.cursor() as cur:
        cur.execute(sql, [key_hash])
        row = cur.fetchone()
    if row is None:
        return None
    row = _convert(row, converters)
    db = connection.alias
    token = ApiToken.from_db(db, t_names, row[: len(t_names)])
    token.user = get_user_model().from_db(db, u_names, row[len(t_names) :])
    return token


# The project's fields the moderation view and its answer use; the rest load lazily if ever read.
_PROJECT_FIELDS = ("id", "slug", "name", "task")
_MODEL_FIELDS = ("id", "project", "training_round", "number", "path", "threshold", "is_active", "created_at")


@dataclass(frozen=True)
class ServingTarget:
    """A project the caller may see, the caller's role there (None: not a member), and a model version (or None)."""

    project: Project
    role: str | None
    model_version: ModelVersion | None


@functools.cache
def _target_sql(where: str, model_join: str, limit: int) -> tuple[str, list[str], list[str], list]:
    p_names, p_cols, p_conv = _cols(Project, "p", _PROJECT_FIELDS)
    m_names, m_cols, m_conv = _cols(ModelVersion, "mv", _MODEL_FIELDS)
    sql = (
        f"SELECT {p_cols}, m.role, {m_cols} FROM {_table(Project)} p "
        f"LEFT JOIN {_table(Membership)} m ON m.project_id = p.id AND m.user_id = %s "
        f"LEFT JOIN {_table(ModelVersion)} mv ON mv.project_id = p.id AND {model_join} "
        f"WHERE {where} ORDER BY p.name, p.id LIMIT {int(limit)}"
    )
    return sql, p_names, m_names, [*p_conv, [], *m_conv]


def _targets(user, *, where: str, model_join: str, params: list, limit: int = 1) -> list[ServingTarget]:
    """Rows of ``_target_sql``; ``params`` fill the model join's then the WHERE clause's placeholders."""
    sql, p_names, m_names, converters = _target_sql(where, model_join, limit)
    with connection.cursor() as cur:
        cur.execute(sql, [user.pk, *params])
        rows = cur.fetchall()
    db = connection.alias
    out = []
    for row in rows:
        row = _convert(row, converters)
        project = Project.from_db(db, p_names, row[: len(p_names)])
        role = Role.ADMIN if user.is_superuser else row[len(p_names)]
        mv_row = row[len(p_names) + 1 :]
        mv = None
        if mv_row[0] is not None:
            mv = ModelVersion.from_db(db, m_names, mv_row)
            mv.project = project
        out.append(ServingTarget(project=project, role=role, model_version=mv))
    return out


def serving_target_by_slug(*, user, slug: str) -> ServingTarget | None:
    """Project ``slug`` with the user's role there and its active model version; None if no such project."""
    found = _targets(user, where="p.slug = %s", model_join="mv.is_active = %s", params=[True, slug])
    return found[0] if found else None


def serving_target_by_model(*, user, slug: str, number: int) -> ServingTarget | None:
    """Project ``slug`` with the user's role there and its model version number ``number`` (if any)."""
    found = _targets(user, where="p.slug = %s", model_join="mv.number = %s", params=[number, slug])
    return found[0] if found else None


def serving_targets_of_user(*, user, limit: int = 2) -> list[ServingTarget]:
    """The first ``limit`` projects the user may see (by name; all projects for a superuser), with active models."""
    where = "1 = 1" if user.is_superuser else "m.role IS NOT NULL"
    return _targets(user, where=where, model_join="mv.is_active = %s", params=[True], limit=limit)
