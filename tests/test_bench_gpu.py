"""experiments/bench_gpu.py, the prepared GPU run, in its smallest mode on the CPU: every
section measures, the table and JSON are written, and no call makes a hidden transfer."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _smallest(tmp_path, sections):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
  proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "bench_gpu.py"),
                         "--smallest", "--only", sections, "--out", str(tmp_path)], env=env,
                        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  md, = tmp_path.glob("bench-gpu-*-smallest.md")
  js, = tmp_path.glob("bench-gpu-*-smallest.json")
  report = json.loads(js.read_text())
  assert report["device"]["platform"] == "cpu"
  return md.read_text(), report


def test_smallest_generator_and_pipeline(tmp_path):
  table, report = _smallest(tmp_path, "generator,pipeline")
  for heading in ("Wav2Lip generator, inference", "End to end from a"):
    assert heading in table, heading
  assert [r["b"] for r in report["generator"]] == [1]
  assert all(r["fps"] > 0 for r in report["generator"])
  p = report["pipeline"]
  assert p["frames"] == 3 and set(p["stage_fps"]) == {"decode", "crop", "generate", "paste",
                                                       "encode"}
  assert p["slowest_stage"] in p["stage_fps"] and p["fps_pipelined"] > 0


@pytest.mark.slow  # two training-step compilations: ~1-2 min on 2 cores
def test_smallest_training_and_transfer_guard(tmp_path):
  table, report = _smallest(tmp_path, "train")
  assert "Training" in table and "transfer_guard" in table
  assert len(report["train"]) == 2 and all(r["steps_per_s"] > 0 for r in report["train"])
  assert report["transfers"] and set(report["transfers"].values()) == {"ok"}, report["transfers"]
