"""Start-a-round form, generated from the engine's config schema (``ssl_engine.configs.config_schema``).

Every setting is a typed field with its range and help, grouped as the engine groups them;
advanced ones are folded away by the template. Shared settings are named as in the engine
(``epochs``); an algorithm's own settings carry its name (``fixmatch__threshold``) and are shown
only while that algorithm is chosen (``static/js/umbra.js``: ``data-show-if``). The ``config``
textarea stays for settings as JSON (the API's shape): its keys override the typed fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms

from annotations.errors import ApplicationError
from annotations.forms.common import parse_json_object
from annotations.models import TrainingRound
from annotations.templatetags.umbra import humanize_name
from ssl_engine.configs import DEFAULT_ALGORITHM

ALGORITHM_GROUP = "Algorithm"
CONFIG_HELP = (
    'Settings as a JSON object, over the fields above; e.g. {"epochs": 3, "threshold_strategy": "fixed", '
    '"fixed_threshold": 0.9}. Empty = the fields above.'
)


def algorithm_choices() -> list[tuple[str, str]]:
    """The engine registry's algorithms, with the app's display names where it has one."""
    from ssl_engine.configs import ALGORITHM_NAMES

    labels = dict(TrainingRound.Algorithm.choices)
    return [(name, labels.get(name, humanize_name(name))) for name in ALGORITHM_NAMES]


def _num(value) -> str:
    """10000000 → "10,000,000"; 1e-08 stays "1e-08"."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _range_text(spec) -> str:
    if spec.min is not None and spec.max is not None:
        return f" ({_num(spec.min)} to {_num(spec.max)}; default {spec.default})"
    return f" (default: {humanize_name(spec.default) if isinstance(spec.default, str) else spec.default})"


def _form_field(spec) -> forms.Field:
    label = humanize_name(spec.name).capitalize()
    help_text = spec.help + ("" if spec.type == "bool" else _range_text(spec))
    common = {"required": False, "label": label, "help_text": help_text, "initial": spec.default}
    if spec.choices:
        return forms.ChoiceField(choices=[(c, humanize_name(c)) for c in spec.choices], **common)
    if spec.type == "bool":
        return forms.BooleanField(**common)
    if spec.type == "int":
        return forms.IntegerField(min_value=spec.min, max_value=spec.max, **common)
    if spec.type == "float":
        return forms.FloatField(
            min_value=spec.min, max_value=spec.max, widget=forms.NumberInput(attrs={"step": "any"}), **common
        )
    return forms.CharField(**common)


@dataclass
class FieldGroup:
    name: str
    fields: list = field(default_factory=list)  # bound fields shown at once
    advanced: list = field(default_factory=list)  # bound fields folded away


@dataclass(frozen=True)
class _Entry:
    form_name: str
    setting: str
    algorithm: str  # "" = shared by every algorithm
    group: str
    advanced: bool


def _schema_entries() -> list[_Entry]:
    from ssl_engine.configs import ALGORITHM_NAMES, config_schema

    entries, shared_done = [], False
    for algorithm in ALGORITHM_NAMES:
        for spec in config_schema(algorithm):
            own = spec.group == ALGORITHM_GROUP
            if not own and shared_done:
                continue
            entries.append(
                (
                    spec,
                    _Entry(
                        f"{algorithm}__{spec.name}" if own else spec.name,
                        spec.name,
                        algorithm if own else "",
                        spec.group,
                        spec.advanced,
                    ),
                )
            )
        shared_done = True
    return entries


class RoundStartForm(forms.Form):
    algorithm = forms.ChoiceField(choices=(), initial=DEFAULT_ALGORITHM)
    seed = forms.IntegerField(
        min_value=0,
        max_value=2**31 - 1,
        initial=0,
        help_text="Seed of the data split, subsample and initialisation (same seed, same round).",
    )
    # Present when the typed fields were rendered: without it (an old client posting only JSON),
    # unchecked boxes would read as False instead of "not given".
    typed = forms.BooleanField(required=False, widget=forms.HiddenInput, initial=True)
    config = forms.CharField(
        required=False,
        initial="",
        label="Settings as JSON",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=CONFIG_HELP,
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["algorithm"].choices = algorithm_choices()
        self.entries: list[_Entry] = []
        for spec, entry in _schema_entries():
            f = _form_field(spec)
            if entry.algorithm:
                f.widget.attrs["data-show-if"] = f"algorithm={entry.algorithm}"
            self.fields[entry.form_name] = f
            self.entries.append(entry)

    def groups(self) -> list[FieldGroup]:
        """Bound setting fields by the engine's groups (the chosen algorithm's own first)."""
        out: dict[str, FieldGroup] = {ALGORITHM_GROUP: FieldGroup(ALGORITHM_GROUP)}
        for entry in self.entries:
            group = out.setdefault(entry.group, FieldGroup(entry.group))
            (group.advanced if entry.advanced else group.fields).append(self[entry.form_name])
        return [g for g in out.values() if g.fields or g.advanced]

    def clean_config(self) -> dict:
        return parse_json_object(self.cleaned_data.get("config"), not_object="The config must be a JSON object.")

    def _typed_settings(self, data: dict) -> dict:
        from ssl_engine.configs import config_schema

        algorithm = data.get("algorithm")
        defaults = {s.name: s.default for s in config_schema(algorithm)}
        settings = {}
        for entry in self.entries:
            if entry.algorithm not in ("", algorithm):
                continue
            value = data.get(entry.form_name)
            if value is None or value == "" or value == defaults.get(entry.setting):
                continue  # only what differs from the engine's defaults is stored as asked
            settings[entry.setting] = value
        return settings

    def clean(self):
        from annotations.services.rounds import round_config_validate

        data = super().clean()
        if "algorithm" not in data or "config" not in data:
            return data
        typed = self._typed_settings(data) if data.get("typed") else {}
        data["config"] = {**typed, **data["config"]}
        try:
            round_config_validate(algorithm=data["algorithm"], config=data["config"])
        except ApplicationError as exc:
            name = (exc.extra or {}).get("config_field")
            typed_field = name if name in self.fields else f"{data['algorithm']}__{name}"
            if name and name not in self._json_keys() and typed_field in self.fields:
                self.add_error(typed_field, exc.message)  # next to its own field, once
            else:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data

    def _json_keys(self) -> set[str]:
        try:
            return set(parse_json_object(self.data.get("config"), not_object=""))
        except forms.ValidationError:
            return set()
