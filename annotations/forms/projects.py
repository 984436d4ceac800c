"""Forms for running a project from the browser: create it, change its settings, manage members."""

from __future__ import annotations

from django import forms
from django.utils.text import slugify

from annotations.models import Project, Role

GUIDELINES_HELP = "Markdown: # headings, **bold**, lists, tables, links. Raw HTML is removed when shown."


def _categories(raw: str) -> list[str]:
    names = [line.strip() for line in (raw or "").splitlines() if line.strip()]
    if len(names) > 9:
        raise forms.ValidationError(f"At most 9 harm categories (keys 1…9); got {len(names)}.")
    if len(set(names)) != len(names):
        raise forms.ValidationError("Each category once.")
    if any(len(n) > 100 for n in names):
        raise forms.ValidationError("A category name has at most 100 characters.")
    return names


class _CategoriesField(forms.CharField):
    def __init__(self, **kwargs) -> None:
        super().__init__(
            required=False,
            widget=forms.Textarea(attrs={"rows": 4}),
            label="Harm categories",
            help_text="One per line, in key order 1…9 (at most 9).",
            **kwargs,
        )

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def clean(self, value):
        return _categories(super().clean(value))


def _guidelines_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        label="Labeling guidelines",
        help_text=GUIDELINES_HELP,
        widget=forms.Textarea(attrs={"rows": 10, "class": "guidelines-source"}),
    )


class ProjectCreateForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(
        max_length=64,
        required=False,
        label="Short name in URLs",
        help_text="Letters, digits and hyphens; empty = made from the name.",
    )
    task = forms.ChoiceField(
        choices=Project.Task.choices,
        initial=Project.Task.PROMPT,
        help_text="Prompt harmfulness judges a user prompt; response harmfulness a model's response to a prompt.",
    )
    categories = _CategoriesField()
    guidelines = _guidelines_field()

    def clean(self):
        data = super().clean()
        if not data.get("slug") and data.get("name"):
            data["slug"] = slugify(data["name"])[:64]
            if not data["slug"]:
                self.add_error("slug", "Choose a short name (the name has no letters or digits to make one from).")
        return data


class ProjectSettingsForm(forms.ModelForm):
    categories = _CategoriesField()
    guidelines = _guidelines_field()
    annotations_per_item = forms.IntegerField(
        min_value=1,
        max_value=9,
        label="Annotators per seed item (overlap)",
        help_text="How many annotators label each seed item (2 or more measures their agreement).",
    )
    refined_label_weight = forms.FloatField(
        min_value=0.0,
        max_value=1.0,
        label="Weight of a refined label",
        widget=forms.NumberInput(attrs={"step": "any"}),
        help_text="Training weight of a UU-refined label (0-1); a human label weighs 1.",
    )
    min_labels_per_class = forms.IntegerField(
        min_value=0,
        max_value=100_000,
        label="Human labels of each class before a model goes live",
        help_text="A round trained on fewer human labels of either class, or without an evaluation set, "
        "is not activated automatically, and activating it by hand asks for confirmation.",
    )

    class Meta:
        model = Project
        fields = [
            "name",
            "categories",
            "guidelines",
            "annotations_per_item",
            "min_labels_per_class",
            "use_refined_labels",
            "refined_label_weight",
            "use_unreviewed_curated_variants",
        ]
        labels = {
            "use_refined_labels": "Train on UU-refined labels",
            "use_unreviewed_curated_variants": "Train on curated augmentations nobody has reviewed yet",
        }


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, label="User name")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)


class ExportStartForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("labels_jsonl", "Labels (JSONL)"), ("labels_hf", "Hugging Face dataset"), ("model", "Active model")]
    )
