"""Settings fail fast in production and pass Django's deployment checks."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROD = {
    "DJANGO_SECRET_KEY": "x" * 20 + "-prod-secret-key-with-enough-entropy-0123456789abcdef",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/umbra",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "DJANGO_ALLOWED_HOSTS": "umbra.example.org",
}


def run_manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "UMBRA_", "DATABASE_", "CELERY_"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_production_settings_pass_check_deploy():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PROD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_missing_secret_key_in_production_fails_fast():
    env = {k: v for k, v in PROD.items() if k != "DJANGO_SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_demo_mode_needs_no_environment(tmp_path):
    result = run_manage("check", env={"UMBRA_DEMO": "1", "UMBRA_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "demo_secret_key").exists()


def test_empty_or_short_secret_key_in_production_refuses_to_start():
    """Issue 15, defect 9: the empty key .env.example shipped (and a 3-character one) passed `check`."""
    for key, said in (("", "is empty"), ("abc", "is 3 characters long"), ("a" * 60, "is 60 characters long")):
        result = run_manage("check", env={**PROD, "DJANGO_SECRET_KEY": key})
        assert result.returncode != 0, key
        assert f"DJANGO_SECRET_KEY {said}" in result.stderr and "at least 50 characters" in result.stderr


def test_env_example_does_not_ship_a_key_that_starts():
    example = (ROOT / ".env.example").read_text()
    lines = dict(line.split("=", 1) for line in example.splitlines() if "=" in line and not line.startswith("#"))
    env = {k: v for k, v in lines.items() if k in PROD or k == "DJANGO_SECRET_KEY"}
    result = run_manage("check", env={**PROD, **env})
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr
