"""Reliability fixtures: a tiny BERT and a tiny round's data, from the test kit."""

from __future__ import annotations

from pathlib import Path

import pytest

from umbra_testkit import ROUND_WORDS, build_tiny_backbone, round_items_import


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    return build_tiny_backbone(tmp_path_factory.mktemp("tiny-bert"), ROUND_WORDS)


@pytest.fixture
def round_items(project) -> dict:
    return round_items_import(project)
