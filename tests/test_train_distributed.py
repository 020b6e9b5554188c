"""The trainer through experiments/train.py in subprocesses: SIGKILL resume, 2 forced devices,
2 processes on localhost, and the missing-corpus message.

Every run trains the toy task's `:tiny` config (40 steps, checkpoint every 5, metrics every
step) and is compared with one uninterrupted single-device run of the same config.
"""
import os
import pathlib
import random
import socket
import subprocess
import sys

import numpy as np
import pytest
import trainer_helpers

from taem_jax.train import checkpoint as ckpt_lib
from taem_jax.train import reporting

REPO = pathlib.Path(__file__).resolve().parents[1]
TRAIN = str(REPO / "experiments" / "train.py")
TOY_TINY = f"--config={REPO / 'experiments/configs/toy.py'}:tiny"
STEPS = 40
QUIET = ["--noprogress", "--notensorboard"]


def _env(devices: int = 1) -> dict:
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  env.pop("XLA_FLAGS", None)
  if devices > 1:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return env


def _train(workdir, *extra, devices=1, timeout=240):
  cmd = [sys.executable, TRAIN, TOY_TINY, f"--workdir={workdir}", *QUIET, *extra]
  proc = subprocess.run(cmd, env=_env(devices), capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _final(workdir):
  state, meta = ckpt_lib.load_arrays(pathlib.Path(workdir) / "checkpoints")
  assert meta["step"] == STEPS
  return state


def _steps(workdir):
  return reporting.read_jsonl(pathlib.Path(workdir) / "metrics.jsonl", kind="train")


def _assert_same_params(a, b, rtol=1e-5, atol=1e-6):
  leaves_a, leaves_b = trainer_helpers.flatten(a["model"]), trainer_helpers.flatten(b["model"])
  assert leaves_a.keys() == leaves_b.keys()
  for k in leaves_a:
    np.testing.assert_allclose(leaves_a[k], leaves_b[k], rtol=rtol, atol=atol, err_msg=k)
  np.testing.assert_array_equal(a["optimizer"]["step"], b["optimizer"]["step"])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """One uninterrupted single-device run: (final state, per-step records)."""
  wd = tmp_path_factory.mktemp("reference")
  _train(wd)
  recs = _steps(wd)
  assert [r["step"] for r in recs] == list(range(1, STEPS + 1))
  return _final(wd), recs


def test_sigkill_at_random_step_resumes_without_losing_or_repeating_steps(tmp_path, reference):
  ref_state, ref_steps = reference
  kill_at = random.Random().randint(3, STEPS - 6)
  wd = tmp_path / "killed"
  cmd = [sys.executable, TRAIN, TOY_TINY, f"--workdir={wd}", *QUIET,
         "--config.data.load_delay=0.05"]  # ~2 s of training: room to kill mid-way
  saved = trainer_helpers.kill_at_step(cmd, _env(), wd, kill_at, STEPS, timeout=180)

  out = _train(wd)  # the same command resumes
  assert f"started from {'checkpoint@' + str(saved) if saved else 'scratch'}" in out.stdout, (
      kill_at, saved, out.stdout)
  recs = _steps(wd)
  # Every step exactly once, each on the same examples in the same order as the reference.
  assert [r["step"] for r in recs] == list(range(1, STEPS + 1)), (kill_at, saved)
  for r, ref in zip(recs, ref_steps):
    assert r["data_fingerprint"] == ref["data_fingerprint"], (r["step"], kill_at, saved)
    np.testing.assert_allclose(r["loss"], ref["loss"], rtol=1e-5, err_msg=str(r["step"]))
  _assert_same_params(_final(wd), ref_state)


def test_two_forced_devices_match_one(tmp_path, reference):
  ref_state, ref_steps = reference
  _train(tmp_path, devices=2)
  recs = _steps(tmp_path)
  assert [r["data_fingerprint"] for r in recs] == [r["data_fingerprint"] for r in ref_steps]
  _assert_same_params(_final(tmp_path), ref_state)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_on_localhost_match_one(tmp_path, reference):
  """jax.distributed with 2 CPU processes (1 device each; gloo collectives) = 1 process."""
  ref_state, ref_steps = reference
  port = _free_port()
  procs = []
  for pid in (0, 1):
    cmd = [sys.executable, TRAIN, TOY_TINY, f"--workdir={tmp_path}", *QUIET, "--distributed",
           f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
           f"--process_id={pid}"]
    procs.append(subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
  outs = [p.communicate(timeout=300) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  recs = _steps(tmp_path)  # written by process 0 only
  assert [r["data_fingerprint"] for r in recs] == [r["data_fingerprint"] for r in ref_steps]
  _assert_same_params(_final(tmp_path), ref_state)
  meta = ckpt_lib.CheckpointStore(tmp_path / "checkpoints").restore_meta(STEPS)
  assert meta["process_count"] == 2 and len(meta["data_iterator"]) == 2


def test_missing_grid_explains_how_to_get_it(tmp_path):
  proc = subprocess.run([sys.executable, TRAIN, "--dataset=grid", f"--workdir={tmp_path}"],
                        env=_env(), capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr
  assert "Traceback" not in proc.stderr
  assert proc.stderr.startswith("error: the GRID corpus is not included")
  assert "--manual_dir=" in proc.stderr
  assert "experiments/make_sample_corpus.py" in proc.stderr
  assert "--dataset=sample" in proc.stderr
  # A folder that does not exist gets the same help, naming the folder.
  proc = subprocess.run([sys.executable, TRAIN, "--dataset=grid", f"--workdir={tmp_path}",
                         f"--manual_dir={tmp_path / 'nope'}"], env=_env(), capture_output=True,
                        text=True, timeout=120)
  assert proc.returncode == 2 and "nope does not exist" in proc.stderr
  assert "Traceback" not in proc.stderr


def test_help_explains_the_flags():
  proc = subprocess.run([sys.executable, TRAIN, "--help"], env=_env(),
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0
  for word in ("--dataset", "--workdir", "--init_from", "--manual_dir", "Resume is automatic",
               "--distributed"):
    assert word in proc.stdout, word
