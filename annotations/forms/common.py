"""Field helpers shared by the forms."""

import json

from django import forms


def parse_json_object(raw: str | None, *, not_object: str) -> dict:
    """Parse a textarea's JSON object; empty means {}. Errors are ValidationErrors, never a 500."""
    raw = (raw or "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from exc
    except RecursionError:  # "[[[[…" thousands deep: the decoder runs out of stack
        raise forms.ValidationError("Not valid JSON: nested too deeply.") from None
    if not isinstance(value, dict):
        raise forms.ValidationError(not_object)
    return value
