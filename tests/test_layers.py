"""The layers contract (pyproject.toml [tool.importlinter]) holds, and an upward import breaks it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("monitor", "sources", "nlp", "alerts")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_every_contract_is_kept(tmp_path):
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_a_feature_package_importing_the_app_breaks_the_layers(tmp_path):
    root = _copy(tmp_path)
    with open(root / "alerts" / "__init__.py", "a", encoding="utf-8") as f:
        f.write("import monitor.app.config  # deliberate upward import\n")
    result = _lint(root)
    assert result.returncode != 0
    assert "alerts is not allowed to import monitor.app" in result.stdout


def test_the_cli_running_sql_breaks_the_contract(tmp_path):
    root = _copy(tmp_path)
    with open(root / "monitor" / "cli" / "status.py", "a", encoding="utf-8") as f:
        f.write("from sqlalchemy import select  # deliberate SQL in a front end\n")
    result = _lint(root)
    assert result.returncode != 0
    assert "monitor.cli.status -> sqlalchemy" in result.stdout
