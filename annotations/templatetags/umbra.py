"""Template helpers. Item text is always escaped by Django; guidelines Markdown is sanitised."""

import markdown as md
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

_ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "ul",
    "ol",
    "li",
    "code",
    "pre",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "hr",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}


@register.filter
def markdown_safe(text: str) -> str:
    """Render Markdown, then keep only harmless tags (no raw HTML, no script, no javascript: links)."""
    html = md.markdown(text or "", extensions=["tables"])
    clean = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return mark_safe(clean)  # noqa: S308 - sanitised by nh3 above


@register.filter
def percent(value, digits: int = 1) -> str:
    try:
        return f"{float(value) * 100:.{int(digits)}f} %"
    except (TypeError, ValueError):
        return "–"


@register.filter
def duration(seconds) -> str:
    """Seconds as people say them: "45 s", "3 min 20 s", "2 h 5 min"."""
    try:
        s = int(round(float(seconds)))
    except (TypeError, ValueError):
        return "–"
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s" if s % 60 else f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


# Item pages show at most this many characters of a text: a 1 MB single line takes Chromium
# over a minute to lay out inside the workbench cards (the browser tab hangs).
ITEM_DISPLAY_MAX_CHARS = 20_000


@register.filter
def clip(text: str, limit: int = ITEM_DISPLAY_MAX_CHARS) -> str:
    """At most ``limit`` characters of ``text``, saying how many more were left out (stays escaped)."""
    text = text or ""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit:,} more characters not shown]"


# Machine names shown to people: words people use, not identifiers.
_WORDS = {
    "api_key_env": "API key environment variable",
    "llm_rewrite": "LLM rewrite",
    "llm": "LLM",
    "uu": "UU",
    "url": "URL",
    "api": "API",
    "f1": "F1",
    "id": "ID",
    "ema": "EMA",
    "apm": "APM",
    "aum": "AUM",
    "lr": "learning rate",
    "cpu": "CPU",
    "gpu": "GPU",
    "mlp": "MLP",
    "lora": "LoRA",
}


@register.filter
def humanize_name(name) -> str:
    """``llm_rewrite`` → "LLM rewrite", ``prior_match`` → "prior match" (first letter kept as is)."""
    text = str(name or "")
    if text in _WORDS:
        return _WORDS[text]
    return " ".join(_WORDS.get(part, part) for part in text.replace("-", "_").split("_") if part)


@register.filter
def setting_value(value) -> str:
    """A stored setting as words: {"kind": "local"} → "kind: local"; lists joined; booleans yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None or value == "" or value == {} or value == []:
        return "–"
    if isinstance(value, dict):
        return "; ".join(f"{humanize_name(k)}: {setting_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(setting_value(v) for v in value)
    if isinstance(value, str):
        # lower-case machine names (llm_rewrite) read as words; anything else (an env var name, a path) verbatim
        return humanize_name(value) if value.replace("_", "").isalnum() and "_" in value and value.islower() else value
    return str(value)


@register.filter
def seconds_since(moment) -> float | None:
    """Seconds from ``moment`` to now (for "running for 3 min 27 s", in the same words as a finished duration)."""
    from django.utils import timezone

    try:
        return max(0.0, (timezone.now() - moment).total_seconds())
    except TypeError:
        return None
