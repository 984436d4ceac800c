"""Content hashes: the same text (after normalisation) is one item per project."""

import hashlib
import re
import unicodedata

_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the comparison used for duplicates."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def content_hash(text: str, prompt: str = "") -> str:
    """sha256 over the normalised (prompt, text) pair."""
    key = normalize_text(prompt) + "\x1f" + normalize_text(text)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
