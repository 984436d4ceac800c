"""WSGI entry point: Django, behind a guard that measures chunked request bodies."""

import os
import tempfile

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "moderation_app.settings")


class ChunkedBodyLimit:
    """Give Django a Content-Length for bodies sent without one (``Transfer-Encoding: chunked``).

    Django reads no body without a Content-Length, so a chunked upload used to arrive empty
    (a 400 for "no file"). This reads at most one byte past the largest allowed body
    (``UMBRA_UPLOAD_MAX_BYTES``, ``DATA_UPLOAD_MAX_MEMORY_SIZE``) and sets the length it
    read (spooled to disk past ``FILE_UPLOAD_MAX_MEMORY_SIZE``); ``RequestBodyLimitMiddleware``
    then answers 413 for a body over the limit. The server (gunicorn) decodes the chunks;
    the rest of an oversized body is never read.
    """

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            from django.conf import settings

            limit = max(settings.UMBRA_UPLOAD_MAX_BYTES, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)
            body = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)  # noqa: SIM115 - handed to Django as wsgi.input
            size, source = 0, environ["wsgi.input"]
            while size <= limit:
                chunk = source.read(min(64 * 1024, limit + 1 - size))
                if not chunk:
                    break
                body.write(chunk)
                size += len(chunk)
            body.seek(0)
            environ["wsgi.input"] = body
            environ["CONTENT_LENGTH"] = str(size)
        return self.app(environ, start_response)


application = ChunkedBodyLimit(get_wsgi_application())
