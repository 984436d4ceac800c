"""Streaming, all-or-nothing import of items (JSONL in the shared record format, or CSV).

PostgreSQL: rows are validated while streaming and sent with ``COPY`` into a temporary
staging table; one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` then creates the items
and the imported human labels, inside the caller's transaction. Other databases (the
SQLite demo) use batched ``bulk_create``. Nothing is read whole into memory.
"""

from __future__ import annotations

import codecs
import csv
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from annotations.errors import ApplicationError, FieldError
from annotations.models import Annotation, BackgroundJob, Item, Label, Project, Role
from annotations.services.hashing import content_hash
from annotations.services.jobs import JobRunner, job_create, job_enqueue, job_execute, runner

KNOWN_FIELDS = {"id", "text", "prompt", "label", "category", "source", "task", "split"}
LABELS = {Label.HARMFUL.value, Label.UNHARMFUL.value}
MAX_REPORTED_ERRORS = 1000


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


@dataclass
class ImportReport:
    lines: int = 0
    valid: int = 0
    created: int = 0
    duplicates: int = 0
    labeled: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.created} items created, {self.duplicates} duplicates skipped, "
            f"{self.labeled} human labels imported, {self.error_count} invalid lines rejected "
            f"({self.lines} lines read in {self.seconds:.1f}s)"
        )


class ImportFailed(ApplicationError):
    """The file had invalid lines and ``skip_invalid`` was off: nothing was imported."""

    def __init__(self, errors: list[RowError], error_count: int) -> None:
        shown = "; ".join(str(e) for e in errors[:5])
        more = f" (and {error_count - 5} more)" if error_count > 5 else ""
        super().__init__(
            f"Import aborted, nothing was imported: {error_count} invalid line(s): {shown}{more}",
            extra={"errors": [e.__dict__ for e in errors]},
        )
        self.errors = errors
        self.error_count = error_count


@dataclass(frozen=True)
class ParsedRow:
    line: int
    text: str
    prompt: str
    content_hash: str
    source: str
    external_id: str
    metadata: dict[str, Any]
    label: str
    category: str


def _check_str(value: Any, line: int, name: str, *, max_chars: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _RowInvalid(RowError(line, name, f"must be a string, got {type(value).__name__}"))
    value = str(value)
    if "\x00" in value:
        raise _RowInvalid(RowError(line, name, "contains a NUL byte"))
    if len(value) > max_chars:
        raise _RowInvalid(RowError(line, name, f"is {len(value)} characters long; the limit is {max_chars}"))
    return value


MAX_METADATA_DEPTH = 64


def _json_shape(value: Any) -> tuple[int, bool]:
    """(nesting depth, contains a NUL character) of a parsed JSON value, without recursion.

    Recursion over a 500-level object blew Python's stack and aborted the whole import.
    """
    depth, has_nul = 0, False
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, str):
            has_nul = has_nul or "\x00" in node
        elif isinstance(node, dict):
            depth = max(depth, level)
            for k, v in node.items():
                has_nul = has_nul or "\x00" in k
                stack.append((v, level + 1))
        elif isinstance(node, list):
            depth = max(depth, level)
            stack.extend((v, level + 1) for v in node)
    return depth, has_nul


class _RowInvalid(Exception):
    def __init__(self, error: RowError) -> None:
        self.error = error


def _parse_record(record: Any, line: int, *, task: str, max_chars: int, source_default: str) -> ParsedRow:
    if not isinstance(record, dict):
        raise _RowInvalid(RowError(line, "", f"expected a JSON object, got {type(record).__name__}"))
    if "text" not in record or record["text"] is None:
        raise _RowInvalid(RowError(line, "text", "is missing"))
    text = _check_str(record["text"], line, "text", max_chars=max_chars)
    if not text.strip():
        raise _RowInvalid(RowError(line, "text", "is empty"))
    prompt = _check_str(record.get("prompt"), line, "prompt", max_chars=max_chars)
    if task == Project.Task.RESPONSE and not prompt.strip():
        raise _RowInvalid(RowError(line, "prompt", "is required for a response-harmfulness project"))
    label = record.get("label")
    if label is None or label == "":
        label = ""
    elif not isinstance(label, str) or label not in LABELS:
        raise _RowInvalid(RowError(line, "label", f"unknown label {label!r}; expected 'harmful' or 'unharmful'"))
    category = _check_str(record.get("category"), line, "category", max_chars=100)
    source = _check_str(record.get("source"), line, "source", max_chars=100) or source_default
    external_id = _check_str(record.get("id"), line, "id", max_chars=200)
    metadata = {k: v for k, v in record.items() if k not in KNOWN_FIELDS}
    depth, has_nul = _json_shape(metadata)
    if depth > MAX_METADATA_DEPTH:  # the extra fields sit one level down, in the metadata object
        raise _RowInvalid(
            RowError(
                line,
                "metadata",
                f"extra fields are nested {depth - 1} levels deep; the limit is {MAX_METADATA_DEPTH - 1}",
            )
        )
    if has_nul:  # PostgreSQL's jsonb cannot store \u0000: the COPY would abort the whole import
        raise _RowInvalid(RowError(line, "metadata", "an extra field contains a NUL byte"))
    return ParsedRow(
        line=line,
        text=text,
        prompt=prompt,
        content_hash=content_hash(text, prompt),
        source=source,
        external_id=external_id,
        metadata=metadata,
        label=label,
        category=category,
    )


def _iter_jsonl(stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
    """(line number, parsed object or RowError) for every non-blank line."""
    for lineno, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield lineno, RowError(lineno, "", f"invalid UTF-8 at byte {exc.start}")
            continue
        try:
            yield lineno, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            yield lineno, RowError(lineno, "", f"invalid JSON: {exc}")


def _iter_csv(stream: IO[bytes], *, max_chars: int) -> Iterator[tuple[int, Any]]:
    """(first line number of the record, dict or RowError) per CSV record.

    Lines are decoded one by one, so an invalid UTF-8 sequence is reported on its own line
    (and the next records still parse); a UTF-8 byte-order mark (Excel) is dropped; a field
    may be as long as the text limit.
    """
    lineno = 0
    bad: dict[int, int] = {}  # line -> offset of its first invalid byte

    def lines() -> Iterator[str]:
        nonlocal lineno
        for raw in stream:
            lineno += 1
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad.setdefault(lineno, exc.start)
                yield raw.decode("utf-8", errors="replace")

    # The csv module's limit is process-wide; raise it (never lower it) to the text limit.
    csv.field_size_limit(max(csv.field_size_limit(), max_chars + 1))
    reader = csv.DictReader(lines())
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        yield 1, RowError(1, "", f"invalid CSV: {exc}")
        return
    if 1 in bad:
        yield 1, RowError(1, "", f"invalid UTF-8 at byte {bad[1]} of the header line")
        return
    if not header or "text" not in header:
        yield 1, RowError(1, "text", "the CSV header has no 'text' column")
        return
    while True:
        start = lineno + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            message = (
                f"a field is longer than {max_chars} characters"
                if "field larger" in str(exc)
                else f"invalid CSV: {exc}"
            )
            yield start, RowError(start, "", message)
            return  # the parser cannot tell where the broken record ends
        broken = [n for n in range(start, lineno + 1) if n in bad]
        if broken:
            yield start, RowError(start, "", f"invalid UTF-8 at byte {bad[broken[0]]} of line {broken[0]}")
            continue
        if None in row:
            yield start, RowError(start, "", "more fields than the header has columns")
            continue
        yield start, {k: (v if v != "" else None) for k, v in row.items()}


def parse_rows(
    stream: IO[bytes],
    *,
    fmt: str,
    task: str,
    report: ImportReport,
    max_chars: int | None = None,
    source_default: str = "",
) -> Iterator[ParsedRow]:
    """Validated rows; invalid ones are recorded in ``report`` and skipped."""
    max_chars = max_chars or settings.UMBRA_ITEM_MAX_CHARS
    if fmt not in ("jsonl", "csv"):
        raise ApplicationError(f"Unknown format {fmt!r}: use 'jsonl' or 'csv'.")
    source = _iter_jsonl(stream) if fmt == "jsonl" else _iter_csv(stream, max_chars=max_chars)
    for lineno, obj in source:
        report.lines = max(report.lines, lineno)
        if isinstance(obj, RowError):
            _record_error(report, obj)
            continue
        try:
            row = _parse_record(obj, lineno, task=task, max_chars=max_chars, source_default=source_default)
        except _RowInvalid as exc:
            _record_error(report, exc.error)
            continue
        report.valid += 1
        yield row


def _record_error(report: ImportReport, error: RowError) -> None:
    report.error_count += 1
    if len(report.errors) < MAX_REPORTED_ERRORS:
        report.errors.append(error)


def import_user_get(*, username: str = "import"):
    """The named (non-login) user that imported human labels are attributed to."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def format_from_name(name: str) -> str:
    lower = name.lower()
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    raise ApplicationError(f"Cannot tell the format of {name!r}: the name must end in .jsonl or .csv.")


@transaction.atomic
def items_import(
    *,
    project: Project,
    stream: IO[bytes],
    fmt: str,
    split: str = Item.Split.POOL,
    bench_name: str = "",
    import_username: str = "import",
    skip_invalid: bool = False,
    max_chars: int | None = None,
) -> ImportReport:
    """Import items (and their labels as human annotations) from a binary stream, atomically.

    Raises ImportFailed (and imports nothing) on any invalid line unless ``skip_invalid``.
    """
    if split not in Item.Split.values:
        raise ApplicationError(f"Unknown split {split!r}; expected one of {', '.join(Item.Split.values)}.")
    if (split == Item.Split.BENCH) != bool(bench_name):
        raise ApplicationError("A benchmark split needs a name (bench:NAME), and only a benchmark split has one.")
    started = time.perf_counter()
    report = ImportReport()
    user = import_user_get(username=import_username)
    rows = parse_rows(stream, fmt=fmt, task=project.task, report=report, max_chars=max_chars)
    if connection.vendor == "postgresql":
        _insert_postgres(
            project=project,
            rows=rows,
            split=split,
            bench_name=bench_name,
            user_id=user.pk,
            report=report,
            abort_on_error=not skip_invalid,
        )
    else:
        _insert_batched(project=project, rows=rows, split=split, bench_name=bench_name, user=user, report=report)
    if report.error_count and not skip_invalid:
        raise ImportFailed(report.errors, report.error_count)  # rolls the transaction back
    report.duplicates = report.valid - report.created
    report.seconds = time.perf_counter() - started
    from annotations.selectors.labels import labeling_counts_changed

    transaction.on_commit(lambda: labeling_counts_changed(project_id=project.pk))
    return report


_STAGE_COLUMNS = ("line", "text", "prompt", "content_hash", "source", "external_id", "metadata", "label", "category")


def _insert_postgres(
    *, project, rows: Iterable[ParsedRow], split, bench_name, user_id, report, abort_on_error: bool
) -> None:
    connection.ensure_connection()
    with connection.connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE umbra_import_stage (line integer, text text, prompt text, content_hash varchar(64),"
            " source text, external_id text, metadata jsonb, label text, category text) ON COMMIT DROP"
        )
        with cur.copy(f"COPY umbra_import_stage ({', '.join(_STAGE_COLUMNS)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(
                    (
                        r.line,
                        r.text,
                        r.prompt,
                        r.content_hash,
                        r.source,
                        r.external_id,
                        orjson.dumps(r.metadata).decode(),
                        r.label,
                        r.category,
                    )
                )
        if report.error_count and (abort_on_error or not report.valid):
            cur.execute("DROP TABLE umbra_import_stage")
            return  # the caller raises ImportFailed and rolls back
        cur.execute(
            """
            WITH uniq AS (
                SELECT DISTINCT ON (content_hash) * FROM umbra_import_stage ORDER BY content_hash, line
            ), ins AS (
                INSERT INTO annotations_item (project_id, text, prompt, content_hash, split, bench_name, source,
                    external_id, metadata, created_at, human_label, human_category, excluded, annotation_count)
                SELECT %(project)s, text, prompt, content_hash, %(split)s, %(bench)s, source, external_id, metadata,
                    now(), label, CASE WHEN label = '' THEN '' ELSE category END, false,
                    CASE WHEN label = '' THEN 0 ELSE 1 END
                FROM uniq ORDER BY line
                ON CONFLICT (project_id, content_hash) DO NOTHING
                RETURNING id, human_label, human_category
            ), ann AS (
                INSERT INTO annotations_annotation (item_id, annotator_id, role, kind, label, category, note,
                    client_token, created_at)
                SELECT id, %(user)s, %(role)s, 'import', human_label, human_category, '', '', now()
                FROM ins WHERE human_label <> ''
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM ann)
            """,
            {"project": project.pk, "split": split, "bench": bench_name, "user": user_id, "role": Role.ANNOTATOR},
        )
        report.created, report.labeled = cur.fetchone()
        cur.execute("DROP TABLE umbra_import_stage")


def _insert_batched(*, project, rows: Iterable[ParsedRow], split, bench_name, user, report, batch_size=2000) -> None:
    seen: set[str] = set()
    batch: list[ParsedRow] = []

    def flush() -> None:
        hashes = [r.content_hash for r in batch]
        existing = set(
            Item.objects.filter(project=project, content_hash__in=hashes).values_list("content_hash", flat=True)
        )
        new = [r for r in batch if r.content_hash not in existing]
        Item.objects.bulk_create(
            [
                Item(
                    project=project,
                    text=r.text,
                    prompt=r.prompt,
                    content_hash=r.content_hash,
                    split=split,
                    bench_name=bench_name,
                    source=r.source,
                    external_id=r.external_id,
                    metadata=r.metadata,
                    human_label=r.label,
                    human_category=r.category if r.label else "",
                    annotation_count=int(bool(r.label)),
                )
                for r in new
            ]
        )
        labeled = {r.content_hash: r for r in new if r.label}
        if labeled:
            ids = dict(
                Item.objects.filter(project=project, content_hash__in=list(labeled)).values_list("content_hash", "id")
            )
            Annotation.objects.bulk_create(
                [
                    Annotation(
                        item_id=ids[h],
                        annotator=user,
                        role=Role.ANNOTATOR,
                        kind=Annotation.Kind.IMPORT,
                        label=r.label,
                        category=r.category,
                    )
                    for h, r in labeled.items()
                ]
            )
        report.created += len(new)
        report.labeled += len(labeled)
        batch.clear()

    for r in rows:
        if r.content_hash in seen:
            continue
        seen.add(r.content_hash)
        batch.append(r)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()


# --- uploads as import jobs ---------------------------------------------------------------


def upload_store(*, uploaded, prefix: str) -> Path:
    """Copy an uploaded file to the uploads folder under a fresh name; returns the path."""
    folder = Path(settings.MEDIA_ROOT) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(uploaded.name).suffix.lower()
    path = folder / f"{prefix}-{uuid.uuid4().hex}{suffix}"
    with path.open("wb") as out:
        for chunk in uploaded.chunks():
            out.write(chunk)
    return path


@transaction.atomic
def import_job_start(
    *, project: Project, user, uploaded, split: str, bench_name: str, skip_invalid: bool
) -> BackgroundJob:
    """Store the upload and enqueue an import job after commit (admins only)."""
    format_from_name(uploaded.name)
    try:
        path = upload_store(uploaded=uploaded, prefix=f"import-{project.slug}")
    except OSError as exc:
        raise FieldError(f"Could not store the upload: {exc}", field="file") from exc
    job = job_create(
        model=BackgroundJob,
        project=project,
        kind=BackgroundJob.Kind.IMPORT,
        created_by=user,
        params={
            "path": str(path),
            "name": uploaded.name,
            "split": split,
            "bench_name": bench_name,
            "skip_invalid": skip_invalid,
        },
        progress={"phase": "queued"},
    )
    job_enqueue(job=job)
    return job


@runner
class ImportRunner(JobRunner):
    """Imports an uploaded file (one transaction: all or nothing unless skip_invalid); the upload is removed."""

    name = BackgroundJob.Kind.IMPORT
    task = "annotations.import_job_run"
    queue = "celery"

    def run(self) -> dict[str, Any]:
        p = self.job.params
        self.progress.update(force=True, phase="importing")
        try:
            with open(p["path"], "rb") as fh:
                report = items_import(
                    project=self.job.project,
                    stream=fh,
                    fmt=format_from_name(p["name"]),
                    split=p["split"],
                    bench_name=p["bench_name"],
                    skip_invalid=p["skip_invalid"],
                )
        except ImportFailed as exc:
            self.errors = [str(e) for e in exc.errors[:200]]
            raise
        except FileNotFoundError as exc:
            raise ApplicationError(
                "The uploaded file is gone (removed after an earlier attempt); upload it again."
            ) from exc
        except Exception as exc:
            raise ApplicationError(f"Import failed and was rolled back: {exc}") from exc
        finally:
            Path(p["path"]).unlink(missing_ok=True)
        return {
            "result": {
                "summary": report.summary(),
                "created": report.created,
                "duplicates": report.duplicates,
                "labeled": report.labeled,
                "errors": [str(e) for e in report.errors[:200]],
            }
        }

    def stopped_fields(self) -> dict[str, Any]:
        return {"result": {"errors": getattr(self, "errors", [])}}

    @classmethod
    def cleanup(cls, job, status: str) -> None:
        path = (job.params or {}).get("path")
        if path:
            Path(path).unlink(missing_ok=True)


def import_job_execute(*, job_id: int, worker: str = "") -> str:
    """Run a queued import job on this worker (the task's body)."""
    return job_execute(runner_name=ImportRunner.name, job_id=job_id, worker=worker)
