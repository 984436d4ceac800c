"""Architecture rules checked mechanically."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ssl_engine_imports_no_framework_code():
    """import-linter's forbidden contract: ssl_engine never imports django/celery/annotations."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "engine is framework-free KEPT" in result.stdout


def test_importing_ssl_engine_loads_no_torch_or_django():
    code = ("import sys, ssl_engine, ssl_engine.configs; "
            "bad = [m for m in ('torch', 'transformers', 'django') if m in sys.modules]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
