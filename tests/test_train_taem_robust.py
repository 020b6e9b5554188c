"""A tiny TAEM through experiments/train.py in subprocesses: SIGKILL at a random step resumes
to the same run, 2 forced devices match 1, and a run is watchable (held-out metrics at step 0,
sample clips in TensorBoard and as mp4s). In-process: the duration errors in frames and the
layout of a sample clip.

Every run trains the synthetic `:tiny` TAEM (z_a stored with the batches), shortened to
`STEPS` steps with metrics every step, a synchronous checkpoint every `CKPT` steps and a
validation pass every `EVAL` steps; it is compared with one uninterrupted single-device run,
which also renders samples with a random tiny Wav2Lip given as `config.target.wav2lip_dir`.
"""
import os
import pathlib
import random
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import trainer_helpers
from flax import nnx

from taem_jax import video
from taem_jax.data.synthetic import synthetic_arrays, synthetic_clips
from taem_jax.face.crop import to_uint8
from taem_jax.models import TAEMConfig, Wav2Lip, save_pretrained
from taem_jax.synthesis import runner
from taem_jax.train import checkpoint as ckpt_lib
from taem_jax.train import losses, reporting
from taem_jax.train.tasks.taem import TAEMTask, duration_errors

REPO = pathlib.Path(__file__).resolve().parents[1]
TRAIN = str(REPO / "experiments" / "train.py")
STEPS, CKPT, EVAL = 40, 10, 20

# The synthetic :tiny config, shortened, with the simulated loading delay the kill test needs
# (a field the synthetic config does not have).
CONFIG = f'''
import importlib.util

spec = importlib.util.spec_from_file_location(
    "synthetic_cfg", {str(REPO / "experiments" / "configs" / "synthetic.py")!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)


def get_config(arg=None):
  c = mod.get_config("tiny")
  c.data.load_delay = 0.0
  c.train.num_steps = {STEPS}
  c.train.log_every = 1
  c.train.checkpoint_every = {CKPT}
  c.train.async_checkpointing = False  # a kill after step {CKPT} always finds its checkpoint
  c.train.eval_every = {EVAL}
  c.train.eval_batches = 1
  c.train.sample_every = 0
  return c
'''


def _env(devices: int = 1) -> dict:
  # Most XLA passes cost more than they save on a model this small.
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
             JAX_DISABLE_MOST_OPTIMIZATIONS="true")
  env.pop("XLA_FLAGS", None)
  if devices > 1:
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  return env


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
  path = tmp_path_factory.mktemp("config") / "taem_robust.py"
  path.write_text(CONFIG)
  return path


def _cmd(config_file, workdir, *extra):
  return [sys.executable, TRAIN, f"--config={config_file}", f"--workdir={workdir}",
          "--noprogress", *extra]


def _train(config_file, workdir, *extra, devices=1):
  proc = subprocess.run(_cmd(config_file, workdir, "--notensorboard", *extra),
                        env=_env(devices), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _records(workdir, kind):
  return reporting.read_jsonl(pathlib.Path(workdir) / "metrics.jsonl", kind=kind)


def _final(workdir):
  state, meta = ckpt_lib.load_arrays(pathlib.Path(workdir) / "checkpoints")
  assert meta["step"] == STEPS
  return trainer_helpers.flatten(state["model"]), np.asarray(state["optimizer"]["step"])


def _assert_same_params(a, b, rtol, atol, skip_key_bias=False):
  (pa, step_a), (pb, step_b) = a, b
  assert pa.keys() == pb.keys() and any(k.startswith("taem/") for k in pa)
  for k in pa:
    x, y = pa[k], pb[k]
    if skip_key_bias and k.endswith("attn/qkv/bias"):
      # The key bias adds the same score to every key, which softmax ignores: its gradient is
      # float noise, and Adam scales noise up to lr-sized steps. Query and value biases count.
      third = x.shape[-1] // 3
      x, y = np.delete(x, np.s_[third:2 * third], -1), np.delete(y, np.s_[third:2 * third], -1)
    np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=k)
  np.testing.assert_array_equal(step_a, step_b)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, config_file):
  """One uninterrupted single-device run with TensorBoard and samples every EVAL steps:
  (workdir, final state, train records, eval records)."""
  root = tmp_path_factory.mktemp("reference")
  w2l = Wav2Lip(width=1 / 16, rngs=nnx.Rngs(0))  # z_a width 32 = the tiny TAEM's latent_dim
  save_pretrained(w2l, root / "wav2lip", family="wav2lip", config=w2l.get_config())
  wd = root / "run"
  proc = subprocess.run(_cmd(config_file, wd, f"--config.target.wav2lip_dir={root / 'wav2lip'}",
                             f"--config.train.sample_every={EVAL}"),
                        env=_env(), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  train = _records(wd, "train")
  assert [r["step"] for r in train] == list(range(1, STEPS + 1))
  return wd, _final(wd), train, _records(wd, "eval")


def test_sigkill_after_the_first_checkpoint_resumes_to_the_same_run(tmp_path, config_file,
                                                                    reference):
  _, ref_state, ref_train, ref_eval = reference
  kill_at = random.Random().randint(CKPT + 2, STEPS - 12)
  wd = tmp_path / "killed"
  # ~50 ms per batch: the run is still going when the kill comes.
  cmd = _cmd(config_file, wd, "--notensorboard", "--config.data.load_delay=0.05")
  saved = trainer_helpers.kill_at_step(cmd, _env(), wd, kill_at, STEPS, timeout=240)
  assert saved is not None and saved >= CKPT, (kill_at, saved)

  out = _train(config_file, wd)  # the same command resumes
  assert f"started from checkpoint@{saved}" in out.stdout, (kill_at, saved, out.stdout)
  train = _records(wd, "train")
  assert [r["step"] for r in train] == list(range(1, STEPS + 1)), (kill_at, saved)
  for r, ref in zip(train, ref_train):
    for key in ("loss", "mse", "duration", "grad_norm"):
      np.testing.assert_allclose(r[key], ref[key], rtol=1e-5, err_msg=f"{key}@{r['step']}")
  evals = [r["step"] for r in _records(wd, "eval")]
  # The step-0 baseline was not redone by the resumed run; no pass is logged twice.
  assert evals.count(0) == 1 and evals.count(STEPS) == 1 and len(set(evals)) == len(evals)
  np.testing.assert_allclose(_records(wd, "eval")[-1]["mse"], ref_eval[-1]["mse"], rtol=1e-5)
  _assert_same_params(_final(wd), ref_state, rtol=1e-5, atol=1e-6)


def test_two_forced_devices_match_one(tmp_path, config_file, reference):
  _, ref_state, ref_train, ref_eval = reference
  _train(config_file, tmp_path, devices=2)
  train = _records(tmp_path, "train")
  assert [r["step"] for r in train] == list(range(1, STEPS + 1))
  for r, ref in zip(train, ref_train):  # the batch is split, so sums are reordered
    np.testing.assert_allclose(r["loss"], ref["loss"], rtol=1e-4, err_msg=str(r["step"]))
  evals = _records(tmp_path, "eval")
  assert [r["step"] for r in evals] == [r["step"] for r in ref_eval]
  np.testing.assert_allclose(evals[-1]["mse"], ref_eval[-1]["mse"], rtol=1e-4)
  _assert_same_params(_final(tmp_path), ref_state, rtol=1e-3, atol=1e-5, skip_key_bias=True)


def test_a_run_shows_held_out_metrics_from_step_0_and_sample_clips(reference):
  wd, _, train, evals = reference
  assert [r["step"] for r in evals] == [0, EVAL, STEPS]
  first = evals[0]
  for key in ("loss", "mse", "duration", "mse_predicted_durations", "duration_mae_frames",
              "length_error_frames", "length_error_ratio"):
    assert np.isfinite(first[key]), key
  # Held-out and training curves share names, so they overlay.
  assert {"loss", "mse", "duration"} <= set(first) & set(train[0])
  assert evals[-1]["mse"] < first["mse"]  # it learned something the held-out data shows
  # The duration predictor's error in frames shrinks as L_dur falls.
  assert evals[-1]["duration_mae_frames"] < first["duration_mae_frames"]

  scalars, images = trainer_helpers.read_events(wd / "tensorboard")
  assert scalars["eval/mse"][0][0] == 0 and scalars["eval/duration_mae_frames"][0][0] == 0
  assert [s for s, _ in scalars["train/mse"]] == list(range(1, STEPS + 1))
  clip_tags = [t for t in images if t.startswith("samples/clip")]
  assert clip_tags and sorted(images[clip_tags[0]]) == [0, EVAL, STEPS]
  for step in (0, EVAL, STEPS):
    info = video.probe(wd / "samples" / f"step_{step:06d}.mp4")
    assert info.width == 3 * 96 and info.height == 96 and info.n_frames > 0
  assert not any(p.name.startswith(".") for p in (wd / "samples").iterdir())  # no temp files


def test_duration_errors_count_frames_over_real_phonemes_only():
  config = TAEMConfig.tiny(log_duration=True, min_duration=1, pause_ids=())
  true = jnp.array([[4, 8, 4, 0], [12, 0, 0, 0], [0, 0, 0, 0]], jnp.int32)
  mask = true > 0
  predicted = jnp.array([[5, 8, 2, 99], [12, 0, 0, 0], [7, 7, 7, 7]], jnp.float32)
  phonemes = jnp.where(mask, 3, 0)
  got = duration_errors(jnp.log1p(predicted), phonemes, mask, true, config)
  # Errors 1, 0, 2 and 0 over the four real phonemes; padding (99) and the empty row count not.
  np.testing.assert_allclose(got["duration_mae_frames"], 3 / 4, rtol=1e-5)
  np.testing.assert_allclose(got["length_error_frames"], (1 + 0) / 2, rtol=1e-5)  # |15-16|, 0
  np.testing.assert_allclose(got["length_error_ratio"], (1 / 16) / 2, rtol=1e-5)


@pytest.mark.usefixtures("fast_compile")
def test_sample_clip_is_ground_truth_audio_and_text_side_by_side():
  cfg = TAEMConfig.tiny(vocab_size=12, latent_dim=32, speaker_dim=8)
  task = TAEMTask(cfg, losses.LossConfig())
  model = task.make_model(nnx.Rngs(0))
  batch = synthetic_arrays(2, max_phonemes=8, max_frames=12, vocab_size=12, speaker_dim=8,
                           latent_dim=32, with_mel=True)
  assert task.samples(model, batch) == {}  # no faces, no generator: nothing to show
  batch["faces"] = synthetic_clips(2, frames=12)["faces"]
  assert task.samples(model, batch) == {}
  task.renderer = Wav2Lip(width=1 / 16, rngs=nnx.Rngs(1))
  clip = task.samples(model, batch)["clip"]
  n = int(batch["n_frames"][0])
  assert clip.dtype == np.uint8 and clip.ndim == 5 and clip.shape[0] == 1
  assert clip.shape[2:] == (96, 3 * 96, 3) and clip.shape[1] >= n
  rgb = batch["faces"][0, :n, ..., ::-1]
  np.testing.assert_array_equal(clip[0, :n, :, :96], rgb)
  assert not clip[0, n:, :, :96].any()  # black after the clip's end
  audio = runner.run_batched(task.renderer, batch["mel_windows"][0, :n],
                             runner.face_inputs(batch["faces"][0, :n]))
  np.testing.assert_array_equal(clip[0, :n, :, 96:192], to_uint8(audio)[..., ::-1])
  assert clip[0, :, :, 192:].any()  # TAEM's column was rendered
