"""Ruff over the repository with the rules in pyproject.toml (imports at the top, pyflakes)."""
import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_passes():
  if importlib.util.find_spec("ruff") is None:
    pytest.skip("ruff is not installed in this environment (bash setup.sh --test installs it)")
  cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "taem_jax", "porting",
         "experiments", "tests"]
  r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
  assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
