"""Loaded by pytest before Django (``-p testenv``): the suite's default environment.

Tests run against the real PostgreSQL and Redis; the defaults are the local ones.
"""

import os

DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/umbra",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "DJANGO_SECRET_KEY": "test-only-secret-key-not-for-production-use-0123456789",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "WHITENOISE_USE_FINDERS": "1",  # serve static/ directly; tests never run collectstatic
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "UMBRA_SIMILAR_EMBEDDINGS": "0",  # full-text similar items; the MiniLM re-rank has its own slow test
}

for key, value in DEFAULTS.items():
    os.environ.setdefault(key, value)
os.environ.setdefault("UMBRA_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "var", "test"))
# WhiteNoise warns on every request when STATIC_ROOT is missing; tests never run collectstatic.
os.makedirs(os.path.join(os.environ["UMBRA_VAR_DIR"], "staticfiles"), exist_ok=True)
