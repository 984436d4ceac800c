"""A strict Content-Security-Policy: no inline script, nothing from other origins."""

from django.conf import settings

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "UMBRA_CSP", DEFAULT_CSP)
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response


class RequestBodyLimitMiddleware:
    """413 for a body over the limit, before anything reads it.

    Requests with files (multipart) may carry up to ``UMBRA_UPLOAD_MAX_BYTES``; every other
    body up to ``DATA_UPLOAD_MAX_MEMORY_SIZE``. The declared Content-Length decides; a
    chunked body without one is measured by ``moderation_app.wsgi.ChunkedBodyLimit``, which
    sets the length it read.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        multipart = request.META.get("CONTENT_TYPE", "").startswith("multipart/")
        limit = settings.UMBRA_UPLOAD_MAX_BYTES if multipart else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and length > limit:
            return body_too_large(request, length=length, limit=limit)
        return self.get_response(request)


def body_too_large(request, *, length: int, limit: int):
    """The 413 answer: JSON for the API and /v1/, a short text page otherwise."""
    from django.http import HttpResponse, JsonResponse

    message = f"Request body is {length:,} bytes or more; the limit is {limit:,} bytes."
    if request.path.startswith(("/api/", "/v1/")):
        return JsonResponse({"message": message, "code": "request_too_large", "fields": {}}, status=413)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
