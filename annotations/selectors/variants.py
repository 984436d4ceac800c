"""Augmented variants: the review queue (pages and API), per-job counts, a word-level diff."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from annotations.models import AugmentedVariant, BackgroundJob, Project

VARIANT_PAGE_SIZE = 10
_TOKEN = re.compile(r"\s+|[^\s]+")
# The diff is quadratic in the worst case: only this many leading words (and spaces) of each side
# are compared, and each side is first clipped to what item pages show (ITEM_DISPLAY_MAX_CHARS).
DIFF_MAX_TOKENS = 2000


@dataclass(frozen=True)
class VariantFilters:
    status: str = AugmentedVariant.Status.PENDING
    method: str = ""
    kind: str = ""
    loss_flagged: bool = False  # only variants a round's loss check flagged


def variant_queue(*, project: Project, filters: VariantFilters | None = None) -> QuerySet[AugmentedVariant]:
    """Variants to review: adversarial and false-positive probes first, then by review priority."""
    f = filters or VariantFilters()
    qs = AugmentedVariant.objects.filter(item__project=project).select_related("item", "reviewer")
    if f.status:
        qs = qs.filter(status=f.status)
    if f.method:
        qs = qs.filter(method=f.method)
    if f.kind:
        qs = qs.filter(kind=f.kind)
    if f.loss_flagged:
        qs = qs.filter(curation__has_key="loss_flag")
    first = Case(
        When(kind=AugmentedVariant.Kind.AUGMENTATION, then=Value(1)), default=Value(0), output_field=IntegerField()
    )
    return qs.annotate(kind_rank=first).order_by("kind_rank", "-review_priority", "id")


def variant_methods(*, project: Project) -> list[str]:
    """Distinct generation methods present in the project (for the filter menu)."""
    return list(
        AugmentedVariant.objects.filter(item__project=project)
        .order_by("method")
        .values_list("method", flat=True)
        .distinct()
    )


def variant_in_project(*, project: Project, variant_id: int) -> AugmentedVariant | None:
    return AugmentedVariant.objects.filter(pk=variant_id, item__project=project).select_related("item").first()


def job_variant_counts(*, job: BackgroundJob) -> list[dict]:
    """Per-kind counts of a job's variants by review status (confirmed = approved by a reviewer)."""
    return list(
        AugmentedVariant.objects.filter(job=job)
        .values("kind")
        .order_by("kind")
        .annotate(
            total=Count("id"),
            pending=Count("id", filter=Q(status="pending")),
            confirmed=Count("id", filter=Q(status="approved")),
            rejected=Count("id", filter=Q(status="rejected")),
            dropped=Count("id", filter=Q(status="dropped")),
        )
    )


def job_variants_sample(*, job: BackgroundJob, limit: int = 20) -> QuerySet[AugmentedVariant]:
    return AugmentedVariant.objects.filter(job=job).select_related("item").order_by("-review_priority", "id")[:limit]


def word_diff(original: str, variant: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Word-level diff as (op, text) runs for each side; op is "" (same), "del" or "ins".

    The text stays plain: templates escape it and wrap the runs in <del>/<ins>. Long texts
    are bounded (a 1 MB item used to take a minute and return megabytes): each side is
    clipped to the page's display limit, only the first ``DIFF_MAX_TOKENS`` tokens are
    compared, and the rest is shown plain, still clipped, with a note.
    """
    from annotations.templatetags.umbra import ITEM_DISPLAY_MAX_CHARS

    sides = []
    for text in (original, variant):
        shown = text[:ITEM_DISPLAY_MAX_CHARS]
        tokens = _TOKEN.findall(shown)
        head = tokens[:DIFF_MAX_TOKENS]
        tail = "".join(tokens[DIFF_MAX_TOKENS:])
        cut = len(text) - len(shown)
        note = (f" … [not compared word by word past {DIFF_MAX_TOKENS} words]" if tail else "") + (
            f" … [{cut:,} more characters not shown]" if cut else ""
        )
        sides.append((head, tail, note))
    (a, a_tail, a_note), (b, b_tail, b_note) = sides
    left: list[tuple[str, str]] = []
    right: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            left.append(("", "".join(a[i1:i2])))
            right.append(("", "".join(b[j1:j2])))
            continue
        if i2 > i1:
            left.append(("del", "".join(a[i1:i2])))
        if j2 > j1:
            right.append(("ins", "".join(b[j1:j2])))
    for runs, tail, note in ((left, a_tail, a_note), (right, b_tail, b_note)):
        if tail or note:
            runs.append(("", tail + note))
    return left, right


def judge_votes(variant: AugmentedVariant) -> list[tuple[str, str]]:
    """(judge, vote) pairs from the curation JSON, whatever shape the curator wrote."""
    curation = variant.curation or {}
    votes = curation.get("judge_votes") or curation.get("votes") or curation.get("judges") or []
    out: list[tuple[str, str]] = []
    if isinstance(votes, int) and not isinstance(votes, bool):
        return [("LLM judges", f"{curation.get('judge_yes', 0)} of {votes} say the variant keeps the intent")]
    if isinstance(votes, dict):
        out = [(str(k), str(v)) for k, v in votes.items()]
    elif isinstance(votes, list):
        for i, v in enumerate(votes):
            if isinstance(v, dict):
                name = v.get("judge") or v.get("model") or v.get("name") or f"judge {i + 1}"
                vote = v.get("vote") or v.get("label") or v.get("verdict") or v.get("decision") or ""
                out.append((str(name), str(vote)))
            else:
                out.append((f"judge {i + 1}", str(v)))
    return out
