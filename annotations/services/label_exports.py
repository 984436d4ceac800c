"""Label exports with provenance (JSONL, Hugging Face datasets layout) and model exports (.tar.gz).

Every exported label says where it came from: ``human`` (the derived human label of the
item, with who labeled it and when), ``refined`` (the latest robust-UU refined weak label)
or ``pseudo`` (a prediction of a succeeded round). Precedence is human > refined > pseudo.
Files are written under ``MEDIA_ROOT/exports/`` and served only by the admin download view.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

import orjson
from django.conf import settings
from django.db import transaction

from annotations.errors import ApplicationError, Conflict, FieldError, NotFound
from annotations.models import (
    BackgroundJob,
    Item,
    ModelVersion,
    Project,
)
from annotations.selectors.labels import PROVENANCES, label_records
from annotations.services.jobs import JobRunner, job_create, job_enqueue, job_execute, runner

EXPORT_KINDS = ("labels_jsonl", "labels_hf", "model")


def labels_jsonl_write(
    *,
    project: Project,
    out: IO[bytes],
    include: tuple[str, ...] = PROVENANCES,
    on_items: Callable[[int], None] | None = None,
) -> Counter:
    """Write label records as JSONL to ``out``; returns counts by (provenance, label)."""
    counts: Counter = Counter()
    for rec in label_records(project=project, include=include, on_items=on_items):
        out.write(orjson.dumps(rec) + b"\n")
        counts[(rec["provenance"]["type"], rec["label"])] += 1
    return counts


def _hf_split(split: str) -> str:
    if split.startswith("bench:"):
        name = "".join(c if c.isalnum() else "_" for c in split[6:]).strip("_") or "bench"
        return f"bench_{name}"
    return "test" if split == Item.Split.TEST else "train"


def labels_hf_write(
    *,
    project: Project,
    folder: Path,
    include: tuple[str, ...] = PROVENANCES,
    on_items: Callable[[int], None] | None = None,
) -> dict:
    """Write a ``datasets``-loadable folder: ``data/<split>.jsonl`` plus a README dataset card."""
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    handles: dict[str, IO[bytes]] = {}
    counts: dict[str, Counter] = {}
    try:
        for rec in label_records(project=project, include=include, on_items=on_items):
            split = _hf_split(rec["split"])
            if split not in handles:
                handles[split] = open(data_dir / f"{split}.jsonl", "wb")  # noqa: SIM115 - one per split, closed below
                counts[split] = Counter()
            # Flat columns: datasets infers one schema for every file, so provenance is flattened.
            prov = rec.pop("provenance")
            rec["provenance"] = prov["type"]
            rec["labeled_by"] = ",".join(prov["by"]) if isinstance(prov["by"], list) else prov["by"]
            rec["labeled_at"] = prov["at"]
            rec["round"] = prov["round"]
            handles[split].write(orjson.dumps(rec) + b"\n")
            counts[split][(rec["provenance"], rec["label"])] += 1
    finally:
        for h in handles.values():
            h.close()
    (folder / "README.md").write_text(_dataset_card(project, counts), encoding="utf-8")
    return {split: {f"{p}/{label}": n for (p, label), n in sorted(c.items())} for split, c in counts.items()}


HF_FEATURES = (
    ("id", "string"),
    ("text", "string"),
    ("prompt", "string"),
    ("task", "string"),
    ("label", "string"),
    ("category", "string"),
    ("source", "string"),
    ("split", "string"),
    ("provenance", "string"),
    ("labeled_by", "string"),
    ("labeled_at", "string"),
    ("round", "int64"),
)


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


def markdown_text(value: str) -> str:
    """``value`` as literal Markdown text: one line, every Markdown/HTML special character escaped.

    A project name such as ``<img src=x onerror=…>`` or ``[x](javascript:…)`` must read as
    itself on the Hugging Face hub, which renders the card's Markdown and HTML.
    """
    one_line = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", one_line)


def _dataset_card(project: Project, counts: dict[str, Counter]) -> str:
    splits = sorted(counts, key=lambda s: (s != "train", s != "test", s))
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for s in splits:
        lines += [f"  - split: {s}", f"    path: data/{s}.jsonl"]
    # Explicit features: a column that is all-null in one split (prompt, category, round) must not
    # make datasets infer a different type per file.
    lines += ["dataset_info:", "  features:"]
    for name, dtype in HF_FEATURES:
        lines += [f"  - name: {name}", f"    dtype: {dtype}"]
    lines += [
        "task_categories:",
        "- text-classification",
        "language:",
        "- en",
        "---",
        "",
        f"# {markdown_text(project.name)} ({markdown_text(project.slug)}): {project.get_task_display().lower()} labels",
        "",
        "Exported from Umbra. Each row is an item with its label and where the label came from:",
        "`human` (annotators; `labeled_by` lists them), `refined` (robust UU refinement of weak labels)",
        "or `pseudo` (a prediction of training round `round`). Filter on `provenance` to keep only",
        "human labels.",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("path/to/this/folder")',
        "```",
        "",
        "## Counts",
        "",
        "| split | rows | harmful | unharmful | human | refined | pseudo |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in splits:
        c = counts[s]
        by_label = Counter()
        by_prov = Counter()
        for (p, label), n in c.items():
            by_label[label] += n
            by_prov[p] += n
        lines.append(
            f"| {s} | {sum(c.values())} | {by_label['harmful']} | {by_label['unharmful']} | "
            f"{by_prov['human']} | {by_prov['refined']} | {by_prov['pseudo']} |"
        )
    lines += ["", "## Label distribution", ""]
    total = Counter()
    for c in counts.values():
        for (_p, label), n in c.items():
            total[label] += n
    n_all = sum(total.values()) or 1
    for label in ("harmful", "unharmful"):
        lines.append(f"- {label}: {total[label]} ({100 * total[label] / n_all:.1f} %)")
    lines += [
        "",
        "## Fields",
        "",
        "`id`, `text`, `prompt` (response task only), `task`, `label`, `category`, "
        "`source`, `split`, `provenance`, `labeled_by`, `labeled_at`, `round`.",
        "",
    ]
    return "\n".join(lines)


def model_export_write(*, model_version: ModelVersion, out: IO[bytes]) -> dict:
    """Write the model version's Hugging Face folder as a .tar.gz (top folder ``<name>/``)."""
    src = Path(model_version.path)
    if not src.is_dir():
        raise ApplicationError(f"The files of model {model_version.name} are missing ({src}).")
    name = model_version.name
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add(str(src), arcname=name, filter=lambda ti: None if ti.issym() or ti.islnk() else ti)
        card = _model_card(model_version).encode("utf-8")
        info = tarfile.TarInfo(f"{name}/UMBRA_EXPORT.md")
        info.size = len(card)
        tar.addfile(info, io.BytesIO(card))
    return {"model": name, "threshold": model_version.threshold}


def _model_card(mv: ModelVersion) -> str:
    return "\n".join(
        [
            f"# {mv.name}",
            "",
            f"{mv.training_round.label} ({mv.training_round.algorithm}); "
            f"serving threshold {mv.threshold:.4f} on p(harmful).",
            "",
            "The encoder and tokenizer load with `transformers` (`AutoModel.from_pretrained(folder)`,",
            "`AutoTokenizer.from_pretrained(folder)`); the classification heads are in `heads.safetensors`",
            "and `umbra_model.json`. Umbra's loader reproduces the served scores:",
            "",
            "```python",
            "from ssl_engine.engine import load_scorer",
            "scorer = load_scorer(folder)",
            'scorer.score(["some text"])  # [(p_harmful, per-head p_harmful)]',
            "```",
            "",
        ]
    )


def _export_dir() -> Path:
    folder = Path(settings.MEDIA_ROOT) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def export_write(
    *,
    project: Project,
    kind: str,
    include: tuple[str, ...] = PROVENANCES,
    model_version: ModelVersion | None = None,
    dest: Path | None = None,
    on_items: Callable[[int], None] | None = None,
) -> dict:
    """Write one export file (``dest`` or a fresh file under the exports folder); returns the result dict."""
    if kind not in EXPORT_KINDS:
        raise ApplicationError(f"Unknown export kind {kind!r}; expected one of {list(EXPORT_KINDS)}.")
    suffix = ".jsonl" if kind == "labels_jsonl" else ".tar.gz"
    if dest is None:
        fd, tmp = tempfile.mkstemp(prefix=f"{project.slug}-{kind}-", suffix=suffix, dir=_export_dir())
        os.close(fd)
        dest = Path(tmp)
    part = dest.with_name(dest.name + ".part")
    result: dict = {"kind": kind}
    try:
        with open(part, "wb") as out:
            if kind == "labels_jsonl":
                counts = labels_jsonl_write(project=project, out=out, include=include, on_items=on_items)
                result["counts"] = {f"{p}/{label}": n for (p, label), n in sorted(counts.items())}
            elif kind == "labels_hf":
                with tempfile.TemporaryDirectory(dir=part.parent) as tmpdir:
                    top = Path(tmpdir) / f"{project.slug}-labels"
                    result["counts"] = labels_hf_write(project=project, folder=top, include=include, on_items=on_items)
                    with tarfile.open(fileobj=out, mode="w:gz") as tar:
                        tar.add(str(top), arcname=top.name)
            else:
                mv = (
                    model_version
                    or project.model_versions.filter(is_active=True).select_related("training_round").first()
                )
                if mv is None:
                    raise ApplicationError(f"Project {project.slug!r} has no active model version to export.")
                result.update(model_export_write(model_version=mv, out=out))
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    result["file"] = str(dest)
    result["filename"] = f"{project.slug}-{'model' if kind == 'model' else 'labels'}{suffix}"
    result["bytes"] = dest.stat().st_size
    return result


@transaction.atomic
def export_job_start(*, project: Project, user, kind: str, include: tuple[str, ...] = PROVENANCES) -> BackgroundJob:
    """Record an export job and enqueue it after commit (admins only)."""
    if kind not in EXPORT_KINDS:
        raise FieldError(f"Unknown export kind {kind!r}; expected one of {list(EXPORT_KINDS)}.", field="kind")
    if kind == "model" and not project.model_versions.filter(is_active=True).exists():
        raise Conflict(f"Project {project.slug!r} has no active model version to export.")
    job = job_create(
        model=BackgroundJob,
        project=project,
        kind=BackgroundJob.Kind.EXPORT,
        created_by=user,
        params={"export": kind, "include": list(include)},
        progress={"phase": "queued"},
    )
    job_enqueue(job=job)
    return job


@runner
class ExportRunner(JobRunner):
    """Writes one export file under MEDIA_ROOT/exports and records where it is."""

    name = BackgroundJob.Kind.EXPORT
    task = "annotations.export_job_run"
    queue = "celery"

    def run(self) -> dict:
        project, kind = self.job.project, self.job.params.get("export", "labels_jsonl")
        total = Item.objects.filter(project=project, excluded=False).count() if kind != "model" else 0
        self.progress.update(force=True, phase="writing", done=0, total=total)

        def on_items(done: int) -> None:  # per chunk of items; throttled, with an ETA (JobProgress)
            self.progress.update(phase="writing", done=done, total=total)

        result = export_write(
            project=project, kind=kind, include=tuple(self.job.params.get("include") or PROVENANCES), on_items=on_items
        )
        return {"result": result}


def export_job_execute(*, job_id: int, worker: str = "") -> str:
    """Run a queued export job on this worker (the task's body)."""
    return job_execute(runner_name=ExportRunner.name, job_id=job_id, worker=worker)


def export_file_for(*, job: BackgroundJob) -> tuple[Path, str]:
    """The finished export's file and download name (ApplicationError if it is not ready or gone)."""
    if job.kind != BackgroundJob.Kind.EXPORT:
        raise ApplicationError("This job is not an export.")
    if job.status != BackgroundJob.Status.SUCCEEDED or not job.result.get("file"):
        raise Conflict(f"{job.label} is {job.status}; nothing to download yet.")
    path = Path(job.result["file"])
    root = (Path(settings.MEDIA_ROOT) / "exports").resolve()
    if not path.resolve().is_relative_to(root) or not path.is_file():
        raise NotFound("The export file is no longer available; start a new export.")
    return path, job.result.get("filename") or path.name
