"""Umbra's data model.

Human labels (``Annotation``) and machine outputs (``Prediction``, ``WeakLabel``,
``AugmentedVariant``) live in separate tables and never mix. Invariants are database
constraints; business rules live in ``annotations.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


ROLE_RANK = {Role.ANNOTATOR: 1, Role.REVIEWER: 2, Role.ADMIN: 3}


class Label(models.TextChoices):
    HARMFUL = "harmful", "Harmful"
    UNHARMFUL = "unharmful", "Unharmful"


class JobStatus(models.TextChoices):
    """Lifecycle of a training round or background job."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(models.Model):
    """What every background job row has (NetBox's ``Job``): status, timestamps, heartbeat, progress, error.

    Training rounds and the other background jobs share it; ``annotations.services.jobs``
    is the only code that moves a job between statuses. ``number`` counts the jobs of one
    project (and kind), so a project's first import is "Import job 1" whatever other
    projects did; URLs and the API keep the global primary key.
    """

    Status = JobStatus
    ACTIVE_STATUSES = ACTIVE_JOB_STATUSES

    number = models.PositiveIntegerField(default=0, editable=False, help_text="Per project (and kind), from 1.")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    progress = models.JSONField(default=dict, blank=True, help_text="phase, done/total (or step/total), eta")
    error = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=200, blank=True, default="", help_text="Host of the worker that runs it.")
    claim = models.CharField(
        max_length=32,
        blank=True,
        default="",
        editable=False,
        help_text="Token of the current claim: a worker that lost it stops writing.",
    )

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_JOB_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def kind_label(self) -> str:
        raise NotImplementedError

    @property
    def label(self) -> str:
        """How people name it: "round #3", "Import job 1"…"""
        return f"{self.kind_label} #{self.number or self.pk}"


class Project(models.Model):
    """A labeling effort for one task: prompt harmfulness or response harmfulness."""

    class Task(models.TextChoices):
        PROMPT = "prompt", "Prompt harmfulness"
        RESPONSE = "response", "Response harmfulness"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    task = models.CharField(max_length=16, choices=Task.choices, default=Task.PROMPT)
    categories = models.JSONField(default=list, blank=True, help_text="Harm category names, in key order 1…9.")
    guidelines = models.TextField(blank=True, help_text="Markdown; rendered sanitised.")
    annotations_per_item = models.PositiveSmallIntegerField(
        default=1, help_text="How many annotators label each seed item (overlap for agreement)."
    )
    use_unreviewed_curated_variants = models.BooleanField(
        default=False, help_text="Train on curated augmentations that no reviewer has seen yet."
    )
    use_refined_labels = models.BooleanField(
        default=False,
        help_text="Feed the latest UU-refined labels of unlabeled pool items to SSL rounds as "
        "weighted pseudo-labels (never as human labels).",
    )
    refined_label_weight = models.FloatField(default=0.5, help_text="Training weight of a refined label (0-1).")
    min_labels_per_class = models.PositiveIntegerField(
        default=20,
        help_text="Human labels of each class a round must have trained on before its model is "
        "activated automatically (or without a warning).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(annotations_per_item__gte=1) & Q(annotations_per_item__lte=9),
                name="project_overlap_1_to_9",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one project; roles are ordered annotator < reviewer < admin."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_membership_per_user")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.project}: {self.role}"


class Item(models.Model):
    """One text to judge (for the response task: a prompt and its response)."""

    class Split(models.TextChoices):
        POOL = "pool", "Unlabeled pool"
        SEED = "seed", "Seed set"
        TEST = "test", "Test"
        BENCH = "bench", "External benchmark"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="items")
    text = models.TextField()
    prompt = models.TextField(blank=True, default="")
    content_hash = models.CharField(max_length=64)
    split = models.CharField(max_length=8, choices=Split.choices, default=Split.POOL)
    bench_name = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=100, blank=True, default="")
    external_id = models.CharField(max_length=200, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Derived from the Annotation history by annotations.services.labels (never edited by hand).
    human_label = models.CharField(max_length=16, choices=Label.choices, blank=True, default="")
    human_category = models.CharField(max_length=100, blank=True, default="")
    excluded = models.BooleanField(default=False, help_text="Rejected as unusable/ambiguous by a reviewer.")
    seed_weight = models.FloatField(
        default=1.0,
        db_default=1.0,
        help_text="How many pool items this seed stands for in the harmful-share estimate "
        "(set by seed suggestion; 1 for items imported or drawn at random).",
    )
    annotation_count = models.PositiveIntegerField(default=0)
    votes_disagree = models.BooleanField(
        default=False,
        db_default=False,
        help_text="The people whose votes stand disagree (derived, like human_label).",
    )
    # Seed-labeling lease: who holds the item and until when.
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "content_hash"], name="item_unique_text_per_project"),
            models.CheckConstraint(
                condition=Q(split="bench", bench_name__gt="") | (~Q(split="bench") & Q(bench_name="")),
                name="item_bench_has_name",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "split", "human_label", "id"], name="item_split_label_idx"),
            # The data explorer's filters in id order (keyset pages); see benchmarks/explorer_speed.py.
            models.Index(fields=["project", "split", "id"], name="item_explorer_split_idx"),
            models.Index(fields=["project", "human_label", "id"], name="item_explorer_label_idx"),
            models.Index(fields=["project", "human_category", "id"], name="item_explorer_category_idx"),
            models.Index(fields=["project", "annotation_count", "id"], name="item_explorer_count_idx"),
            models.Index(fields=["project", "id"], condition=Q(votes_disagree=True), name="item_explorer_disagree_idx"),
            models.Index(fields=["project", "id"], condition=Q(excluded=True), name="item_explorer_excluded_idx"),
        ]

    def __str__(self) -> str:
        return f"Item {self.pk}"

    def claim_is_live(self) -> bool:
        from django.utils import timezone

        return self.claim_expires_at is not None and self.claim_expires_at > timezone.now()

    @property
    def is_evaluation(self) -> bool:
        return self.split in (self.Split.TEST, self.Split.BENCH)


class Annotation(models.Model):
    """A human judgement. Rows are never updated: a correction is a new row, undo is a row with no label."""

    class Kind(models.TextChoices):
        LABEL = "label", "Label"
        UNDO = "undo", "Undo of the annotator's previous label"
        APPROVE = "approve", "Approved pseudo-label"
        CORRECT = "correct", "Corrected pseudo-label"
        REJECT = "reject", "Rejected as unusable/ambiguous"
        IMPORT = "import", "Imported label"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations")
    role = models.CharField(max_length=16, choices=Role.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.LABEL)
    label = models.CharField(max_length=16, choices=Label.choices, blank=True, default="")
    category = models.CharField(max_length=100, blank=True, default="")
    note = models.TextField(blank=True, default="")
    prediction = models.ForeignKey(
        "Prediction",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviews",
        help_text="The pseudo-label this review answered, for provenance.",
    )
    client_token = models.CharField(
        max_length=64, blank=True, default="", help_text="Idempotency key sent by the client."
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["undo", "reject"], label="") | (~Q(kind__in=["undo", "reject"]) & ~Q(label="")),
                name="annotation_label_matches_kind",
            ),
            models.UniqueConstraint(
                fields=["annotator", "client_token"],
                condition=~Q(client_token=""),
                name="annotation_idempotent_submit",
            ),
        ]
        indexes = [
            models.Index(fields=["item", "annotator", "-created_at"], name="annotation_item_user_idx"),
            # A user's recent decisions (the "just reviewed" strip) and the explorer's annotator filter.
            models.Index(fields=["annotator", "item"], name="annotation_user_item_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} on item {self.item_id}"


class TrainingRound(Job):
    """One semi-supervised training round: the job record and its results."""

    class Algorithm(models.TextChoices):
        # Mirrors ssl_engine.configs.ALGORITHM_NAMES (a test keeps them equal).
        SUPERVISED = "supervised", "Supervised (baseline)"
        FIXMATCH = "fixmatch", "FixMatch"
        FREEMATCH = "freematch", "FreeMatch"
        MARGINMATCH = "marginmatch", "MarginMatch"
        MULTIMATCH = "multimatch", "MultiMatch"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rounds")
    algorithm = models.CharField(max_length=32, choices=Algorithm.choices)
    config = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    snapshot = models.JSONField(
        default=dict, blank=True, help_text="Annotation ids and variant ids used, so the round can be reproduced."
    )
    n_labeled = models.PositiveIntegerField(default=0)
    n_unlabeled = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text="Per evaluation set.")
    train_log = models.JSONField(default=list, blank=True)
    pseudo_labels = models.JSONField(
        default=list,
        blank=True,
        help_text="Per epoch and class: pseudo-labels drawn and used, and checked/correct against withheld labels.",
    )
    threshold_strategy = models.CharField(max_length=64, blank=True, default="")
    threshold_note = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(status__in=["queued", "running"]),
                name="one_active_round_per_project",
            ),
            models.UniqueConstraint(
                fields=["project", "number"], condition=Q(number__gt=0), name="round_number_per_project"
            ),
        ]

    def __str__(self) -> str:
        return f"Round {self.number or self.pk} ({self.algorithm}, {self.status})"

    @property
    def kind_label(self) -> str:
        return "Round"


class ModelVersion(models.Model):
    """A trained model in Hugging Face format, produced by a succeeded round."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    training_round = models.OneToOneField(TrainingRound, on_delete=models.CASCADE, related_name="model_version")
    number = models.PositiveIntegerField(default=0, editable=False, help_text="Per project, from 1.")
    path = models.CharField(max_length=500)
    threshold = models.FloatField(default=0.5)
    metrics = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project"], condition=Q(is_active=True), name="one_active_model_per_project"
            ),
            models.CheckConstraint(condition=Q(threshold__gte=0) & Q(threshold__lte=1), name="model_threshold_in_unit"),
            models.UniqueConstraint(
                fields=["project", "number"], condition=Q(number__gt=0), name="model_number_per_project"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        """``<slug>-v<n>``: a project's first model is ``<slug>-v1``."""
        return f"{self.project.slug}-v{self.number or self.pk}"


class Prediction(models.Model):
    """Model output and review signals for one item in one round (never a human label)."""

    class Agreement(models.TextChoices):
        # The engine's MultiMatch agreement types (ssl_engine.algorithms), weight in brackets.
        NONE = "", "Single head"
        HIGH_AGREE = "high_agree", "Other heads agree, all pass (1)"
        LOW_AGREE = "low_agree", "Other heads agree, only some pass (3)"
        DISAGREE_ONE = "disagree_one", "Other heads disagree, the passing ones agree (3)"
        AGREE_NONE = "agree_none", "Other heads agree, none passes (0)"
        DISAGREE_BOTH = "disagree_both", "Other heads disagree, both pass (0)"
        DISAGREE_NONE = "disagree_none", "Other heads disagree, none passes (0)"
        FIRST_EPOCH = "first_epoch", "First epoch, no cut-offs yet (0)"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="predictions")
    training_round = models.ForeignKey(TrainingRound, on_delete=models.CASCADE, related_name="predictions")
    p_harmful = models.FloatField()
    head_probs = models.JSONField(default=list)
    pseudo_label = models.CharField(max_length=16, choices=Label.choices)
    used = models.BooleanField(default=False)
    weight = models.FloatField(default=0.0)
    agreement = models.CharField(max_length=16, choices=Agreement.choices, blank=True, default="")
    margin_history = models.JSONField(default=list, blank=True)
    review_priority = models.FloatField(default=0.0)
    review_reason = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "training_round"], name="one_prediction_per_round"),
            models.CheckConstraint(condition=Q(p_harmful__gte=0) & Q(p_harmful__lte=1), name="p_harmful_in_unit"),
        ]
        indexes = [
            models.Index(fields=["training_round", "-review_priority", "id"], name="prediction_queue_idx"),
            # The review queue filtered by agreement type stays an index scan in priority order.
            models.Index(
                fields=["training_round", "agreement", "-review_priority", "id"], name="prediction_agreement_queue_idx"
            ),
            # The data explorer sorted or filtered by the active round's p(harmful) / pseudo-label.
            models.Index(fields=["training_round", "p_harmful", "item"], name="prediction_explorer_p_idx"),
            models.Index(fields=["training_round", "pseudo_label", "item"], name="prediction_explorer_label_idx"),
            models.Index(fields=["training_round", "review_priority", "item"], name="prediction_explorer_prio_idx"),
            models.Index(fields=["training_round", "agreement", "item"], name="prediction_explorer_agree_idx"),
        ]

    def __str__(self) -> str:
        return f"prediction #{self.pk} of item {self.item_id} (round {self.training_round_id})"


class WeakLabel(models.Model):
    """A noisy machine label (LLM judge, imported weak column, model, or UU-refined)."""

    class Source(models.TextChoices):
        IMPORTED = "imported", "Imported weak label"
        LLM_JUDGE = "llm_judge", "LLM judge"
        MODEL = "model", "Model prediction"
        REFINED = "refined", "Robust UU refined"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="weak_labels")
    source = models.CharField(max_length=16, choices=Source.choices)
    job = models.ForeignKey(
        "BackgroundJob",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="weak_labels",
        help_text="The refinement job that wrote a refined label (empty for other sources).",
    )
    iteration = models.PositiveSmallIntegerField(default=0)
    label = models.CharField(max_length=16, choices=Label.choices)
    score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "source", "job", "iteration"],
                name="one_weak_label_per_source_job_iteration",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} label #{self.pk} of item {self.item_id}"


class BackgroundJob(Job):
    """Background work other than training rounds: imports, exports, augmentation, mining, judging, refinement."""

    class Kind(models.TextChoices):
        IMPORT = "import", "Import"
        AUGMENT = "augment", "Augmentation"
        ADVERSARIAL = "adversarial", "Adversarial mining"
        EXPORT = "export", "Export"
        JUDGE = "judge", "LLM judge labels"
        REFINE = "refine", "Label refinement"
        SEEDS = "seeds", "Seed suggestion"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "kind", "number"], condition=Q(number__gt=0), name="job_number_per_project_kind"
            ),
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(kind="refine", status__in=["queued", "running"]),
                name="one_active_refinement_per_project",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.status})"

    @property
    def kind_label(self) -> str:
        return f"{self.get_kind_display()} job"


class AugmentedVariant(models.Model):
    """A machine-written variant of an item: an augmentation, or an adversarial candidate."""

    class Kind(models.TextChoices):
        AUGMENTATION = "augmentation", "Augmentation (strong view)"
        ADVERSARIAL = "adversarial", "Adversarial hard example"
        FP_PROBE = "fp_probe", "False-positive probe"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        DROPPED = "dropped", "Dropped by curation"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="variants")
    job = models.ForeignKey(BackgroundJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="variants")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.AUGMENTATION)
    method = models.CharField(max_length=32)
    provider = models.CharField(max_length=64, blank=True, default="")
    model_name = models.CharField(max_length=200, blank=True, default="")
    prompt_version = models.CharField(max_length=32, blank=True, default="")
    variant_index = models.PositiveSmallIntegerField(default=0)
    text = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    curation_reason = models.CharField(max_length=200, blank=True, default="")
    curation = models.JSONField(default=dict, blank=True, help_text="similarity, judge votes, loss flags")
    model_score = models.FloatField(null=True, blank=True, help_text="p_harmful of the active model (adversarial).")
    review_priority = models.FloatField(default=0.0)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reject_reason = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "kind", "method", "model_name", "prompt_version", "variant_index"],
                name="variant_unique_per_generation",
            ),
        ]
        indexes = [models.Index(fields=["status", "-review_priority", "id"], name="variant_queue_idx")]

    def __str__(self) -> str:
        return f"{self.kind} variant #{self.pk} of item {self.item_id}"


class ApiToken(models.Model):
    """A per-user API token for scripts; only its hash is stored. Revoked tokens stay for audit."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Scope(models.TextChoices):
        READ_WRITE = "read_write", "Read and write"
        READ = "read", "Read only (and /v1/moderations)"

    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.READ_WRITE)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: the token does not expire.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_expired(self, now=None) -> bool:
        from django.utils import timezone

        return self.expires_at is not None and self.expires_at <= (now or timezone.now())
