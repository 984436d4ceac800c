"""Where workers may send requests: provider specs checked against the deployment's allowlists.

A project admin picks an LLM provider for augmentation, mining or judging; only an admin
of the *deployment* decides where workers may connect and which of their environment
variables may be sent as an API key:

- ``UMBRA_PROVIDER_BASE_URLS``: base URLs an OpenAI-compatible provider may use (a URL
  matches an entry with the same scheme, host and port whose path is a prefix of its
  path; ``*`` as the port matches any port). The entry ``public`` allows any http(s) URL
  whose host resolves only to public addresses. Private, loopback, link-local and other
  non-public targets are refused unless an entry lists them.
- ``UMBRA_PROVIDER_API_KEY_ENVS``: names of the worker's environment variables that may
  be sent as ``Authorization: Bearer``. Django's and Umbra's own settings variables are
  never usable, listed or not.

Both checks run when a job is started (a form error naming the setting to change) and
again on the worker right before it connects (settings may differ there, and jobs stored
before a setting changed must not slip through).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from annotations.errors import FieldError

PROVIDER_KINDS = ("local", "openai")
_LOCAL_KEYS = {"kind", "model", "gguf_file", "device", "batch_size", "dtype"}
_OPENAI_KEYS = {"kind", "base_url", "model", "api_key_env", "timeout", "max_retries", "concurrency", "use_n"}
# The server's own secrets are never an "API key", whatever the allowlist says.
NEVER_KEY_PREFIXES = ("DJANGO_", "UMBRA_", "DATABASE_", "CELERY_", "CACHE_", "REDIS_", "POSTGRES", "PG")
URLS_SETTING = "UMBRA_PROVIDER_BASE_URLS"
KEYS_SETTING = "UMBRA_PROVIDER_API_KEY_ENVS"


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _parse(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(url)
    try:
        port = parts.port
    except ValueError:
        if parts.netloc.rsplit(":", 1)[-1] != "*":
            raise
        port = -1  # "*": any port (allowlist entries only)
    path = parts.path.rstrip("/") or ""
    return scheme, parts.hostname.lower(), port if port is not None else _default_port(scheme), path


def _matches(url: tuple, entry: str) -> bool:
    try:
        e_scheme, e_host, e_port, e_path = _parse(entry)
    except ValueError:
        return False
    scheme, host, port, path = url
    return (
        scheme == e_scheme
        and host == e_host
        and (e_port == -1 or port == e_port)
        and (path == e_path or path.startswith(e_path + "/") or not e_path)
    )


def _non_public_address(host: str) -> str | None:
    """The first address of ``host`` that is not public (private, loopback, link-local…), or None."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return None  # unresolvable: the request itself will fail with a clear error
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not address.is_global:
            return str(address)
    return None


def base_url_check(url: str, *, field: str = "base_url") -> str:
    """``url`` if the deployment allows providers there; FieldError naming ``UMBRA_PROVIDER_BASE_URLS`` if not."""
    try:
        parsed = _parse(str(url))
    except ValueError:
        raise FieldError("The base URL must be an http:// or https:// URL with a host.", field=field) from None
    entries = [e for e in getattr(settings, URLS_SETTING, []) if e]
    if any(_matches(parsed, e) for e in entries if e != "public"):
        return str(url)
    if "public" in entries:
        private = _non_public_address(parsed[1])
        if private is None:
            return str(url)
        raise FieldError(
            f"The base URL {url} points to a private, loopback or link-local address ({private}); "
            f"workers connect there only if a deployment admin lists it in {URLS_SETTING}.",
            field=field,
        )
    raise FieldError(
        f"Workers may not connect to {url}: it is not in {URLS_SETTING}, the deployment's list of allowed "
        "provider base URLs (ask a deployment admin to add it).",
        field=field,
    )


def api_key_env_check(name: str, *, field: str = "api_key_env") -> str:
    """``name`` if it may be sent as an API key; FieldError naming ``UMBRA_PROVIDER_API_KEY_ENVS`` if not."""
    if not name.replace("_", "").isalnum() or name[:1].isdigit():
        raise FieldError("api_key_env must be an environment variable name.", field=field)
    if name.upper().startswith(NEVER_KEY_PREFIXES):
        raise FieldError(f"{name} holds a setting of this server and is never sent as an API key.", field=field)
    if name not in getattr(settings, KEYS_SETTING, []):
        raise FieldError(
            f"The environment variable {name} is not in {KEYS_SETTING}, the deployment's list of variables "
            "usable as provider API keys (ask a deployment admin to add it).",
            field=field,
        )
    return name


def provider_spec_clean(*, spec: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a provider spec for storage: no secrets, only known keys, allowed targets; ``{}`` = offline."""
    spec = dict(spec or {})
    if not spec:
        return {"kind": "local"}
    kind = spec.get("kind", "local")
    if kind not in PROVIDER_KINDS:
        raise FieldError(f"Unknown provider kind {kind!r}; choose local or openai.", field="provider_kind")
    if "api_key" in spec:
        raise FieldError(
            "Do not store API keys: give the name of an environment variable of the worker (api_key_env).",
            field="api_key_env",
        )
    allowed = _LOCAL_KEYS if kind == "local" else _OPENAI_KEYS
    unknown = set(spec) - allowed
    if unknown:
        raise FieldError(f"Unknown {kind} provider settings: {', '.join(sorted(unknown))}.", field="provider_kind")
    spec = {k: v for k, v in spec.items() if v not in (None, "")}
    spec["kind"] = kind
    if kind == "openai":
        for key in ("base_url", "model"):
            if not spec.get(key):
                raise FieldError(f"An OpenAI-compatible provider needs {key}.", field=key)
        base_url_check(spec["base_url"])
        if spec.get("api_key_env"):
            api_key_env_check(str(spec["api_key_env"]))
    return spec


def provider_spec_resolve(*, spec: dict[str, Any] | None) -> dict[str, Any]:
    """Worker side: the engine's provider spec, re-checked here, with the API key read from its env var."""
    spec = dict(spec or {"kind": "local"})
    env_name = spec.pop("api_key_env", "")
    if spec.get("kind") == "openai":
        base_url_check(str(spec.get("base_url") or ""))
    if env_name:
        api_key_env_check(env_name)
        key = os.environ.get(env_name)
        if not key:
            raise FieldError(
                f"The worker has no environment variable {env_name!r} (the provider's API key).", field="api_key_env"
            )
        spec["api_key"] = key
    return spec


def provider_label(*, spec: dict[str, Any] | None) -> str:
    """Short, secret-free description of a provider spec (for the provider column)."""
    spec = spec or {"kind": "local"}
    if spec.get("kind") == "openai":
        return f"openai:{spec.get('model')}@{spec.get('base_url')}"[:64]
    return f"local:{spec.get('model') or 'smollm2-135m-gguf'}"[-64:]
