"""Forms of the review workbench: pseudo-label actions, queue filters, bulk review, variants."""

from __future__ import annotations

import re

from django import forms

from annotations.models import AugmentedVariant, Label, Prediction
from annotations.selectors.predictions import QueueFilters
from annotations.selectors.variants import VariantFilters
from annotations.services.variants import REJECT_REASONS


class ReviewActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("approve", "Approve"), ("correct", "Correct"), ("reject", "Reject"), ("skip", "Skip")]
    )
    client_token = forms.CharField(required=False, max_length=64)


_WEIGHT_SUFFIX = re.compile(r"\s*\((\d+(?:\.\d+)?)\)$")


def agreement_choice_label(label: str) -> str:
    """ "Other heads agree, all pass (1)" -> "… — training weight 1": the number is a weight, not a count."""
    return _WEIGHT_SUFFIX.sub(lambda m: f" — training weight {m.group(1)}", str(label))


class UndoForm(forms.Form):
    """Which of the user's recent rows to withdraw."""

    annotation = forms.IntegerField(min_value=1)


class QueueFilterForm(forms.Form):
    agreement = forms.ChoiceField(
        required=False,
        choices=[("", "Any agreement")]
        + [(v, agreement_choice_label(lab)) for v, lab in Prediction.Agreement.choices if v],
    )
    label = forms.ChoiceField(required=False, choices=[("", "Any pseudo-label")] + list(Label.choices))
    p_min = forms.FloatField(required=False, min_value=0, max_value=1, label="p(harmful) ≥")
    p_max = forms.FloatField(required=False, min_value=0, max_value=1, label="p(harmful) ≤")
    q = forms.CharField(required=False, max_length=200, label="Text contains")

    def filters(self) -> QueueFilters:
        if not self.is_valid():
            return QueueFilters()
        d = self.cleaned_data
        return QueueFilters(
            agreement=d["agreement"], label=d["label"], p_min=d["p_min"], p_max=d["p_max"], q=d["q"].strip()
        )


class BulkReviewForm(forms.Form):
    action = forms.ChoiceField(choices=[("approve", "Approve"), ("correct", "Correct")])
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), required=True)
    client_token = forms.CharField(required=False, max_length=40)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        self.fields["ids"].choices = [(v, v) for v in raw if str(v).isdigit()][:200]


class VariantReviewForm(forms.Form):
    """One button per decision: ``action=approve``, or a ``reason`` button that means reject."""

    action = forms.ChoiceField(required=False, choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.ChoiceField(required=False, choices=[("", "—")] + list(REJECT_REASONS.items()))

    def clean(self):
        data = super().clean()
        if not data.get("action"):
            data["action"] = "reject" if data.get("reason") else ""
        if not data["action"]:
            raise forms.ValidationError("Approve, or reject with a reason.")
        return data


class VariantFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status")] + list(AugmentedVariant.Status.choices))
    kind = forms.ChoiceField(required=False, choices=[("", "Any kind")] + list(AugmentedVariant.Kind.choices))
    method = forms.CharField(required=False, max_length=32)
    loss_flagged = forms.BooleanField(required=False, label="Flagged by training loss")

    def filters(self) -> VariantFilters:
        if not self.is_valid():
            return VariantFilters()
        d = self.cleaned_data
        status = d["status"] if "status" in self.data else AugmentedVariant.Status.PENDING
        return VariantFilters(status=status, method=d["method"].strip(), kind=d["kind"], loss_flagged=d["loss_flagged"])
