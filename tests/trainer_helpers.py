"""What the trainer tests share: a hook that records what a run reports, one short run, a
SIGKILL at a chosen step, and a TensorBoard event-file reader."""
import os
import pathlib
import signal
import struct
import subprocess
import time

import numpy as np

from tensorboardX.proto import event_pb2  # noqa: TID253 - reads the writer's event files

from taem_jax.train import checkpoint as ckpt_lib
from taem_jax.train import mesh as mesh_lib
from taem_jax.train import reporting
from taem_jax.train import trainer as trainer_lib


class Recorder:
  """Trainer hook keeping every step's metrics, validation results and samples by step."""

  def __init__(self):
    self.steps, self.evals, self.samples = {}, {}, {}

  def on_step(self, step, metrics):
    self.steps[step] = metrics

  def on_eval_metrics(self, step, metrics):
    self.evals[step] = metrics

  def on_samples(self, step, samples):
    self.samples[step] = samples


def run(build, config, workdir):
  """Builds a task with `build(config, mesh)` and trains it in `workdir` on all local devices.

  Returns (task, TrainResult, Recorder).
  """
  mesh = mesh_lib.make_mesh()
  task, it, evals = build(config, mesh)
  rec = Recorder()
  trainer = trainer_lib.Trainer(task, config, workdir, it, eval_data=evals, mesh=mesh,
                                hooks=[rec])
  try:
    result = trainer.run()
  finally:
    trainer.close()
  return task, result, rec


def kill_at_step(cmd, env, workdir, kill_at: int, total_steps: int, timeout: float) -> int | None:
  """Starts a training command, SIGKILLs it once `kill_at` training steps are logged in
  `<workdir>/metrics.jsonl`, and returns the last complete checkpoint step (None if none).

  Fails the test if the run ends by itself before the kill, or if a checkpoint of the whole
  run (`total_steps`) exists afterwards (the kill came too late to test anything).
  """

  workdir = pathlib.Path(workdir)
  proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  log = workdir / "metrics.jsonl"
  deadline = time.time() + timeout
  while time.time() < deadline and proc.poll() is None:
    if log.exists():
      recs = reporting.read_jsonl(log, kind="train")
      if recs and recs[-1]["step"] >= kill_at:
        break
    time.sleep(0.01)
  assert proc.poll() is None, f"run ended before the kill at step {kill_at}: " + \
      proc.stderr.read().decode()[-2000:]
  os.kill(proc.pid, signal.SIGKILL)
  proc.wait()
  proc.stderr.close()
  store = ckpt_lib.CheckpointStore(workdir / "checkpoints", async_save=False)
  saved = store.latest_step()
  store.close()
  assert saved is None or saved < total_steps, (kill_at, saved)
  return saved


def read_events(logdir, layouts=None):
  """(scalars {tag: [(step, value)]}, image tags {tag: [steps]}) from the TFRecord event files
  in logdir. With a list `layouts`, the serialized custom-scalar layouts are appended to it."""
  scalars, images = {}, {}
  for path in sorted(pathlib.Path(logdir).glob("events.out.tfevents.*")):
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4  # length, its crc, payload, payload crc
      for v in event.summary.value:
        if v.HasField("image"):
          images.setdefault(v.tag, []).append(event.step)
        elif v.HasField("simple_value"):
          scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
        elif v.metadata.plugin_data.plugin_name == "custom_scalars" and layouts is not None:
          layouts.append(v.tensor.string_val[0])
  return scalars, images


def flatten(tree, prefix=""):
  """A nested dict of arrays (a loaded checkpoint) as {"a/b/c": np.ndarray}."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}{k}/"))
    else:
      out[prefix + k] = np.asarray(v)
  return out
