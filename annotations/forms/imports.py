from django import forms

from annotations.models import Item

SPLIT_CHOICES = [
    (Item.Split.POOL, "Unlabeled pool"),
    (Item.Split.SEED, "Seed set"),
    (Item.Split.TEST, "Test"),
    ("bench", "External benchmark"),
]


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text="JSONL in the shared record format (text, prompt, label, category, id, source) "
        "or CSV with a text column."
    )
    split = forms.ChoiceField(choices=SPLIT_CHOICES, initial=Item.Split.POOL)
    bench_name = forms.SlugField(required=False, max_length=64, help_text="Name of the benchmark (bench split only).")
    skip_invalid = forms.BooleanField(required=False, help_text="Import the valid lines and report the rest.")

    def clean(self):
        data = super().clean()
        if data.get("split") == "bench" and not data.get("bench_name"):
            self.add_error("bench_name", "A benchmark split needs a name.")
        if data.get("split") != "bench" and data.get("bench_name"):
            self.add_error("bench_name", "Only the benchmark split takes a name.")
        f = data.get("file")
        if f is not None and not f.name.lower().endswith((".jsonl", ".json", ".ndjson", ".csv")):
            self.add_error("file", "The file name must end in .jsonl or .csv.")
        return data


class SeedSuggestionForm(forms.Form):
    """How many pool items to suggest as the first seed items to label (cold start)."""

    n = forms.IntegerField(
        label="Items to suggest",
        min_value=1,
        max_value=2000,
        initial=200,
        help_text="Chosen without labels: typical, diverse pool items, with likely-harmful "
        "ones over-sampled. They move to the seed set, where the labeling queue "
        "hands them out first.",
    )
    seed = forms.IntegerField(label="Random seed", min_value=0, initial=0, required=False)
