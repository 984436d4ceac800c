"""Typed errors raised by services; translated once for the API and once for the HTML views.

``annotations.api.exceptions.api_exception_handler`` turns them into JSON
(``{"message", "code", "fields"}``) with the class's ``status_code``;
``annotations.views.errors.service_errors`` turns them into pages, form errors or
page messages. Views and serializers never inspect an error's fields to pick a status.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """A business-rule violation with a message fit to show the user (400 unless a subclass says otherwise)."""

    status_code = 400
    code = "invalid"

    def __init__(
        self, message: str, *, field: str | None = None, code: str | None = None, extra: dict | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})
        if field:
            self.extra["field"] = field
        if code:
            self.code = code

    @property
    def field(self) -> str | None:
        """The input field the message is about, if any."""
        return self.extra.get("field")


class FieldError(ApplicationError):
    """One input field has a bad value (400); ``field`` names it."""

    def __init__(self, message: str, *, field: str, **kwargs) -> None:
        super().__init__(message, field=field, **kwargs)


class Conflict(ApplicationError):
    """The request clashes with the current state, e.g. a round is already queued (409)."""

    status_code = 409
    code = "conflict"


class Unavailable(ApplicationError):
    """A service the request needs (the task queue, a model) is not available right now (503)."""

    status_code = 503
    code = "unavailable"


class PermissionDenied(ApplicationError):
    """The user's role does not allow this action (403)."""

    status_code = 403
    code = "permission_denied"


class NotFound(ApplicationError):
    """The object does not exist, or the user may not know that it does (404)."""

    status_code = 404
    code = "not_found"
