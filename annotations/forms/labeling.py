"""Seed-labeling form: one label (and optional harm category) for one leased item."""

from __future__ import annotations

from django import forms

from annotations.models import Label


class LabelForm(forms.Form):
    item = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    label = forms.ChoiceField(choices=Label.choices)
    category = forms.CharField(required=False, max_length=100)
    # One fresh token per rendered card: a double click or a resent request stores one label.
    client_token = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, categories: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.categories = list(categories or [])

    def clean(self):
        data = super().clean()
        if data.get("label") != Label.HARMFUL:
            data["category"] = ""  # a category only qualifies a harmful label
        elif data.get("category") and data["category"] not in self.categories:
            self.add_error("category", "Unknown harm category.")
        return data


class SkipForm(forms.Form):
    item = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
