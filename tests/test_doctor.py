"""`taem-doctor` (`python -m taem_jax.cli.doctor`) reports the stack and exits 0 when the core works."""
import subprocess
import sys

from taem_jax import paths
from taem_jax.cli import doctor


def test_doctor_runs_and_reports_everything(tmp_path):
  env = {"PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu", "TAEM_JAX_HOME": str(tmp_path)}
  r = subprocess.run([sys.executable, "-m", "taem_jax.cli.doctor"], capture_output=True, text=True,
                     timeout=300, env=env)
  assert r.returncode == 0, r.stdout + r.stderr
  out = r.stdout
  assert "core stack: OK" in out
  for dist, _ in doctor.CORE:
    assert f"ok    {dist} " in out, dist
  assert "jax devices: " in out
  for name in paths.OPTIONAL_FILES:  # each optional file: where it is looked for, what to do
    line = next(l for l in out.splitlines() if l.startswith(f"--    {name}:"))
    assert str(tmp_path) in line and "source:" in line


def test_doctor_finds_an_optional_file(tmp_path, monkeypatch):
  monkeypatch.setenv("TAEM_JAX_HOME", str(tmp_path))
  (tmp_path / "syncnet_v2.model").write_bytes(b"x")
  lines = [line for _, line in doctor.report()]
  assert any(l.startswith("ok    syncnet_v2:") for l in lines)


def test_doctor_fails_when_a_core_package_is_missing(monkeypatch):
  monkeypatch.setattr(doctor, "CORE", doctor.CORE + [("no-such-dist-xyz", "no_such_mod")])
  results = list(doctor.report())
  assert any("FAIL  no-such-dist-xyz" in line for _, line in results)
  assert results[-1][0] is False
  assert doctor.main() == 1
