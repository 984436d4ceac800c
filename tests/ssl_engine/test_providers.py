"""OpenAI-compatible provider against a real local HTTP server with scripted answers."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ssl_engine.augment.providers import (
    PROVIDERS,
    OpenAICompatibleProvider,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
    make_provider,
    parse_retry_after,
    provider_kind,
)


class Script:
    """A queue of scripted replies: (status, headers, body or None for a chat answer, delay)."""

    def __init__(self, steps):
        self.steps = list(steps)
        self.requests = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def next(self, body):
        with self.lock:
            self.requests.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.steps.pop(0) if self.steps else (200, {}, None, 0.0)

    def done(self):
        with self.lock:
            self.in_flight -= 1


def _answer(body):
    n = body.get("n", 1)
    last = body["messages"][-1]["content"]
    return {
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": f"answer {i} to {last}"}} for i in range(n)
        ],
        "usage": {"completion_tokens": 3 * n},
    }


@pytest.fixture
def server():
    holder = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # keep test output quiet
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body["_auth"] = self.headers.get("Authorization")
            body["_path"] = self.path
            status, headers, reply, delay = holder["script"].next(body)
            try:
                if delay:
                    time.sleep(delay)
            finally:
                # Out of flight once the answer is ready: the client may send its next request
                # as soon as it reads this one, before this thread gets to run again.
                holder["script"].done()
            try:
                payload = json.dumps(reply if reply is not None else _answer(body)).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()

    def start(steps):
        holder["script"] = Script(steps)
        return f"http://127.0.0.1:{httpd.server_address[1]}/v1", holder["script"]

    yield start
    httpd.shutdown()
    httpd.server_close()


def _provider(url, sleeps, **kw):
    return OpenAICompatibleProvider(url, "m", sleep=sleeps.append, **kw)


CONV = [{"role": "user", "content": "hello"}]


def test_answers_with_n_choices_and_bearer_key(server):
    url, script = server([])
    sleeps = []
    out = _provider(url, sleeps, api_key="sk-test").chat([CONV], n=2, max_new_tokens=5, temperature=0.5, seed=1)
    assert out == [["answer 0 to hello", "answer 1 to hello"]]
    req = script.requests[0]
    assert req["_path"] == "/v1/chat/completions" and req["_auth"] == "Bearer sk-test"
    assert (req["n"], req["max_tokens"], req["temperature"], req["model"]) == (2, 5, 0.5, "m")
    assert sleeps == []


def test_429_with_retry_after_then_500_then_success(server):
    url, script = server([(429, {"Retry-After": "2"}, {"error": "slow down"}, 0), (500, {}, {"error": "boom"}, 0)])
    sleeps = []
    prov = _provider(url, sleeps, backoff=0.5, max_retries=3)
    assert prov.chat([CONV]) == [["answer 0 to hello"]]
    assert len(script.requests) == 3
    assert sleeps[0] == 2.0  # Retry-After is respected
    assert 0.5 <= sleeps[1] <= 1.5  # exponential backoff with jitter: 0.5 * 2**1 * [0.5, 1.5)
    assert prov.stats["retries"] == 2


def test_gives_up_after_max_retries_with_a_clear_error(server):
    url, script = server([(503, {}, {"error": "down"}, 0)] * 3)
    sleeps = []
    with pytest.raises(ProviderHTTPError, match="HTTP 503.*gave up after 3 attempts") as exc:
        _provider(url, sleeps, max_retries=2, backoff=0.1).chat([CONV])
    assert exc.value.status_code == 503
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.6


def test_client_errors_are_not_retried(server):
    url, script = server([(401, {}, {"error": "bad key"}, 0)])
    with pytest.raises(ProviderHTTPError, match="HTTP 401") as exc:
        _provider(url, []).chat([CONV])
    assert exc.value.status_code == 401 and len(script.requests) == 1


def test_timeout_is_retried_then_reported(server):
    url, script = server([(200, {}, None, 0.6)])
    prov = _provider(url, [], timeout=0.2, max_retries=1)
    assert prov.chat([CONV]) == [["answer 0 to hello"]]  # the retry answers in time
    url, script = server([(200, {}, None, 0.6), (200, {}, None, 0.6)])
    with pytest.raises(ProviderTimeout, match="timed out"):
        _provider(url, [], timeout=0.2, max_retries=1).chat([CONV])


def test_connection_errors_are_retried_then_reported():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens on this port now
    sleeps = []
    with pytest.raises(ProviderError, match="cannot reach"):
        _provider(f"http://127.0.0.1:{port}/v1", sleeps, max_retries=2, timeout=1).chat([CONV])
    assert len(sleeps) == 2


def test_concurrency_limit_and_order(server):
    url, script = server([(200, {}, None, 0.15)] * 6)
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(6)]
    out = _provider(url, [], concurrency=2).chat(convs)
    assert [o[0] for o in out] == [f"answer 0 to q{i}" for i in range(6)]
    assert script.max_in_flight == 2


def test_servers_ignoring_n_are_topped_up(server):
    one = {"choices": [{"message": {"content": "only one"}}]}
    url, script = server([(200, {}, one, 0), (200, {}, one, 0)])
    assert _provider(url, []).chat([CONV], n=2) == [["only one", "only one"]]
    assert len(script.requests) == 2 and "n" not in script.requests[1]


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=0) > 0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_make_provider_specs_and_registry():
    prov = make_provider({"kind": "openai", "base_url": "http://x/v1", "model": "m"})
    assert isinstance(prov, OpenAICompatibleProvider)
    assert make_provider({"kind": "openai", "base_url": "http://x/v1", "model": "m"}) is prov
    assert make_provider(prov) is prov
    with pytest.raises(ValueError, match="unknown provider kind"):
        make_provider({"kind": "carrier-pigeon"})
    with pytest.raises(ValueError, match="base_url is required"):
        OpenAICompatibleProvider("", "m")
    with pytest.raises(ValueError, match="already registered"):
        provider_kind("openai")(object)
    assert {"local", "openai"} <= set(PROVIDERS)
