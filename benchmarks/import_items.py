"""Import benchmark: a 1,000,000-row JSONL file into PostgreSQL through `manage.py import_items`.

Generates synthetic rows (short prompts, 13 % labeled harmful / 20 % labeled at all), creates a
fresh benchmark database, and measures wall time, rows/s and the importing process's peak RSS.
Targets: >= 20,000 rows/s, peak memory < 500 MB.

    .venv/bin/python benchmarks/import_items.py [--rows 1000000] [--db-url postgres://postgres@127.0.0.1:5432/umbra_bench_import]
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "how do i make bake explain write a the my for with without someone bank account password recipe poem "
    "story neighbour car phone email code python history science help quickly secretly safe dangerous"
).split()


def make_file(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(rows):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 30))) + f" #{i}"
            r = rng.random()
            label = "harmful" if r < 0.026 else ("unharmful" if r < 0.2 else None)
            fh.write(
                json.dumps(
                    {
                        "id": f"bench-{i}",
                        "text": text,
                        "prompt": None,
                        "label": label,
                        "category": None,
                        "source": "bench",
                    }
                )
                + "\n"
            )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--db-url", default="postgres://postgres@127.0.0.1:5432/umbra_bench_import")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "import.md"))
    args = ap.parse_args()
    env = {
        **os.environ,
        "DATABASE_URL": args.db_url,
        "DJANGO_SECRET_KEY": "bench",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    }
    dbname = args.db_url.rsplit("/", 1)[1]
    admin_url = args.db_url.rsplit("/", 1)[0] + "/postgres"
    py = sys.executable
    manage = [py, str(ROOT / "manage.py")]
    subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {dbname}"], check=True)
    subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {dbname}"], check=True)
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    subprocess.run(
        [
            *manage,
            "shell",
            "-c",
            "from annotations.services.projects import project_create as p; p(slug='bench', name='Bench')",
        ],
        env=env,
        check=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.jsonl"
        t = time.perf_counter()
        make_file(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.rows} rows ({size_mb:.0f} MB) in {time.perf_counter() - t:.1f}s", flush=True)
        t = time.perf_counter()
        proc = subprocess.run(
            [*manage, "import_items", "--project", "bench", "--file", str(path)],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t
        print(proc.stdout, proc.stderr)
        if proc.returncode:
            return proc.returncode
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        t = time.perf_counter()
        subprocess.run(
            [*manage, "import_items", "--project", "bench", "--file", str(path)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall_again = time.perf_counter() - t
    rate = args.rows / wall
    table = (
        f"| rows | file | wall time | rows/s | peak RSS (importer) | re-import (all duplicates) |\n"
        f"|---:|---:|---:|---:|---:|---:|\n"
        f"| {args.rows:,} | {size_mb:.0f} MB | {wall:.1f} s | {rate:,.0f} | {peak_mb:.0f} MB | {wall_again:.1f} s |\n"
    )
    note = (
        f"\nMachine: {os.cpu_count()} cores; PostgreSQL on the same machine. Wall time includes process start, "
        f"Django setup, streaming validation, COPY into a staging table and one INSERT … SELECT … ON CONFLICT "
        f"(items + imported human labels) in one transaction. Output: {proc.stdout.strip()}\n"
    )
    print(table + note)
    Path(args.out).write_text("# Import benchmark\n\n" + table + note)
    subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {dbname}"], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
