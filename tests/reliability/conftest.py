"""Reliability fixtures: the API suite's tiny served model."""

from api.conftest import tiny_model_dir  # noqa: F401 - a tiny random model in the serving format
