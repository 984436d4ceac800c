"""Errors raised by services; views and the API turn them into 4xx responses."""


class ApplicationError(Exception):
    """A business-rule violation with a message fit to show the user."""

    def __init__(self, message: str, *, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class PermissionDenied(ApplicationError):
    """The user's role does not allow this action."""
