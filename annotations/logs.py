"""Logging filters."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404


class ClientErrorsWithoutTraceback(logging.Filter):
    """A refused request (403 role check, 404) is logged as one line, not with a traceback:
    it is the client's mistake, and its message is shown on the error page."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, (PermissionDenied, Http404)):
            record.exc_info = None
            record.exc_text = None
            record.msg = f"{record.msg} ({exc})" if str(exc) else record.msg
        return True
