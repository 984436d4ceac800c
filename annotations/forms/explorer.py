"""Forms of the data explorer: filters and sort of the item list, and a label correction on an item page."""

from __future__ import annotations

from django import forms

from annotations.forms.review import agreement_choice_label
from annotations.models import Item, Label, Prediction
from annotations.selectors.explorer import SORTS, ItemFilters


class ItemFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    split = forms.ChoiceField(required=False, choices=[("", "Any split")] + list(Item.Split.choices))
    human_label = forms.ChoiceField(
        required=False,
        label="Human label",
        choices=[
            ("", "Any human label"),
            ("harmful", "Harmful"),
            ("unharmful", "Unharmful"),
            ("none", "No label yet"),
            ("excluded", "Rejected as unusable"),
        ],
    )
    pseudo_label = forms.ChoiceField(
        required=False, label="Pseudo-label", choices=[("", "Any pseudo-label")] + list(Label.choices)
    )
    p_min = forms.FloatField(required=False, min_value=0, max_value=1, label="p(harmful) ≥")
    p_max = forms.FloatField(required=False, min_value=0, max_value=1, label="p(harmful) ≤")
    agreement = forms.ChoiceField(
        required=False,
        choices=[("", "Any agreement")]
        + [(v, agreement_choice_label(lab)) for v, lab in Prediction.Agreement.choices if v],
    )
    reviewed = forms.ChoiceField(
        required=False,
        label="Reviewed",
        choices=[("", "Reviewed or not"), ("yes", "Decided by a reviewer"), ("no", "No reviewer decision")],
    )
    category = forms.ChoiceField(required=False, choices=[("", "Any category")])
    annotator = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, choices=[("", "Anyone")], label="Labeled by"
    )
    disagreement = forms.BooleanField(required=False, label="Annotators disagree")
    sort = forms.ChoiceField(required=False, choices=[(k, v[1]) for k, v in SORTS.items()])
    order = forms.ChoiceField(required=False, choices=[("desc", "high → low"), ("asc", "low → high")])

    def __init__(self, *args, project, members=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "Any category")] + [(c, c) for c in project.categories or []]
        self.fields["annotator"].choices = [("", "Anyone")] + [(m.user_id, m.user.get_username()) for m in members]

    def filters(self) -> ItemFilters:
        if not self.is_valid():
            return ItemFilters()
        d = self.cleaned_data
        return ItemFilters(
            q=d["q"].strip(),
            split=d["split"],
            human_label=d["human_label"],
            pseudo_label=d["pseudo_label"],
            p_min=d["p_min"],
            p_max=d["p_max"],
            agreement=d["agreement"],
            reviewed=d["reviewed"],
            category=d["category"],
            annotator=d["annotator"],
            disagreement=d["disagreement"],
            sort=d["sort"] or "id",
            descending=d["order"] != "asc",
        )


class CorrectLabelForm(forms.Form):
    label = forms.ChoiceField(choices=Label.choices, widget=forms.RadioSelect)
    category = forms.ChoiceField(required=False, choices=[("", "No category")])
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why (optional); kept with the row.",
    )

    def __init__(self, *args, project, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", "No category")] + [(c, c) for c in project.categories or []]

    def clean(self):
        data = super().clean()
        if data.get("label") != Label.HARMFUL:
            data["category"] = ""
        return data
