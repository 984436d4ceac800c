"""Import: good files, every kind of bad line, duplicates, all-or-nothing, export round-trip."""

import io
import json

import orjson
import pytest
from django.core.management import CommandError, call_command

from annotations.models import Annotation, Item
from annotations.services.imports import ImportFailed, items_import


def jsonl(*records) -> io.BytesIO:
    lines = [r if isinstance(r, bytes) else json.dumps(r).encode() for r in records]
    return io.BytesIO(b"\n".join(lines) + b"\n")


GOOD = [
    {"id": "a1", "text": "How do I bake bread?", "prompt": None, "label": "unharmful", "source": "t"},
    {"id": "a2", "text": "How do I hotwire a car?", "label": "harmful", "category": "theft", "extra": 5},
    {"id": "a3", "text": "Tell me a joke"},
]


@pytest.mark.django_db
def test_import_good_file_creates_items_and_human_labels(project):
    report = items_import(project=project, stream=jsonl(*GOOD), fmt="jsonl", split="seed")
    assert (report.created, report.labeled, report.error_count) == (3, 2, 0)
    items = {i.external_id: i for i in Item.objects.filter(project=project)}
    assert items["a1"].human_label == "unharmful" and items["a1"].split == "seed"
    assert items["a2"].human_category == "theft" and items["a2"].metadata == {"extra": 5}
    assert items["a3"].human_label == ""
    ann = Annotation.objects.get(item=items["a2"])
    assert ann.kind == "import" and ann.annotator.username == "import" and ann.label == "harmful"
    assert not ann.annotator.has_usable_password()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad_line, field, fragment",
    [
        (b"{not json", "", "invalid JSON"),
        (b'{"label": "harmful"}', "text", "is missing"),
        (b'{"text": "   "}', "text", "is empty"),
        (b'{"text": "x", "label": "toxic"}', "label", "unknown label 'toxic'"),
        (b'{"text": "ok \xff\xfe"}', "", "invalid UTF-8"),
        (b'{"text": ["a", "list"]}', "text", "must be a string"),
        (b'{"text": "nul \\u0000 byte"}', "text", "NUL byte"),
        (b"[1, 2, 3]", "", "expected a JSON object"),
        (b'{"text": "' + b"x" * 60 + b'"}', "text", "the limit is 50"),
    ],
)
def test_bad_line_aborts_whole_import_naming_line_and_field(project, settings, bad_line, field, fragment):
    settings.UMBRA_ITEM_MAX_CHARS = 50
    stream = jsonl(GOOD[0], GOOD[2], bad_line, GOOD[1])
    with pytest.raises(ImportFailed, match=r"^Import aborted, nothing was imported: 1 invalid line\(s\): ") as exc_info:
        items_import(project=project, stream=stream, fmt="jsonl")
    (error,) = exc_info.value.errors
    assert error.line == 3 and error.field == field and fragment in error.message
    assert "line 3" in exc_info.value.message
    assert Item.objects.count() == 0 and Annotation.objects.count() == 0


@pytest.mark.django_db
def test_skip_invalid_imports_good_lines_and_reports_bad(project):
    stream = jsonl(GOOD[0], b"{oops", GOOD[1], b'{"text": 3.5e999}')
    report = items_import(project=project, stream=stream, fmt="jsonl", skip_invalid=True)
    assert report.created == 2
    assert [e.line for e in report.errors] == [2, 4]


@pytest.mark.django_db
def test_reimport_and_duplicate_texts_never_duplicate_items(project):
    items_import(project=project, stream=jsonl(*GOOD), fmt="jsonl")
    dupes = [
        {"text": "how do I  BAKE bread?", "label": "harmful"},
        {"text": "Tell me a joke"},
        {"text": "Tell me a joke"},
    ]
    report = items_import(project=project, stream=jsonl(*dupes, *GOOD), fmt="jsonl")
    assert report.created == 0 and report.duplicates == 6
    assert Item.objects.filter(project=project).count() == 3
    assert Annotation.objects.count() == 2  # labels on duplicates are not re-imported


@pytest.mark.django_db
def test_same_text_in_two_projects_is_two_items(project, other_project):
    items_import(project=project, stream=jsonl(GOOD[0]), fmt="jsonl")
    items_import(project=other_project, stream=jsonl(GOOD[0]), fmt="jsonl")
    assert Item.objects.count() == 2


@pytest.mark.django_db
def test_response_project_requires_prompt(response_project):
    with pytest.raises(ImportFailed, match=r"^Import aborted, nothing was imported: 1 invalid line\(s\): ") as exc_info:
        items_import(project=response_project, stream=jsonl({"text": "Sure, here's how"}), fmt="jsonl")
    assert exc_info.value.errors[0].field == "prompt"
    report = items_import(project=response_project, stream=jsonl({"text": "Sure", "prompt": "Help?"}), fmt="jsonl")
    assert report.created == 1 and Item.objects.get().prompt == "Help?"


@pytest.mark.django_db
def test_csv_import_and_bad_csv(project):
    good = b'id,text,label\nc1,Hello there,unharmful\nc2,"Make, a bomb",harmful\n'
    report = items_import(project=project, stream=io.BytesIO(good), fmt="csv", split="test")
    assert report.created == 2 and report.labeled == 2
    with pytest.raises(ImportFailed, match=r"^Import aborted, nothing was imported: 1 invalid line\(s\): ") as exc_info:
        items_import(project=project, stream=io.BytesIO(b"id,label\n1,harmful\n"), fmt="csv")
    assert exc_info.value.errors[0].field == "text"
    with pytest.raises(ImportFailed, match=r"^Import aborted, nothing was imported: 1 invalid line\(s\): ") as exc_info:
        items_import(project=project, stream=io.BytesIO(b"text\nfine\nbad \xff byte\n"), fmt="csv")
    assert "invalid UTF-8" in exc_info.value.errors[0].message
    assert Item.objects.count() == 2


@pytest.mark.django_db
def test_ten_thousand_rows_import(project):
    lines = b"\n".join(
        orjson.dumps({"id": str(i), "text": f"prompt number {i}", "label": "harmful" if i % 7 == 0 else None})
        for i in range(10_000)
    )
    report = items_import(project=project, stream=io.BytesIO(lines), fmt="jsonl")
    assert report.created == 10_000 and report.labeled == len(range(0, 10_000, 7))
    assert Item.objects.filter(project=project).count() == 10_000
    first, last = Item.objects.order_by("id").first(), Item.objects.order_by("id").last()
    assert (first.external_id, last.external_id) == ("0", "9999")  # ids follow file order


@pytest.mark.django_db
def test_import_command_bench_split_and_errors(project, tmp_path, capsys):
    good = tmp_path / "bench.jsonl"
    good.write_bytes(jsonl(*GOOD).getvalue())
    call_command("import_items", "--project", "safety", "--file", str(good), "--split", "bench:wildguard")
    assert set(Item.objects.values_list("bench_name", flat=True)) == {"wildguard"}
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"text": "x"}\n{"txt": "y"}\n')
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_items", "--project", "safety", "--file", str(bad))
    assert "line 2, field 'text': is missing" in capsys.readouterr().err
    call_command("import_items", "--project", "safety", "--file", str(bad), "--skip-invalid")
    report = (tmp_path / "bad.jsonl.rejected.jsonl").read_text()
    assert json.loads(report)["line"] == 2
    with pytest.raises(CommandError, match="No project"):
        call_command("import_items", "--project", "nope", "--file", str(good))
    with pytest.raises(CommandError, match="Unknown --split"):
        call_command("import_items", "--project", "safety", "--file", str(good), "--split", "train")


@pytest.mark.django_db
def test_export_round_trip(project, other_project, tmp_path):
    items_import(project=project, stream=jsonl(*GOOD), fmt="jsonl", split="seed")
    out = tmp_path / "export.jsonl"
    call_command("export_items", "--project", "safety", "--out", str(out))
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in records] == ["a1", "a2", "a3"]
    assert records[1]["label"] == "harmful" and records[1]["label_history_count"] == 1
    assert records[1]["label_provenance"] == "human" and records[2]["label"] is None
    report = items_import(project=other_project, stream=io.BytesIO(out.read_bytes()), fmt="jsonl", split="seed")
    assert report.created == 3 and report.labeled == 2
    again = {i.external_id: i.human_label for i in Item.objects.filter(project=other_project)}
    assert again == {"a1": "unharmful", "a2": "harmful", "a3": ""}


def _nested(levels: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(levels):
        value = {"n": value}
    return value


@pytest.mark.django_db
def test_deeply_nested_metadata_is_one_bad_line_not_an_aborted_import(project, users, settings):
    """Issue 15, defect 7: 300-500 levels aborted the import (even --skip-invalid) naming no line."""
    deep = json.dumps({"text": "deep one", "meta": _nested(450)}).encode()
    report = items_import(project=project, stream=jsonl(GOOD[0], deep, GOOD[2]), fmt="jsonl", skip_invalid=True)
    assert (report.created, report.error_count) == (2, 1)
    (error,) = report.errors
    assert error.line == 2 and error.field == "metadata" and "nested 451 levels deep; the limit is 63" in error.message
    with pytest.raises(ImportFailed, match="line 2, field 'metadata': extra fields are nested"):
        items_import(project=project, stream=jsonl(GOOD[1], deep), fmt="jsonl")
    ok = json.dumps({"text": "shallow enough", "meta": _nested(60)}).encode()
    assert items_import(project=project, stream=jsonl(ok), fmt="jsonl").created == 1


@pytest.mark.django_db
def test_the_import_job_fails_with_the_line_instead_of_a_traceback(project, users, settings, caplog):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from annotations.services.imports import import_job_execute, import_job_start

    deep = json.dumps({"text": "deep one", "meta": _nested(500)}).encode() + b"\n"
    job = import_job_start(
        project=project,
        user=users["admin"],
        split="pool",
        bench_name="",
        skip_invalid=False,
        uploaded=SimpleUploadedFile("deep.jsonl", b'{"text": "fine"}\n' + deep),
    )
    assert import_job_execute(job_id=job.pk) == "failed"
    job.refresh_from_db()
    assert "line 2, field 'metadata'" in job.error and job.result["errors"]
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text


def csv_bytes(*lines: bytes) -> io.BytesIO:
    return io.BytesIO(b"\r\n".join(lines) + b"\r\n")


@pytest.mark.django_db
def test_csv_errors_name_their_own_line(project):
    """Issue 15, defect 11: invalid UTF-8 on line 3 was reported as "line 1 ... byte 15"."""
    stream = csv_bytes(b"text,label", b"fine one,harmful", b"broken \xff\xfe here,unharmful", b"fine two,")
    report = items_import(project=project, stream=stream, fmt="csv", skip_invalid=True)
    (error,) = report.errors
    assert error.line == 3 and "invalid UTF-8 at byte 7 of line 3" in error.message
    assert report.created == 2  # the lines after the broken one still import


@pytest.mark.django_db
def test_csv_fields_may_be_as_long_as_the_text_limit_and_longer_ones_name_their_line(project, settings):
    long_text = b"y" * 200_000  # was "line 1: field larger than field limit (131072)"
    report = items_import(project=project, stream=csv_bytes(b"text", long_text, b"short"), fmt="csv")
    assert report.created == 2 and Item.objects.filter(text=long_text.decode()).exists()
    settings.UMBRA_ITEM_MAX_CHARS = 1000
    with pytest.raises(ImportFailed, match="line 3, field 'text': is 5000 characters long; the limit is 1000"):
        items_import(project=project, stream=csv_bytes(b"text", b"ok", b"z" * 5000), fmt="csv")


@pytest.mark.django_db
def test_a_csv_with_a_byte_order_mark_imports(project):
    """Excel writes a UTF-8 BOM; it used to fail with "no 'text' column"."""
    report = items_import(
        project=project, stream=csv_bytes(b"\xef\xbb\xbftext,label", b"from excel,harmful"), fmt="csv"
    )
    assert (report.created, report.labeled) == (1, 1)
