"""S3FD parity with PyTorch on a real torch file: reference model -> s3fd-619a316812.pth (legacy
bare state_dict, the released form) -> porting.convert -> load_pretrained -> all 12 head outputs.

The file and reference outputs (B=2, 128x128, random weights) are written by
`porting/reference/make_fixtures.py --families s3fd` under `.venv-torch`; this process never
imports torch. Skipped with a reason without `.venv-torch` (tests/golden/s3fd.npz still covers
parity then, in test_porting_golden.py and test_s3fd.py).
"""
import json
import os
import subprocess

import numpy as np
import pytest

import porting
from porting import parity
from taem_jax.models import load_pretrained

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PY = os.path.join(REPO, ".venv-torch", "bin", "python")
TOL = 1e-4

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(not os.path.exists(TORCH_PY),
                       reason=".venv-torch is missing (run `bash setup.sh --test`); the torch "
                              "parity fixture cannot be built"),
]


def test_s3fd_file_parity(tmp_path):
  out = tmp_path / "fixtures"
  r = subprocess.run([TORCH_PY, "-m", "porting.reference.make_fixtures", "--out", str(out),
                      "--families", "s3fd", "--batches", "2"], cwd=REPO, capture_output=True,
                     text=True, timeout=600, env={**os.environ, "PYTHONPATH": REPO})
  assert r.returncode == 0, r.stderr[-3000:]
  with open(out / "manifest.json") as f:
    manifest = json.load(f)["files"]
  assert manifest["s3fd-619a316812.pth"] == {"family": "s3fd", "format": "legacy"}
  stats = {}
  dst = porting.convert(out / "s3fd-619a316812.pth", tmp_path / "ckpt", stats=stats)
  assert stats["family"] == "s3fd" and stats["num_keys"] == 65
  model = load_pretrained(dst, family="s3fd")
  with np.load(out / "outputs_s3fd_b2.npz") as z:
    inputs = {k: z[k] for k in z.files if not k.startswith("out_")}
    want = {k[4:]: z[k] for k in z.files if k.startswith("out_")}
  assert sorted(want) == sorted([f"cls{i}" for i in range(6)] + [f"reg{i}" for i in range(6)])
  # Every head has cells at 128 px, also the stride-128 one; faces are not all one class.
  assert want["cls5"].shape == (2, 2, 2, 2) and 0.01 < want["cls0"][:, 1].mean() < 0.99
  diffs = parity.max_abs_diffs(parity.run_flax("s3fd", model, inputs), want)
  print("\ns3fd torch file parity B=2: " + ", ".join(f"{k}={v:.2e}" for k, v in diffs.items()))
  assert all(v <= TOL for v in diffs.values()), diffs
