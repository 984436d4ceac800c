"""A JSON parser that enforces the request size limit (DRF reads the stream without Django's check)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from annotations.api.exceptions import RequestTooLarge


class LimitedJSONParser(JSONParser):
    """Refuses bodies above ``DATA_UPLOAD_MAX_MEMORY_SIZE`` with 413, declared length or not; deep nesting with 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and stream is not None:
            request = (parser_context or {}).get("request")
            declared = 0
            if request is not None:
                try:
                    declared = int(request.META.get("CONTENT_LENGTH") or 0)
                except ValueError:
                    declared = 0
            if declared > limit:
                raise RequestTooLarge(f"Request body is {declared} bytes; the limit is {limit} bytes.")
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise RequestTooLarge(f"Request body exceeds the limit of {limit} bytes.")
            import io

            stream = io.BytesIO(body)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:  # "[[[[…" a few thousand deep: json's decoder runs out of stack (was a 500)
            raise ParseError("JSON parse error - nested too deeply.") from None
