"""Property-based fuzzing of the import: never a crash, never a partial import."""

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotations.models import Annotation, Item
from annotations.services.imports import ImportFailed, items_import

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
records = st.fixed_dictionaries(
    {},
    optional={
        "text": st.one_of(st.text(max_size=60), json_values),
        "prompt": st.one_of(st.none(), st.text(max_size=30), json_values),
        "label": st.sampled_from(["harmful", "unharmful", None, "", "toxic", 1, True]),
        "category": st.one_of(st.none(), st.text(max_size=10)),
        "id": st.one_of(st.text(max_size=10), st.integers()),
        "extra": json_values,
    },
)


def dumps(value) -> bytes:
    # The stdlib encoder (not orjson) so integers beyond 64 bits reach the importer too.
    return json.dumps(value).encode()


lines = st.one_of(
    records.map(dumps),
    st.binary(max_size=80),
    json_values.map(dumps),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _run(project, raw: bytes, fmt: str, skip_invalid: bool):
    before = (Item.objects.count(), Annotation.objects.count())
    try:
        report = items_import(project=project, stream=io.BytesIO(raw), fmt=fmt, skip_invalid=skip_invalid)
    except ImportFailed as exc:
        assert exc.error_count >= 1 and all(e.line >= 1 for e in exc.errors)
        assert (Item.objects.count(), Annotation.objects.count()) == before  # all or nothing
        return None
    assert Item.objects.count() == before[0] + report.created
    return report


@pytest.mark.django_db
@FUZZ
@given(body=st.lists(lines, max_size=8))
def test_fuzzed_jsonl_never_crashes_or_half_imports(project, body):
    raw = b"\n".join(line.replace(b"\n", b" ") for line in body)
    report = _run(project, raw, "jsonl", skip_invalid=False)
    if report is not None:
        assert report.error_count == 0


@pytest.mark.django_db
@FUZZ
@given(body=st.lists(lines, max_size=8))
def test_fuzzed_jsonl_skip_invalid_counts_add_up(project, body):
    raw = b"\n".join(line.replace(b"\n", b" ") for line in body)
    report = _run(project, raw, "jsonl", skip_invalid=True)
    assert report is not None
    assert report.valid + report.error_count == sum(1 for line in raw.split(b"\n") if line.strip())


@pytest.mark.django_db
@FUZZ
@given(raw=st.binary(max_size=300))
def test_fuzzed_csv_never_crashes(project, raw):
    _run(project, b"id,text,label\n" + raw, "csv", skip_invalid=False)
