import sys
from pathlib import Path

import orjson
from django.core.management.base import BaseCommand, CommandError

from annotations.errors import ApplicationError
from annotations.models import Item, Project
from annotations.services.imports import ImportFailed, format_from_name, items_import


def parse_split(value: str) -> tuple[str, str]:
    """``pool|seed|test|bench:NAME`` → (split, bench_name)."""
    if value.startswith("bench:"):
        name = value.split(":", 1)[1].strip()
        if not name:
            raise CommandError("--split bench:NAME needs a name after 'bench:'.")
        return Item.Split.BENCH, name
    if value not in (Item.Split.POOL, Item.Split.SEED, Item.Split.TEST):
        raise CommandError(f"Unknown --split {value!r}: use pool, seed, test or bench:NAME.")
    return value, ""


class Command(BaseCommand):
    help = "Import items from a JSONL or CSV file into a project (all-or-nothing unless --skip-invalid)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug.")
        parser.add_argument("--file", required=True, help="A .jsonl or .csv file.")
        parser.add_argument("--split", default="pool", help="pool | seed | test | bench:NAME (default pool).")
        parser.add_argument("--format", choices=["jsonl", "csv"], help="Default: from the file name.")
        parser.add_argument("--skip-invalid", action="store_true", help="Import the valid lines, report the rest.")
        parser.add_argument("--report", help="Where to write rejected lines (JSONL). Default: FILE.rejected.jsonl")
        parser.add_argument("--import-user", default="import", help="User that imported labels are attributed to.")

    def handle(self, *args, **opts):
        try:
            project = Project.objects.get(slug=opts["project"])
        except Project.DoesNotExist:
            raise CommandError(f"No project with slug {opts['project']!r}.") from None
        path = Path(opts["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        split, bench = parse_split(opts["split"])
        try:
            fmt = opts["format"] or format_from_name(path.name)
            with path.open("rb") as fh:
                report = items_import(
                    project=project,
                    stream=fh,
                    fmt=fmt,
                    split=split,
                    bench_name=bench,
                    import_username=opts["import_user"],
                    skip_invalid=opts["skip_invalid"],
                )
        except ImportFailed as exc:
            for err in exc.errors[:20]:
                self.stderr.write(f"{path}: {err}")
            raise CommandError(
                f"{exc.error_count} invalid line(s); nothing was imported "
                "(use --skip-invalid to import the valid lines)."
            ) from None
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        except Exception as exc:  # database gone mid-import, disk errors: the transaction rolled back
            raise CommandError(f"Import failed and was rolled back, nothing was imported: {exc}") from None
        if report.error_count:
            report_path = Path(opts["report"] or f"{path}.rejected.jsonl")
            with report_path.open("wb") as out:
                for err in report.errors:
                    out.write(orjson.dumps(err.__dict__) + b"\n")
            self.stderr.write(f"{report.error_count} invalid line(s) skipped; report: {report_path}")
        self.stdout.write(report.summary())
        sys.stdout.flush()
