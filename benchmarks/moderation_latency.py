"""Moderation latency: /v1/moderations over HTTP (gunicorn on loopback) vs calling the scorer directly.

Measures single-text p50/p95 latency and batch-of-32 throughput with the default backbone
(all-MiniLM-L6-v2, the engine's serving format, two heads as MultiMatch saves them) on
``--threads`` CPU threads, and reports the web layer's overhead. The model is saved
untrained through the engine's save path: scoring cost does not depend on the weights.

The web side runs in a throwaway SQLite database under ``--workdir`` (migrated here), so no
shared database is touched. Usage::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/moderation_latency.py --out benchmarks/results/moderation.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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
    model, tok = build_model(backbone, n_heads=2, n_out=2, head_hidden=256, dropout=0.0, mode="full",
                             trainable_layers=2)
    meta = {"format": "umbra-ssl-model/1", "label_names": ["unharmful", "harmful"], "positive_index": 1,
            "threshold": 0.5, "algorithm": "multimatch", "n_heads": 2, "head_hidden": 256, "max_length": 128,
            "seed": 0, "backbone": backbone}
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
        out[k] = {"p50_ms": _pct(lat[k], 50), "p95_ms": _pct(lat[k], 95), "min_ms": min(lat[k]),
                  "batch_ms": med_batch * 1000, "batch_texts_per_s": batch / med_batch}
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-single", type=int, default=100)
    ap.add_argument("--n-batches", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None, help="Write the markdown report here.")
    args = ap.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="umbra-bench-"))
    env = {**os.environ, "DJANGO_DEBUG": "1", "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
           "UMBRA_VAR_DIR": str(work / "var"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(args.threads), "SSL_ENGINE_DEVICE": "cpu",
           "UMBRA_API_THROTTLE_TOKEN": "1000000/min", "UMBRA_API_THROTTLE_MODERATION": "1000000/min",
           "DJANGO_SETTINGS_MODULE": "moderation_app.settings", "PYTHONPATH": str(ROOT)}
    os.environ.update(env)

    import torch

    torch.set_num_threads(args.threads)
    model_dir = _model(work)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from annotations.models import ModelVersion, Role, TrainingRound
    from annotations.services.projects import membership_set, project_create
    from annotations.services.tokens import api_token_create

    project = project_create(slug="bench", name="Bench")
    user = get_user_model().objects.create_user("bench", password=None)
    membership_set(project=project, user=user, role=Role.ADMIN)
    rnd = TrainingRound.objects.create(project=project, algorithm="multimatch", status="succeeded",
                                       finished_at=timezone.now())
    mv = ModelVersion.objects.create(project=project, training_round=rnd, path=model_dir, threshold=0.5,
                                     is_active=True)
    key = api_token_create(user=user, name="bench", created_by=user).key
    texts = _texts()

    # (b) direct: the same scorer the web process caches
    from ssl_engine.engine import load_scorer

    scorer = load_scorer(model_dir, device="cpu")

    # (a) HTTP: gunicorn, one sync worker, on loopback; the client is a keep-alive httpx session
    import httpx

    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "moderation_app.wsgi:application", "-b",
         f"127.0.0.1:{port}", "-w", "1", "--threads", "1", "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"},
                              timeout=120)
        for _ in range(300):
            try:
                client.get("/api/projects/")
                break
            except httpx.TransportError:
                time.sleep(0.2)

        def http_call(xs):
            r = client.post("/v1/moderations", json={"input": xs})
            r.raise_for_status()
            return r.json()

        first = http_call(texts[:2])
        assert first["model"] == mv.name and len(first["results"]) == 2
        from django.test import Client

        django_client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {key}")

        def inproc_call(xs):
            r = django_client.post("/v1/moderations", {"input": xs}, content_type="application/json")
            assert r.status_code == 200, r.content
            return r.json()

        res = _measure_pair({"http": http_call, "inproc": inproc_call,
                             "direct": lambda xs: scorer.score(xs, batch_size=args.batch)},
                            texts, args.n_single, args.n_batches, args.batch)
        http, inproc, direct = res["http"], res["inproc"], res["direct"]
    finally:
        server.terminate()
        server.wait(timeout=30)

    over_p50 = (http["p50_ms"] - direct["p50_ms"]) / direct["p50_ms"] * 100
    over_p95 = (http["p95_ms"] - direct["p95_ms"]) / direct["p95_ms"] * 100
    over_batch = (direct["batch_texts_per_s"] / http["batch_texts_per_s"] - 1) * 100
    over_min = (http["min_ms"] - direct["min_ms"]) / direct["min_ms"] * 100
    lines = [
        "# Moderation endpoint latency", "",
        f"Backbone all-MiniLM-L6-v2 (2 heads, max_length 128), CPU, {args.threads} threads "
        f"(`torch.set_num_threads({args.threads})`, OMP_NUM_THREADS={args.threads}); {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}. Texts: the demo prompts (short chat prompts). "
        f"{args.n_single} single-text calls after warm-up; {args.n_batches} batches of {args.batch} "
        "(throughput from the median batch time). The two paths are interleaved call by call.", "",
        "(a) HTTP: `POST /v1/moderations` with a Bearer token to gunicorn (1 sync worker) on loopback, "
        "httpx keep-alive client in the benchmark process; includes auth, throttle check, JSON parse/validate, "
        "active-model lookup (SQLite here) and JSON rendering. (b) direct: `scorer.score(texts)` in-process.", "",
        "| path | single p50 (ms) | single p95 (ms) | single min (ms) | batch-32 (ms) | batch-32 (texts/s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| (a) HTTP endpoint | {http['p50_ms']:.1f} | {http['p95_ms']:.1f} | {http['min_ms']:.1f} | "
        f"{http['batch_ms']:.0f} | {http['batch_texts_per_s']:.0f} |",
        f"| (a') Django test client, in-process | {inproc['p50_ms']:.1f} | {inproc['p95_ms']:.1f} | "
        f"{inproc['min_ms']:.1f} | {inproc['batch_ms']:.0f} | {inproc['batch_texts_per_s']:.0f} |",
        f"| (b) scorer directly | {direct['p50_ms']:.1f} | {direct['p95_ms']:.1f} | {direct['min_ms']:.1f} | "
        f"{direct['batch_ms']:.0f} | {direct['batch_texts_per_s']:.0f} |", "",
        f"Web-layer overhead: single p50 {over_p50:+.1f} %, p95 {over_p95:+.1f} %, min {over_min:+.1f} %, "
        f"batch-32 {over_batch:+.1f} % (target ≤ 20 %). In-process web layer (a') vs (b): single p50 "
        f"{(inproc['p50_ms'] / direct['p50_ms'] - 1) * 100:+.1f} %, min {(inproc['min_ms'] / direct['min_ms'] - 1) * 100:+.1f} %, "
        f"batch-32 {(inproc['batch_ms'] / direct['batch_ms'] - 1) * 100:+.1f} %.", "",
        "The machine is shared (2 cores, other processes running), so absolute figures are noisy; the "
        "overhead compares runs taken back to back in the same session.",
        f"Reproduce: `OMP_NUM_THREADS={args.threads} .venv/bin/python benchmarks/moderation_latency.py --out "
        "benchmarks/results/moderation.md`.", "",
    ]
    report = "\n".join(lines)
    print(report)
    print(json.dumps({"http": http, "direct": direct}, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
