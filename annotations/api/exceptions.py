"""JSON errors for the API: ``{"message": ..., "code": ..., "fields": {...}}``, never a 500 for bad input."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from annotations.errors import ApplicationError

logger = logging.getLogger(__name__)


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body too large."
    default_code = "request_too_large"


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" if k != "non_field_errors" else _flatten(v) for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(v) for v in detail)
    return str(detail)


def _fields(detail) -> dict:
    if isinstance(detail, dict):
        return {k: _fields_value(v) for k, v in detail.items()}
    return {}


def _fields_value(v):
    if isinstance(v, dict):
        return {k: _fields_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_fields_value(x) for x in v]
    return str(v)


def api_exception_handler(exc, context):
    """DRF exception handler: one JSON error shape; typed service errors keep their status code."""
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(str(exc) or RequestTooLarge.default_detail)
    elif isinstance(exc, TooManyFieldsSent):
        exc = exceptions.ValidationError({"non_field_errors": [str(exc)]})
    elif isinstance(exc, ApplicationError):
        # Typed service errors carry their own status (Conflict 409, Unavailable 503, ...).
        extra = dict(exc.extra)
        field = extra.pop("field", None)
        body = {"message": exc.message, "code": exc.code, "fields": {field: [exc.message]} if field else {}, **extra}
        return Response(body, status=exc.status_code)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    detail = response.data
    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(detail)
        message = "Invalid input: " + _flatten(detail) if detail else "Invalid input."
        code = "invalid"
    else:
        fields = {}
        message = _flatten(detail.get("detail", detail)) if isinstance(detail, dict) else _flatten(detail)
        code = getattr(exc, "default_code", "error")
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        if isinstance(codes, str):
            code = codes
    response.data = {"message": message, "code": code, "fields": fields}
    return response
