"""Architecture rules checked mechanically."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept():
    """import-linter: ssl_engine imports no framework code or scripts; selectors import no web layer;
    services import no views, API or forms."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for contract in ("engine is framework-free", "selectors are reads only", "services do not depend on the web layer"):
        assert f"{contract} KEPT" in result.stdout, contract


def test_reads_have_one_home():
    """``annotations/selectors/`` is the only read package: the old ``queries`` package and
    ``selectors.py`` module are gone, and no service defines a query read back by views."""
    assert not (ROOT / "annotations" / "queries").exists()
    assert not (ROOT / "annotations" / "selectors.py").exists()
    assert (ROOT / "annotations" / "selectors" / "__init__.py").is_file()


def test_selectors_raise_no_http_errors():
    """Selectors return None (or raise a typed error); the views and the API raise the 404s."""
    offenders = [
        f"{path.name}: {word}"
        for path in sorted((ROOT / "annotations" / "selectors").glob("*.py"))
        for word in ("Http404", "get_object_or_404", "django.http", "django.shortcuts")
        if word in path.read_text(encoding="utf-8").split('"""', 2)[-1]
    ]
    assert offenders == []


def test_importing_ssl_engine_loads_no_torch_or_django():
    code = (
        "import sys, ssl_engine, ssl_engine.configs; "
        "bad = [m for m in ('torch', 'transformers', 'django') if m in sys.modules]; "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
