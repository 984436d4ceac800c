"""Forms for augmentation, adversarial mining, LLM-judge labeling and UU refinement."""

from __future__ import annotations

from django import forms

from annotations.forms.common import parse_json_object
from annotations.services.augmentation import ITEM_SCOPES, METHODS
from annotations.templatetags.umbra import humanize_name


class ProviderFields(forms.Form):
    """Provider settings shared by the LLM forms; the API key is an env var *name*, never the key."""

    provider_kind = forms.ChoiceField(
        label="Provider",
        choices=[("local", "Local Hugging Face model"), ("openai", "OpenAI-compatible endpoint")],
        initial="local",
    )
    model = forms.CharField(
        required=False,
        max_length=300,
        help_text="Local: HF id or path (empty = bundled SmolLM2-135M). Endpoint: model name.",
    )
    base_url = forms.URLField(
        required=False,
        max_length=300,
        assume_scheme="http",
        label="Endpoint URL",
        help_text="e.g. http://vllm:8000/v1",
        widget=forms.URLInput(attrs={"data-show-if": "provider_kind=openai"}),
    )
    api_key_env = forms.RegexField(
        regex=r"^[A-Za-z_][A-Za-z0-9_]*$",
        required=False,
        max_length=100,
        label="API key environment variable",
        help_text="Name of the worker's environment variable holding the API key.",
        widget=forms.TextInput(attrs={"data-show-if": "provider_kind=openai"}),
    )

    def provider(self) -> dict:
        d = self.cleaned_data
        if d["provider_kind"] == "openai":
            return {
                "kind": "openai",
                "base_url": d.get("base_url") or "",
                "model": d.get("model") or "",
                "api_key_env": d.get("api_key_env") or "",
            }
        return {"kind": "local", **({"model": d["model"]} if d.get("model") else {})}


class AugmentationStartForm(ProviderFields):
    method = forms.ChoiceField(choices=[(m, humanize_name(m)) for m in METHODS], initial="llm_rewrite")
    per_item = forms.IntegerField(min_value=1, max_value=10, initial=2, label="Variants per item")
    items = forms.ChoiceField(choices=[(k, humanize_name(k)) for k in ITEM_SCOPES], initial="seed")
    limit = forms.IntegerField(min_value=1, required=False, help_text="At most this many items (empty = all).")
    judge = forms.BooleanField(
        required=False, help_text="Also ask the LLM judge whether each rewrite keeps the intent."
    )
    backtranslation_models = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text='Backtranslation only: {"de": ["/models/opus-mt-en-de", "/models/opus-mt-de-en"]}',
    )
    backtranslation_models.widget.attrs["data-show-if"] = "method=backtranslation"

    def clean_backtranslation_models(self) -> dict:
        return parse_json_object(
            self.cleaned_data.get("backtranslation_models"),
            not_object="Expected a JSON object of pivot -> [en->pivot, pivot->en].",
        )


class AdversarialStartForm(ProviderFields):
    direction = forms.ChoiceField(
        choices=[
            ("evade", "Harmful -> evade the model (hard examples)"),
            ("alarm", "Benign -> looks alarming (false-positive probes)"),
            ("both", "Both"),
        ],
        initial="evade",
    )
    iterations = forms.IntegerField(min_value=1, max_value=10, initial=1)
    per_item = forms.IntegerField(min_value=1, max_value=10, initial=3, label="Candidates per item")
    limit = forms.IntegerField(min_value=1, required=False, help_text="At most this many source items.")
    judge = forms.BooleanField(
        required=False, help_text="Keep only candidates an LLM judge says still carry the label."
    )


class JudgeLabelsForm(ProviderFields):
    limit = forms.IntegerField(min_value=1, required=False, help_text="At most this many items (empty = all).")


class RefineStartForm(forms.Form):
    source = forms.ChoiceField(
        choices=[
            ("llm_judge", "LLM judge labels"),
            ("model", "Active model's predictions"),
            ("imported", "Imported weak labels"),
        ],
        initial="llm_judge",
    )
    iterations = forms.IntegerField(min_value=1, max_value=50, initial=5)
    variant = forms.ChoiceField(
        choices=[("robust", "Robust UU (leaky ReLU)"), ("unbiased", "Plain UU"), ("pn", "PN (labels as if clean)")],
        initial="robust",
    )
