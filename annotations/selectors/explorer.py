"""Read side of the data explorer: filtered, sorted, keyset-paged items; an item's label history; similar items.

Pages are keyset (cursor) pages: ``WHERE (sort_key, id) > (last_key, last_id) ORDER BY
sort_key, id LIMIT n`` as a row comparison, so page 10,000 costs what page 1 costs, and
nothing is counted (one row past the page says whether more follow). Full-text search
uses PostgreSQL's stored ``search_tsv`` column and its GIN index (migration
0010) or SQLite's FTS5 table (``annotations.fts``); the same words find the same items on
both. Filters and sorts on the model's view of an item (pseudo-label, p(harmful),
agreement, review priority) read the active model's round.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, Exists, F, FilteredRelation, Max, Min, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan

from annotations.fts import FTS_TABLE, sqlite_any_query, sqlite_match_query
from annotations.models import ROLE_RANK, Annotation, Item, Prediction, Project, Role, TrainingRound, WeakLabel
from annotations.selectors.predictions import active_review_round

PAGE_SIZE = 50
SIMILAR_LIMIT = 5
SIMILAR_CANDIDATES = 50

# sort name -> (column path, label, needs the active round's prediction)
SORTS: dict[str, tuple[str, str, bool]] = {
    "id": ("id", "Item id", False),
    "split": ("split", "Split", False),
    "human_label": ("human_label", "Human label", False),
    "category": ("human_category", "Category", False),
    "votes": ("annotation_count", "Votes", False),
    "p_harmful": ("pred__p_harmful", "p(harmful)", True),
    "pseudo_label": ("pred__pseudo_label", "Pseudo-label", True),
    "agreement": ("pred__agreement", "Agreement", True),
    "priority": ("pred__review_priority", "Review priority", True),
}
SENIOR_ROLES = [r for r in Role.values if ROLE_RANK[r] >= ROLE_RANK[Role.REVIEWER]]
DECISION_KINDS = [k for k in Annotation.Kind.values if k != Annotation.Kind.UNDO]


@dataclass(frozen=True)
class ItemFilters:
    q: str = ""
    split: str = ""
    human_label: str = ""  # harmful / unharmful / none / excluded
    pseudo_label: str = ""
    p_min: float | None = None
    p_max: float | None = None
    agreement: str = ""
    reviewed: str = ""  # yes / no: a reviewer or admin has decided on the item
    category: str = ""
    annotator: int | None = None
    disagreement: bool = False
    sort: str = "id"
    descending: bool = True

    def needs_prediction(self) -> bool:
        return bool(
            self.pseudo_label
            or self.agreement
            or self.p_min is not None
            or self.p_max is not None
            or SORTS[self.sort][2]
        )


@dataclass
class ItemPage:
    items: list[Item]
    next_cursor: str = ""
    training_round: TrainingRound | None = None
    notes: list[str] = field(default_factory=list)


def encode_cursor(value, pk: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([value, pk]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[object, int] | None:
    """The (sort value, id) a page starts after; None for a missing or malformed cursor."""
    if not cursor:
        return None
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        return None
    if not isinstance(pk, int) or not (value is None or isinstance(value, (str, int, float))):
        return None
    return value, pk


# Up to this many matches, a search fetches the matching ids from the GIN index first and pages
# over them; a more frequent word is cheaper to find by walking the page order and checking each row.
FTS_ID_FETCH = 1000


def fulltext_filter(qs: QuerySet[Item], text: str) -> QuerySet[Item]:
    """Items whose text or prompt contains every word of ``text`` (full-text, both databases)."""
    if connection.vendor == "postgresql":
        match = RawSQL(
            "annotations_item.search_tsv @@ plainto_tsquery('simple'::regconfig, %s)",
            [text],
            output_field=BooleanField(),
        )
        ids = list(Item.objects.filter(match).values_list("id", flat=True)[: FTS_ID_FETCH + 1])
        if len(ids) <= FTS_ID_FETCH:
            return qs.filter(id__in=ids)
        return qs.filter(match)
    if connection.vendor == "sqlite":
        query = sqlite_match_query(text)
        if not query:
            return qs
        return qs.filter(
            RawSQL(
                f"annotations_item.id IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s)",
                [query],
                output_field=BooleanField(),
            )
        )
    return qs.filter(Q(text__icontains=text) | Q(prompt__icontains=text))


def explorer_queryset(
    *, project: Project, filters: ItemFilters, cursor: str = "", training_round: TrainingRound | None = None
) -> tuple[QuerySet[Item], ItemFilters, list[str]]:
    """The ordered queryset behind one explorer page (also EXPLAINed by benchmarks/explorer_speed.py)."""
    notes = []
    f = filters
    if f.needs_prediction() and training_round is None:
        notes.append("No active model: filters and sorts on the model's view of an item are ignored.")
        f = replace(f, pseudo_label="", agreement="", p_min=None, p_max=None, sort="id" if SORTS[f.sort][2] else f.sort)
    qs = Item.objects.filter(project=project)
    after = decode_cursor(cursor)
    if training_round is not None and f.needs_prediction():
        # One inner join to the active round's prediction: every condition on it goes into one filter()
        # call (a reverse relation gets a new join per call), and ordering by (p_harmful, item_id) walks
        # prediction_explorer_p_idx. Items the round did not score drop out.
        conditions = [Q(predictions__training_round=training_round), *_prediction_conditions(f)]
        column = SORTS[f.sort][0].replace("pred__", "predictions__")
        if after is not None:
            lookup = TupleLessThan if f.descending else TupleGreaterThan
            conditions.append(lookup(Tuple(F(column), F("predictions__item_id")), after))
        qs = qs.filter(*conditions).annotate(
            p_harmful=F("predictions__p_harmful"),
            pseudo_label=F("predictions__pseudo_label"),
            agreement=F("predictions__agreement"),
            review_priority=F("predictions__review_priority"),
        )
        tie = "predictions__item_id"
        if SORTS[f.sort][2]:
            notes.append("Sorted by the model's view: items the active model did not score are left out.")
    else:
        if training_round is not None:  # shown next to each row: a left join, no condition on it
            qs = qs.annotate(
                pred=FilteredRelation("predictions", condition=Q(predictions__training_round=training_round))
            )
            qs = qs.annotate(
                p_harmful=F("pred__p_harmful"),
                pseudo_label=F("pred__pseudo_label"),
                agreement=F("pred__agreement"),
                review_priority=F("pred__review_priority"),
            )
        column, tie = SORTS[f.sort][0], "id"
        if after is not None:
            lookup = TupleLessThan if f.descending else TupleGreaterThan
            qs = qs.filter(lookup(Tuple(F(column), F("id")), after))
    qs = _apply_filters(qs, f)
    order = [F(column).desc(), F(tie).desc()] if f.descending else [F(column).asc(), F(tie).asc()]
    return qs.order_by(*order), f, notes


def explorer_items(*, project: Project, filters: ItemFilters, cursor: str = "", limit: int = PAGE_SIZE) -> ItemPage:
    """One keyset page of the project's items under ``filters``, with the active round's prediction annotated."""
    training_round = active_review_round(project=project)
    qs, f, notes = explorer_queryset(project=project, filters=filters, cursor=cursor, training_round=training_round)
    rows = list(qs[: limit + 1])
    next_cursor = ""
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(_sort_value(last, f.sort), last.pk)
    return ItemPage(items=rows, next_cursor=next_cursor, training_round=training_round, notes=notes)


def _sort_value(item: Item, sort: str):
    column = SORTS[sort][0]
    return getattr(item, column.removeprefix("pred__"))


def _prediction_conditions(f: ItemFilters) -> list[Q]:
    conditions = []
    if f.pseudo_label:
        conditions.append(Q(predictions__pseudo_label=f.pseudo_label))
    if f.agreement:
        conditions.append(Q(predictions__agreement=f.agreement))
    if f.p_min is not None:
        conditions.append(Q(predictions__p_harmful__gte=f.p_min))
    if f.p_max is not None:
        conditions.append(Q(predictions__p_harmful__lte=f.p_max))
    return conditions


def _apply_filters(qs: QuerySet[Item], f: ItemFilters) -> QuerySet[Item]:
    if f.q:
        qs = fulltext_filter(qs, f.q)
    if f.split:
        qs = qs.filter(split=f.split)
    if f.human_label == "none":
        qs = qs.filter(human_label="", excluded=False)
    elif f.human_label == "excluded":
        qs = qs.filter(excluded=True)
    elif f.human_label:
        qs = qs.filter(human_label=f.human_label)
    if f.category:
        qs = qs.filter(human_category=f.category)
    if f.disagreement:
        qs = qs.filter(votes_disagree=True)
    if f.annotator is not None:
        mine = Annotation.objects.filter(annotator_id=f.annotator, kind__in=DECISION_KINDS)
        # The id range of the person's items bounds the item scan: without it a page in id order walks
        # every newer item (the pool) before reaching the seed items they labeled.
        bounds = mine.aggregate(lo=Min("item_id"), hi=Max("item_id"))
        if bounds["lo"] is None:
            return qs.none()
        qs = qs.filter(id__in=mine.values("item_id"), id__gte=bounds["lo"], id__lte=bounds["hi"])
    if f.reviewed:
        senior = Exists(
            Annotation.objects.filter(item_id=OuterRef("pk"), role__in=SENIOR_ROLES, kind__in=DECISION_KINDS)
        )
        qs = qs.filter(senior if f.reviewed == "yes" else ~senior)
    return qs


def item_in_project(*, project: Project, item_id: int) -> Item | None:
    return Item.objects.filter(pk=item_id, project=project).select_related("project").first()


@dataclass(frozen=True)
class HistoryEntry:
    """One row of an item's label history: a human's annotation or a machine's label."""

    when: datetime | None
    who: str
    role: str
    source: str  # "human" or "machine"
    what: str
    label: str
    round_label: str = ""
    detail: str = ""
    annotation: Annotation | None = None


def item_label_history(*, item: Item) -> list[HistoryEntry]:
    """Every human row and every machine label of ``item``, oldest first (three queries)."""
    entries = []
    for a in item.annotations.select_related("annotator", "prediction__training_round").order_by("created_at", "id"):
        what = a.get_kind_display()
        entries.append(
            HistoryEntry(
                when=a.created_at,
                who=a.annotator.get_username(),
                role=a.get_role_display(),
                source="human",
                what=what,
                label=a.label or ("unusable" if a.kind == Annotation.Kind.REJECT else "—"),
                round_label=a.prediction.training_round.label if a.prediction_id else "",
                detail=" · ".join(x for x in (a.category, a.note) if x),
                annotation=a,
            )
        )
    for p in Prediction.objects.filter(item=item).select_related("training_round").order_by("training_round_id"):
        rnd = p.training_round
        entries.append(
            HistoryEntry(
                when=rnd.finished_at or rnd.created_at,
                who=f"model of {rnd.label}",
                role=rnd.algorithm,
                source="machine",
                what="Pseudo-label",
                label=p.pseudo_label,
                round_label=rnd.label,
                detail=f"p(harmful) {p.p_harmful:.3f}" + (f" · {p.review_reason}" if p.review_reason else ""),
            )
        )
    for w in WeakLabel.objects.filter(item=item).select_related("job").order_by("created_at", "id"):
        entries.append(
            HistoryEntry(
                when=w.created_at,
                who=w.get_source_display(),
                role="",
                source="machine",
                what="Weak label",
                label=w.label,
                round_label=w.job.label if w.job_id else "",
                detail=(f"score {w.score:.3f}" if w.score is not None else "")
                + (f" · iteration {w.iteration}" if w.iteration else ""),
            )
        )
    entries.sort(key=lambda e: (e.when is None, e.when or datetime.min))
    return entries


def _telling_words(text: str, n: int = 12) -> list[str]:
    import re

    words = {w.lower() for w in re.findall(r"[^\W\d_]{3,}", text, re.UNICODE)}
    return sorted(words, key=lambda w: (-len(w), w))[:n]


def similar_candidates(*, item: Item, limit: int = SIMILAR_CANDIDATES, labeled_only: bool = True) -> list[Item]:
    """Items of the project sharing the most telling words with ``item`` (full-text rank), on both databases."""
    words = _telling_words(item.text + " " + item.prompt)
    if not words:
        return []
    qs = Item.objects.filter(project_id=item.project_id).exclude(pk=item.pk)
    if labeled_only:
        qs = qs.exclude(human_label="")
    if connection.vendor == "postgresql":
        tsv = "annotations_item.search_tsv"
        query = "to_tsquery('simple'::regconfig, %s)"
        terms = " | ".join(words)
        qs = qs.filter(RawSQL(f"{tsv} @@ {query}", [terms], output_field=BooleanField()))
        qs = qs.annotate(rank=RawSQL(f"ts_rank({tsv}, {query})", [terms])).order_by("-rank", "id")
        return list(qs[:limit])
    if connection.vendor == "sqlite":
        with connection.cursor() as cur:  # FTS5 rank order (bm25); labeled ones kept below
            cur.execute(
                f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s ORDER BY rank LIMIT %s",
                [sqlite_any_query(words), limit * 20],
            )
            order = [r[0] for r in cur.fetchall()]
        found = qs.in_bulk(order)
        return [found[i] for i in order if i in found][:limit]
    return []


_EMBEDDER: dict[str, object] = {}


def _embed(texts: list[str]):
    """MiniLM sentence embeddings (the bundled model, loaded once per process); None if unavailable."""
    from django.conf import settings

    if not getattr(settings, "UMBRA_SIMILAR_EMBEDDINGS", True):
        return None
    try:
        if "embed" not in _EMBEDDER:
            from ssl_engine.augment.curation import minilm_embedder

            _EMBEDDER["embed"] = minilm_embedder(max_length=128)
        return _EMBEDDER["embed"](texts)
    except (ImportError, OSError) as exc:  # model files or torch missing: full-text rank only
        _EMBEDDER["error"] = repr(exc)
        return None


def similar_labeled_items(*, item: Item, limit: int = SIMILAR_LIMIT) -> tuple[list[Item], str]:
    """Labeled items closest in meaning to ``item``, and how they were found (both databases).

    Candidates share words with the item (full-text rank, up to 50); they are re-ranked by
    cosine similarity of the bundled MiniLM sentence embeddings when that model loads, else
    kept in full-text order.
    """
    candidates = similar_candidates(item=item)
    if not candidates:
        return [], "No labeled item shares a telling word with this one."
    texts = [item.prompt + "\n\n" + item.text if item.prompt else item.text]
    texts += [c.prompt + "\n\n" + c.text if c.prompt else c.text for c in candidates]
    emb = _embed(texts)
    if emb is None:
        return candidates[:limit], "Closest labeled items by shared words (full-text rank)."
    sims = emb[1:] @ emb[0]
    order = sorted(range(len(candidates)), key=lambda i: -float(sims[i]))[:limit]
    for i in order:
        candidates[i].similarity = float(sims[i])
    return [candidates[i] for i in order], (
        "Labeled items sharing words with this one, ranked by meaning (MiniLM sentence-embedding cosine)."
    )
