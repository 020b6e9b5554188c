"""Reporting hooks: TensorBoard scalars/samples, the JSON-lines log on resume, the progress bar."""
import io
import json
import struct

import numpy as np
from tensorboardX.proto import event_pb2  # noqa: TID253 - reads the writer's event files

from taem_jax.train import reporting


def read_events(logdir):
  """(scalars {tag: [(step, value)]}, image tags) from the TFRecord event files in logdir."""
  scalars, images = {}, set()
  for path in sorted(logdir.glob("events.out.tfevents.*")):
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
      (length,) = struct.unpack("<Q", data[pos:pos + 8])
      event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
      pos += 12 + length + 4  # length, its crc, payload, payload crc
      for v in event.summary.value:
        if v.HasField("image"):
          images.add(v.tag)
        elif v.HasField("simple_value"):
          scalars.setdefault(v.tag, []).append((event.step, v.simple_value))
  return scalars, images


def test_tensorboard_scalars_and_samples(tmp_path):
  tb = reporting.TensorBoardWriter(tmp_path)
  tb.on_train_metrics(10, {"loss": 0.5, "grad_norm": 2.0, "lr": 1e-4, "steps_per_sec": 4.0})
  tb.on_eval_metrics(10, {"mse": 0.25})
  tb.on_samples(10, {"frames": np.random.rand(2, 8, 8, 3).astype(np.float32),
                     "clip": np.zeros((1, 3, 8, 8, 3), np.uint8)})
  tb.on_end(10)
  scalars, images = read_events(tmp_path)
  for tag in ("train/loss", "train/grad_norm", "train/lr", "train/step_time_sec", "eval/mse"):
    assert tag in scalars, (tag, scalars)
  assert scalars["train/step_time_sec"] == [(10, 0.25)]
  assert scalars["train/loss"] == [(10, 0.5)]
  assert any(t.startswith("samples/frames") for t in images)
  assert any(t.startswith("samples/clip") for t in images)


def test_jsonl_drops_steps_after_the_restored_one(tmp_path):
  path = tmp_path / "metrics.jsonl"
  w = reporting.JsonlWriter(path)
  w.on_start(0, 10, "scratch")
  for s in range(1, 8):
    w.on_train_metrics(s, {"loss": float(s)})
  w.on_end(7)
  with open(path, "a") as f:
    f.write('{"step": 8, "kind": "tr')  # a line cut short by a kill
  w = reporting.JsonlWriter(path)
  w.on_start(5, 10, "checkpoint@5")  # the run resumes from step 5
  w.on_train_metrics(6, {"loss": 60.0})
  w.on_end(6)
  recs = reporting.read_jsonl(path, kind="train")
  assert [r["step"] for r in recs] == [1, 2, 3, 4, 5, 6]
  assert recs[-1]["loss"] == 60.0
  assert all(json.loads(line) for line in open(path))


def test_progress_bar_counts_steps():
  out = io.StringIO()
  bar = reporting.ProgressBar(file=out)
  bar.on_start(5, 20, "checkpoint@5")
  bar.on_step(6, {"loss": 1.5})
  bar.on_step(9, {"loss": 1.25})
  bar.on_end(9)
  text = out.getvalue()
  assert "resuming from checkpoint@5" in text
  assert "9/20" in text and "loss=1.25" in text
