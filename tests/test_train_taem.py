"""TAEM through the trainer: the `:tiny` synthetic config learns (L_dis and L_dur fall), the
frozen Wav2Lip target stays frozen, `experiments/train.py --export` writes a TAEM checkpoint
that `load_taem` reads, and the dataset configs load."""
import importlib.util
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from taem_jax.models.taem_checkpoint import load_taem
from taem_jax.models.targets import audio_encoder_fingerprint
from taem_jax.train import checkpoint as ckpt_lib
from taem_jax.train import mesh as mesh_lib
from taem_jax.train import tasks
from taem_jax.train import trainer as trainer_lib

import trainer_helpers

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(name, variant="tiny"):
  path = REPO / "experiments" / "configs" / f"{name}.py"
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(variant)


def _run(config, workdir):
  _, result, rec = trainer_helpers.run(tasks.build, config, workdir)
  return result, rec


def test_tiny_synthetic_taem_learns(tmp_path):
  config = load_config("synthetic")
  config.train.async_checkpointing = False
  result, rec = _run(config, tmp_path)
  n = config.train.num_steps
  assert result.step == n
  mean = lambda key, steps: np.mean([rec.steps[s][key] for s in steps])  # noqa: E731
  first, last = range(1, 11), range(n - 9, n + 1)
  assert mean("mse", last) < 0.5 * mean("mse", first), (mean("mse", first), mean("mse", last))
  assert mean("duration", last) < 0.3 * mean("duration", first)
  ev = rec.evals[n]
  assert ev["mse"] < 0.5 * mean("mse", first)
  assert np.isfinite(ev["mse_predicted_durations"])


def test_wav2lip_target_is_frozen_and_gives_z_a(tmp_path):
  """z_a computed on the fly by a (tiny, random) Wav2Lip: only TAEM's weights move."""
  config = load_config("synthetic")
  config.train.num_steps = 3
  config.train.eval_every = 0
  config.train.checkpoint_every = 0
  config.target.z_a = "wav2lip"
  config.data.batch_size = 4
  mesh = mesh_lib.make_mesh()
  task, it, _ = tasks.build(config, mesh)
  assert task.wav2lip_config == {"width": 1 / 16}
  batch = next(it)
  assert "z_a" not in batch and batch["mel_windows"].shape[-3:] == (80, 16, 1)

  fresh = task.make_model(nnx.Rngs(config.seed))
  trainer = trainer_lib.Trainer(task, config, tmp_path, it, mesh=mesh)
  result = trainer.run()
  trainer.close()
  assert np.isfinite(result.last_metrics["mse"])
  before = jax.tree.leaves(nnx.state(fresh.wav2lip, nnx.Param))
  after = jax.tree.leaves(nnx.state(result.model.wav2lip, nnx.Param))
  for a, b in zip(before, after):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # BatchNorm statistics too: the export's fingerprint is the Wav2Lip it started from.
  assert audio_encoder_fingerprint(result.model.wav2lip) == audio_encoder_fingerprint(
      fresh.wav2lip)
  moved = [not np.allclose(np.asarray(a), np.asarray(b)) for a, b in zip(
      jax.tree.leaves(nnx.state(fresh.taem, nnx.Param)),
      jax.tree.leaves(nnx.state(result.model.taem, nnx.Param)))]
  assert all(moved)


def _flat(tree, prefix=()):
  if isinstance(tree, dict):
    # Orbax restores list indices as strings, nnx.to_pure_dict keeps them as ints.
    return {k: v for key, sub in tree.items()
            for k, v in _flat(sub, prefix + (str(key),)).items()}
  return {prefix: np.asarray(tree)}


def test_train_py_export_writes_a_taem_checkpoint(tmp_path):
  """A few steps of the `:tiny` synthetic TAEM through the command line, exported, reloaded."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  env.pop("XLA_FLAGS", None)
  cmd = [sys.executable, str(REPO / "experiments" / "train.py"),
         f"--config={REPO / 'experiments/configs/synthetic.py'}:tiny", "--steps=3",
         "--config.train.eval_every=0", f"--workdir={tmp_path / 'run'}",
         f"--export={tmp_path / 'taem'}", "--noprogress", "--notensorboard"]
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "exported" in proc.stdout

  model, info = load_taem(tmp_path / "taem")
  config = load_config("synthetic")
  assert len(info.vocab) == config.data.vocab_size == model.config.vocab_size
  assert info.speaker_embedding == {"kind": "synthetic", "dim": config.model.speaker_dim}
  assert info.training["objective"] == "mse" and info.training["step"] == 3
  assert info.training["config"]["data"]["dataset"] == "synthetic"  # the run's config, recorded
  assert "dataset" not in info.training  # in-memory data: no built dataset to name
  assert info.target == {"name": "wav2lip", "latent_dim": config.model.latent_dim,
                         "config": {"width": 1 / 16}}
  # The exported weights are the trained ones.
  state, meta = ckpt_lib.load_arrays(tmp_path / "run" / "checkpoints")
  assert meta["step"] == 3
  trained = _flat(state["model"]["taem"])
  exported = _flat(nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.RngState))))
  assert trained.keys() == exported.keys()
  for k in trained:
    np.testing.assert_array_equal(exported[k], trained[k], err_msg=str(k))


@pytest.mark.parametrize("name", ["grid", "tcd_timit", "lrs2", "sample", "synthetic", "toy"])
@pytest.mark.parametrize("variant", [None, "tiny"])
def test_configs_load_and_document_their_command(name, variant):
  config = load_config(name, variant)
  assert config.data.batch_size > 0 and config.train.num_steps > 0
  doc = (REPO / "experiments" / "configs" / f"{name}.py").read_text().split('"""')[1]
  assert "experiments/train.py" in doc.split("\n\n")[1]  # the command comes first
  if name not in ("toy", "synthetic"):
    assert config.optim.learning_rate == (1e-4 if variant is None else 1e-3)
    assert (config.optim.b1, config.optim.b2, config.optim.eps) == (0.9, 0.98, 1e-8)
