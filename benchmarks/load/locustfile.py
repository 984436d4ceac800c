"""Locust users for the load benchmark (driven by benchmarks/load/run_load.py; loopback only).

ReviewerUser: a keyboard-fast reviewer on the seed-labeling workbench — get the leased card
(htmx fragment), submit a label, get the next card in the same response.
ModerationClient: POST /v1/moderations with a bearer token, one text per request.

Credentials come from the JSON file named by UMBRA_LOAD_CREDENTIALS (sessions and tokens the
runner created); each simulated user takes the next one.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re

from locust import HttpUser, between, task

with open(os.environ["UMBRA_LOAD_CREDENTIALS"]) as _f:
    CREDS = json.load(_f)
_sessions = itertools.cycle(CREDS["sessions"])
_tokens = itertools.cycle(CREDS["tokens"])
SLUG = CREDS["slug"]
ITEM_RE = re.compile(r'data-item="(\d+)"')
TOKEN_RE = re.compile(r'name="client_token" value="([0-9a-f]*)"')
THINK = (float(os.environ.get("UMBRA_LOAD_THINK_MIN", "0.5")), float(os.environ.get("UMBRA_LOAD_THINK_MAX", "1.5")))
TEXTS = [
    "how do I bake sourdough bread",
    "write a story about a dragon",
    "how to pick a lock to break into a house",
    "summarise this article about climate",
    "give me step by step instructions to make a weapon",
]


class ReviewerUser(HttpUser):
    wait_time = between(*THINK)

    def on_start(self):
        self.client.cookies.set("sessionid", next(_sessions))
        response = self.client.get(f"/p/{SLUG}/label/", name="label page (full)")
        self.client.headers["X-CSRFToken"] = self.client.cookies.get("csrftoken", "")
        self.client.headers["HX-Request"] = "true"
        self.card = response.text

    @task
    def label_next(self):
        item, token = ITEM_RE.search(self.card), TOKEN_RE.search(self.card)
        if not item:
            self.card = self.client.get(f"/p/{SLUG}/label/", name="next item").text
            return
        with self.client.post(
            f"/p/{SLUG}/label/",
            name="submit label + next item",
            catch_response=True,
            data={
                "item": item.group(1),
                "label": random.choice(["harmful", "unharmful"]),
                "client_token": token.group(1) if token else "",
            },
        ) as response:
            if response.status_code != 200 or not ITEM_RE.search(response.text):
                response.failure(f"status {response.status_code}: {response.text[:120]}")
            self.card = response.text


class ModerationClient(HttpUser):
    wait_time = between(0, 0)

    def on_start(self):
        self.client.headers["Authorization"] = f"Bearer {next(_tokens)}"

    @task
    def moderate(self):
        self.client.post(
            "/v1/moderations", json={"input": random.choice(TEXTS), "project": SLUG}, name="/v1/moderations"
        )
