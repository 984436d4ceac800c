"""Moderation latency: /v1/moderations over HTTP (gunicorn on loopback) vs calling the scorer directly.

Two measurements of the same request, both against the default backbone (all-MiniLM-L6-v2,
the engine's serving format, two heads as MultiMatch saves them, saved untrained through the
engine's save path: scoring cost does not depend on the weights):

1. **CPU split** (robust on a shared machine): each request goes through the Django test
   client in this process; ``time.process_time`` around the request and around the scorer's
   ``score`` call inside it gives the web layer's CPU (everything but the scorer) against the
   scorer's own CPU, per request, median over ``--n-single`` single texts and ``--n-batches``
   batches of ``--batch``. A cProfile summary of the web part follows (scorer stubbed out).
2. **Wall latency** (``--http``): gunicorn with one sync worker on loopback and an httpx
   keep-alive client, interleaved call by call with direct scorer calls; the worker's own CPU
   per request is read from /proc as well.

The web side runs with ``DEBUG`` off (``UMBRA_DEMO=1``), as in production, against a throwaway
SQLite database under ``--workdir`` or, with ``--db postgres``, the PostgreSQL database named
by ``DATABASE_URL`` (a fresh project is created in it; nothing else is touched). Usage::

    .venv/bin/python benchmarks/moderation_latency.py --threads 1 --http --out benchmarks/results/moderation.md
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _texts() -> list[str]:
    rows = []
    for name in ("prompts_pool.jsonl", "prompts_test.jsonl", "prompts_seed.jsonl"):
        with open(ROOT / "demo_data" / name) as fh:
            rows += [json.loads(line)["text"] for line in fh if line.strip()]
    return rows


def _model(folder: Path) -> str:
    from ssl_engine.model import build_model, default_backbone, save_model

    backbone = default_backbone()
    model, tok = build_model(
        backbone, n_heads=2, n_out=2, head_hidden=256, dropout=0.0, mode="full", trainable_layers=2
    )
    meta = {
        "format": "umbra-ssl-model/1",
        "label_names": ["unharmful", "harmful"],
        "positive_index": 1,
        "threshold": 0.5,
        "algorithm": "multimatch",
        "n_heads": 2,
        "head_hidden": 256,
        "max_length": 128,
        "seed": 0,
        "backbone": backbone,
    }
    return save_model(model, tok, str(folder / "model"), meta, 2)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1)))))
    return xs[k]


def _measure_pair(calls: dict, texts: list[str], n_single: int, n_batches: int, batch: int) -> dict:
    """Interleave the paths call by call (alternating order) so load drift on a shared machine hits both alike."""
    for call in calls.values():
        for t in texts[:10]:
            call([t])  # warm-up
        call(texts[:batch])
    lat = {k: [] for k in calls}
    bt = {k: [] for k in calls}
    names = list(calls)
    for i in range(n_single):
        for k in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            calls[k]([texts[i % len(texts)]])
            lat[k].append((time.perf_counter() - t0) * 1000)
    for b in range(n_batches):
        s = (b * batch) % max(1, len(texts) - batch)
        for k in names if b % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            calls[k](texts[s : s + batch])
            bt[k].append(time.perf_counter() - t0)
    out = {}
    for k in names:
        lat[k] = lat[k] or [0.0]
        med_batch = statistics.median(bt[k])
        out[k] = {
            "p50_ms": _pct(lat[k], 50),
            "p95_ms": _pct(lat[k], 95),
            "min_ms": min(lat[k]),
            "batch_ms": med_batch * 1000,
            "batch_texts_per_s": batch / med_batch,
        }
    return out


class _ScorerClock:
    """Wraps a scorer's ``score`` to add up the process CPU time spent inside it."""

    def __init__(self, scorer):
        self.scorer, self.inner, self.cpu = scorer, scorer.score, 0.0

    def __enter__(self):
        def timed(*a, **k):
            t0 = time.process_time()
            try:
                return self.inner(*a, **k)
            finally:
                self.cpu += time.process_time() - t0

        self.scorer.score = timed
        return self

    def __exit__(self, *exc):
        self.scorer.score = self.inner


def _cpu_split(call, scorer, texts: list[str], n_single: int, n_batches: int, batch: int) -> dict:
    """Median per-request CPU ms: web layer (request minus scorer) and scorer, single text and batch."""
    out = {}
    with _ScorerClock(scorer) as clock:
        for kind, n, size in (("single", n_single, 1), ("batch", n_batches, batch)):
            web, sc = [], []
            for i in range(n):
                s = (i * size) % max(1, len(texts) - size)
                before = clock.cpu
                t0 = time.process_time()
                call(texts[s : s + size])
                total = time.process_time() - t0
                inside = clock.cpu - before
                web.append((total - inside) * 1000)
                sc.append(inside * 1000)
            out[kind] = {
                "web_ms": statistics.median(web),
                "scorer_ms": statistics.median(sc),
                "web_p90_ms": _pct(web, 90),
            }
            out[kind]["overhead_pct"] = out[kind]["web_ms"] / out[kind]["scorer_ms"] * 100
    return out


def _web_profile(call, scorer, texts: list[str], n: int, top: int = 40) -> str:
    """cProfile of ``n`` single-text requests with the scorer replaced by a constant answer."""
    inner = scorer.score
    scorer.score = lambda xs, prompts=None, batch_size=32: [(0.25, (0.2, 0.3))] * len(xs)
    try:
        prof = cProfile.Profile()
        prof.enable()
        for i in range(n):
            call([texts[i % len(texts)]])
        prof.disable()
    finally:
        scorer.score = inner
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top // 2)
    return buf.getvalue()


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _setup_app(work: Path, args) -> dict:
    env = {
        "UMBRA_DEMO": "1",
        "DJANGO_DEBUG": "0",
        "UMBRA_VAR_DIR": str(work / "var"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": str(args.threads),
        "SSL_ENGINE_DEVICE": "cpu",
        "UMBRA_NUM_THREADS": str(args.threads),
        "UMBRA_API_THROTTLE_TOKEN": "1000000/min",
        "UMBRA_API_THROTTLE_MODERATION": "1000000/min",
        "DJANGO_SETTINGS_MODULE": "moderation_app.settings",
        "PYTHONPATH": str(ROOT),
    }
    if args.runtime:
        env["UMBRA_SCORER_RUNTIME"] = args.runtime
    if args.db == "sqlite":
        env["DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    elif not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        raise SystemExit("--db postgres needs DATABASE_URL=postgres://…/<a database of your own>")
    os.environ.update(env)
    return {**os.environ, **env}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-single", type=int, default=200)
    ap.add_argument("--n-batches", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--runtime", default=None, help="UMBRA_SCORER_RUNTIME for the served model (default: settings)")
    ap.add_argument("--http", action="store_true", help="Also measure wall latency over HTTP (gunicorn).")
    ap.add_argument("--profile", type=int, default=200, help="Requests in the cProfile summary (0: none).")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None, help="Write the markdown report here.")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="umbra-bench-"))
    env = _setup_app(work, args)

    import torch

    torch.set_num_threads(args.threads)
    model_dir = _model(work)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from annotations.models import ModelVersion, Role, TrainingRound
    from annotations.services.moderation import scorer_for
    from annotations.services.projects import membership_set, project_create
    from annotations.services.tokens import api_token_create

    slug = f"bench-{uuid.uuid4().hex[:8]}"
    project = project_create(slug=slug, name="Bench")
    user = get_user_model().objects.create_user(slug, password=None)
    membership_set(project=project, user=user, role=Role.ADMIN)
    rnd = TrainingRound.objects.create(
        project=project, algorithm="multimatch", status="succeeded", finished_at=timezone.now()
    )
    mv = ModelVersion.objects.create(project=project, training_round=rnd, path=model_dir, threshold=0.5, is_active=True)
    key = api_token_create(user=user, name="bench", created_by=user).key
    texts = _texts()
    django_client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {key}")

    def inproc_call(xs):
        r = django_client.post("/v1/moderations", {"input": xs}, content_type="application/json")
        assert r.status_code == 200, r.content
        return r.json()

    first = inproc_call(texts[:2])
    assert first["model"] == mv.name and len(first["results"]) == 2
    scorer = scorer_for(model_version=mv)  # the process-wide scorer the requests use
    runtime = getattr(scorer, "runtime", "fp32")
    for t in texts[:20]:
        inproc_call([t])
    load_before = os.getloadavg()
    cpu = _cpu_split(inproc_call, scorer, texts, args.n_single, args.n_batches, args.batch)
    load_after = os.getloadavg()
    profile = _web_profile(inproc_call, scorer, texts, args.profile) if args.profile else ""

    http = direct = None
    if args.http:
        import logging

        import httpx

        logging.getLogger("httpx").setLevel(logging.WARNING)  # a log line per request would be timed too
        port = _free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "moderation_app.wsgi:application",
                "-b",
                f"127.0.0.1:{port}",
                "-w",
                "1",
                "--threads",
                "1",
                "--timeout",
                "120",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=120
            )
            for _ in range(300):
                try:
                    client.get("/api/projects/")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            import psutil

            worker = psutil.Process(server.pid).children()[0].pid

            def http_call(xs):
                r = client.post("/v1/moderations", json={"input": xs})
                r.raise_for_status()
                return r.json()

            http_call(texts[:2])
            res = _measure_pair(
                {"http": http_call, "direct": lambda xs: scorer.score(xs, batch_size=args.batch)},
                texts,
                args.n_single,
                args.n_batches,
                args.batch,
            )
            http, direct = res["http"], res["direct"]
            c0 = _proc_cpu(worker)
            for i in range(args.n_single):
                http_call([texts[i % len(texts)]])
            http["worker_cpu_ms"] = (_proc_cpu(worker) - c0) / args.n_single * 1000
        finally:
            server.terminate()
            server.wait(timeout=30)

    single, batch = cpu["single"], cpu["batch"]
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    lines = [
        "# Moderation endpoint: web layer vs scorer",
        "",
        f"Backbone all-MiniLM-L6-v2 (2 heads, max_length 128), scorer runtime **{runtime}**, CPU, "
        f"{args.threads} torch thread(s); {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"database {db}, DEBUG off. Texts: the demo prompts (short chat prompts). Load average "
        f"{load_before[0]:.1f} before / {load_after[0]:.1f} after the CPU measurement (the machine is shared).",
        "",
        "## CPU per request (Django test client in-process, `time.process_time`)",
        "",
        f"Median of {args.n_single} single-text requests and {args.n_batches} batches of {args.batch}. "
        "Web = the whole request (middleware, token auth, throttle, validation, project/model lookup, JSON) "
        "minus the scorer's own call.",
        "",
        "| request | web CPU (ms) | web p90 (ms) | scorer CPU (ms) | web / scorer | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| single text | {single['web_ms']:.2f} | {single['web_p90_ms']:.2f} | {single['scorer_ms']:.1f} | "
        f"{single['overhead_pct']:.1f} % | ≤ 20 % |",
        f"| batch of {args.batch} | {batch['web_ms']:.2f} | {batch['web_p90_ms']:.2f} | {batch['scorer_ms']:.1f} | "
        f"{batch['overhead_pct']:.1f} % | ≤ 10 % |",
        "",
    ]
    if http:
        over_p50 = (http["p50_ms"] - direct["p50_ms"]) / direct["p50_ms"] * 100
        over_batch = (direct["batch_texts_per_s"] / http["batch_texts_per_s"] - 1) * 100
        lines += [
            "## Wall latency over HTTP (gunicorn, 1 sync worker, loopback, httpx keep-alive client)",
            "",
            "HTTP and direct scorer calls interleaved call by call; the client runs in this process on the same "
            "cores, so its own CPU lands in the HTTP figure.",
            "",
            "| path | single p50 (ms) | single p95 (ms) | single min (ms) | batch-32 (ms) | batch-32 (texts/s) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| HTTP endpoint | {http['p50_ms']:.1f} | {http['p95_ms']:.1f} | {http['min_ms']:.1f} | "
            f"{http['batch_ms']:.0f} | {http['batch_texts_per_s']:.0f} |",
            f"| scorer directly | {direct['p50_ms']:.1f} | {direct['p95_ms']:.1f} | {direct['min_ms']:.1f} | "
            f"{direct['batch_ms']:.0f} | {direct['batch_texts_per_s']:.0f} |",
            "",
            f"Wall overhead: single p50 {over_p50:+.1f} %, batch-{args.batch} {over_batch:+.1f} %. The gunicorn "
            f"worker's CPU per single-text request (scorer included): {http['worker_cpu_ms']:.1f} ms.",
            "",
        ]
    lines += [
        f"Reproduce: `.venv/bin/python benchmarks/moderation_latency.py --threads {args.threads} --db {args.db}"
        f"{' --http' if args.http else ''}{f' --runtime {args.runtime}' if args.runtime else ''}`.",
        "",
    ]
    if profile:
        lines += ["## Web-layer profile (scorer stubbed out)", "", "```", profile.strip(), "```", ""]
    report = "\n".join(lines)
    print(report)
    print(json.dumps({"cpu": cpu, "http": http, "direct": direct}, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
