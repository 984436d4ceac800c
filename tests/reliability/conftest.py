"""Reliability fixtures: the API suite's tiny served model, fast password hashing."""

import pytest
from api.conftest import tiny_model_dir  # noqa: F401 - a tiny random model in the serving format


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
