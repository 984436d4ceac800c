"""Start-a-round form: algorithm from the engine registry mirror, config as JSON."""

from __future__ import annotations


from django import forms

from annotations.errors import ApplicationError
from annotations.forms.common import parse_json_object
from annotations.models import TrainingRound
from ssl_engine.configs import DEFAULT_ALGORITHM


class RoundStartForm(forms.Form):
    algorithm = forms.ChoiceField(choices=TrainingRound.Algorithm.choices, initial=DEFAULT_ALGORITHM)
    config = forms.CharField(
        required=False, initial="{}", widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text='Engine settings as a JSON object, e.g. {"epochs": 3, "threshold": 0.9}; empty = defaults.',
    )
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0)

    def clean_config(self) -> dict:
        return parse_json_object(self.cleaned_data.get("config"), not_object="The config must be a JSON object.")

    def clean(self):
        from annotations.services.rounds import round_config_validate

        data = super().clean()
        if "algorithm" in data and "config" in data:
            try:
                round_config_validate(algorithm=data["algorithm"], config=data["config"])
            except ApplicationError as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data
