"""The package type-checks: mypy on src/streamvae with the project's settings ([tool.mypy] in pyproject.toml)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_mypy_reports_no_errors_on_the_package():
    pytest.importorskip("mypy")
    from mypy import api

    stdout, stderr, status = api.run([
        "--config-file", str(REPO / "pyproject.toml"),
        "--cache-dir", str(REPO / ".mypy_cache"),  # mypy marks its cache git-ignored itself
        str(REPO / "src" / "streamvae"),
    ])
    assert status == 0, f"mypy exited with {status}:\n{stdout}{stderr}"
