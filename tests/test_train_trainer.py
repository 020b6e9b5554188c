"""In-process tests of the trainer on the toy task (1 CPU device).

Multi-device, multi-process and SIGKILL tests run subprocesses: tests/test_train_distributed.py.
"""
import importlib.util
import os
import pathlib
import shutil
import signal

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

from taem_jax.data.memory import array_iterator
from taem_jax.train import checkpoint as ckpt_lib
from taem_jax.train import trainer as trainer_lib
from taem_jax.train.tasks import toy
from taem_jax.train.trainer import make_optimizer

REPO = pathlib.Path(__file__).resolve().parents[1]


def toy_config(**train_overrides):
  spec = importlib.util.spec_from_file_location("toy_cfg", REPO / "experiments/configs/toy.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config("tiny")
  c.train.async_checkpointing = False  # deterministic file system state for the assertions
  for k, v in train_overrides.items():
    setattr(c.train, k, v)
  return c


class Recorder:
  """Hook that keeps every step's metrics and eval results."""

  def __init__(self):
    self.steps, self.evals, self.origin = {}, {}, None

  def on_start(self, step, total, origin):
    self.origin = origin

  def on_step(self, step, metrics):
    self.steps[step] = metrics

  def on_eval_metrics(self, step, metrics):
    self.evals[step] = metrics


ARRAYS = toy.toy_arrays(160)
HELD_OUT = {k: v[128:] for k, v in ARRAYS.items()}
TRAIN = {k: v[:128] for k, v in ARRAYS.items()}


def run(workdir, config, *, arrays=TRAIN, shuffle=True, hooks=()):
  rec = Recorder()
  trainer = trainer_lib.Trainer(
      toy.ToyTask(d_hidden=config.model.d_hidden, dropout=config.model.dropout), config,
      workdir, array_iterator(arrays, config.data.batch_size, seed=config.seed,
                              shuffle=shuffle),
      eval_data=lambda: array_iterator(HELD_OUT, 16, seed=0, shuffle=False, repeat=False),
      hooks=[rec, *hooks])
  try:
    result = trainer.run()
  finally:
    trainer.close()
  return result, rec


def params(result):
  return [np.asarray(x) for x in jax.tree.leaves(nnx.state(result.model, nnx.Param))]


def test_toy_training_reduces_held_out_loss(tmp_path):
  config = toy_config(num_steps=60, eval_every=60)
  with config.unlocked():
    config.train.checkpoint_every = 0
  result, rec = run(tmp_path, config)
  first = np.mean([rec.steps[s]["mse"] for s in range(1, 6)])
  last = np.mean([rec.steps[s]["mse"] for s in range(56, 61)])
  assert result.step == 60 and result.resumed_from == "scratch"
  assert last < 0.5 * first, (first, last)
  assert rec.evals[60]["mse"] < 0.5 * first
  # The frozen layer is excluded from the optimiser: its weights must not move.
  fresh = toy.ToyTask().make_model(nnx.Rngs(config.seed))
  np.testing.assert_array_equal(np.asarray(result.model.frozen.kernel[...]),
                                np.asarray(fresh.frozen.kernel[...]))
  assert not np.allclose(np.asarray(result.model.out.kernel[...]),
                         np.asarray(fresh.out.kernel[...]))


def test_resume_continues_exactly(tmp_path):
  config = toy_config(num_steps=20)
  full, rec_full = run(tmp_path / "full", config)

  config.train.num_steps = 12  # stops after a checkpoint at 10 and a final one at 12
  part, rec_a = run(tmp_path / "split", config)
  assert part.step == 12
  config.train.num_steps = 20
  rest, rec_b = run(tmp_path / "split", config)
  assert rec_b.origin == "checkpoint@12"
  assert sorted(rec_b.steps) == list(range(13, 21))
  for s in range(1, 21):  # same data order, same per-step losses (same dropout masks)
    got = (rec_a.steps if s <= 12 else rec_b.steps)[s]
    assert got["data_fingerprint"] == rec_full.steps[s]["data_fingerprint"], s
    np.testing.assert_allclose(got["loss"], rec_full.steps[s]["loss"], rtol=1e-6)
  for a, b in zip(params(full), params(rest)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_interrupt_saves_checkpoint_and_resumes(tmp_path):
  config = toy_config(num_steps=20)
  full, _ = run(tmp_path / "full", config)

  class CtrlC:
    def on_step(self, step, metrics):
      if step == 7:
        os.kill(os.getpid(), signal.SIGINT)

  with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
    run(tmp_path / "int", config, hooks=[CtrlC()])
  store = ckpt_lib.CheckpointStore(tmp_path / "int" / "checkpoints")
  stopped_at = store.latest_step()
  store.close()
  assert stopped_at in (7, 8)  # the step in flight when the signal came is completed first
  rest, rec = run(tmp_path / "int", config)
  assert rec.origin == f"checkpoint@{stopped_at}"
  for a, b in zip(params(full), params(rest)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_partial_checkpoints_are_never_read(tmp_path):
  config = toy_config(num_steps=10)
  run(tmp_path, config)
  ckdir = tmp_path / "checkpoints"
  # What a kill during a save leaves behind: Orbax's temporary directory (here a copy of a
  # real step, renamed, with its arrays corrupted) ...
  tmp = ckdir / "15.orbax-checkpoint-tmp-1700000000"
  shutil.copytree(ckdir / "10", tmp)
  for f in tmp.rglob("*"):
    if f.is_file() and f.stat().st_size > 0 and f.name != "_CHECKPOINT_METADATA":
      f.write_bytes(b"\0garbage")
  # ... and, defensively, a step directory that never got Orbax's final metadata file.
  shutil.copytree(ckdir / "10", ckdir / "20")
  (ckdir / "20" / "_CHECKPOINT_METADATA").unlink()

  store = ckpt_lib.CheckpointStore(ckdir)
  assert store.complete_steps() == [5, 10]
  store.close()
  config.train.num_steps = 12
  result, rec = run(tmp_path, config)
  assert rec.origin == "checkpoint@10"
  assert sorted(rec.steps) == [11, 12]
  assert result.step == 12


def test_non_finite_guard_names_the_step(tmp_path):
  config = toy_config(num_steps=20)
  bad = {k: v.copy() for k, v in TRAIN.items()}
  bad["x"][6 * config.data.batch_size + 3] = np.nan  # 7th batch in order (no shuffle)
  with pytest.raises(trainer_lib.NonFiniteError, match=r"non-finite loss .* at step 7 "):
    run(tmp_path, config, arrays=bad, shuffle=False)
  store = ckpt_lib.CheckpointStore(tmp_path / "checkpoints")
  assert store.latest_step() == 5  # nothing was written from the bad state
  store.close()


def test_load_arrays_and_init_from(tmp_path):
  config = toy_config(num_steps=5)
  first, _ = run(tmp_path / "a", config)
  state, meta = ckpt_lib.load_arrays(tmp_path / "a" / "checkpoints")
  assert meta["step"] == 5 and meta["config"]["task"] == "toy"
  np.testing.assert_allclose(state["model"]["out"]["kernel"],
                             np.asarray(first.model.out.kernel[...]))
  # init_from: a new run starts from run a's weights (not from its optimizer or step).
  trainer = trainer_lib.Trainer(
      toy.ToyTask(), config, tmp_path / "b",
      array_iterator(TRAIN, 16, seed=0), init_from=str(tmp_path / "a" / "checkpoints"))
  config.train.num_steps = 0
  result = trainer.run()
  trainer.close()
  assert result.resumed_from == "init_from" and result.step == 0
  np.testing.assert_allclose(np.asarray(result.model.out.kernel[...]),
                             np.asarray(first.model.out.kernel[...]))
  with pytest.raises(ckpt_lib.UserError, match="no complete checkpoint"):
    ckpt_lib.load_arrays(tmp_path / "nothing")


def test_resume_with_another_model_config_is_a_clear_error(tmp_path):
  config = toy_config(num_steps=5)
  run(tmp_path, config)
  config.model.d_hidden = 16
  config.train.num_steps = 10
  with pytest.raises(ckpt_lib.UserError, match=r"does not fit .* model/hidden/\w+ is \(32"):
    run(tmp_path, config)


def test_cosine_decay_steps_zero_means_the_whole_run():

  optim = ml_collections.ConfigDict(dict(
      learning_rate=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0, warmup_steps=10,
      schedule="cosine", decay_steps=0, final_lr_fraction=0.05, clip_grad_norm=0.0))
  _, schedule = make_optimizer(optim, num_steps=200)
  assert float(schedule(10)) == pytest.approx(1e-3)
  assert float(schedule(105)) == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5), rel=1e-4)
  assert float(schedule(200)) == pytest.approx(5e-5, rel=1e-4)
  optim.decay_steps = 100  # an explicit length wins
  assert float(make_optimizer(optim, num_steps=200)[1](100)) == pytest.approx(5e-5, rel=1e-4)
  optim.decay_steps = 0
  with pytest.raises(ValueError, match="decay_steps"):
    make_optimizer(optim)
