"""Reporting hooks: TensorBoard scalars/samples, the JSON-lines log on resume, the progress bar."""
import io
import json

import numpy as np
from tensorboardX.proto import layout_pb2  # noqa: TID253 - reads the writer's layout
from trainer_helpers import read_events

from taem_jax import video
from taem_jax.train import reporting


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


def test_tensorboard_overlays_train_and_held_out_curves(tmp_path):
  tb = reporting.TensorBoardWriter(tmp_path)
  tb.on_eval_metrics(0, {"mse": 1.0, "duration_mae_frames": 6.0})  # step-0 baseline first
  tb.on_train_metrics(5, {"mse": 0.8, "lr": 1e-3, "steps_per_sec": 2.0})
  tb.on_eval_metrics(10, {"mse": 0.75, "duration_mae_frames": 4.0})
  tb.on_train_metrics(10, {"mse": 0.5, "lr": 1e-3, "steps_per_sec": 2.0})
  tb.on_end(10)
  layouts = []
  scalars, _ = read_events(tmp_path, layouts)
  assert scalars["eval/mse"] == [(0, 1.0), (10, 0.75)]
  assert [s for s, _ in scalars["train/mse"]] == [5, 10]
  assert len(layouts) == 1  # tensorboardX allows one layout per writer
  layout = layout_pb2.Layout.FromString(layouts[0])
  charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
  assert charts == {"mse": ["train/mse", "eval/mse"]}  # only names both kinds have


def test_frame_grid_lays_frames_out_in_reading_order():
  clip = np.zeros((1, 10, 2, 3, 3), np.uint8)
  for t in range(10):
    clip[0, t] = t + 1
  grid = reporting.frame_grid(clip, columns=4)
  assert grid.shape == (1, 3 * 2, 4 * 3, 3)
  cells = grid[0, ::2, ::3, 0]  # one pixel per frame cell
  np.testing.assert_array_equal(cells, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 0, 0]])
  images = np.ones((2, 4, 4, 3), np.float32)
  np.testing.assert_array_equal(reporting.frame_grid(images), np.full((2, 4, 4, 3), 255))


def test_sample_video_writer_writes_one_mp4_per_step(tmp_path):
  clip = np.zeros((2, 6, 32, 48, 3), np.uint8)
  clip[0, :, :, :, 0] = 200  # red in RGB
  w = reporting.SampleVideoWriter(tmp_path / "samples")
  w.on_samples(20, {"clip": clip, "image": np.zeros((1, 8, 8, 3), np.uint8)})
  path = tmp_path / "samples" / "step_000020.mp4"
  info = video.probe(path)
  assert (info.n_frames, info.width, info.height) == (6, 48, 32)
  frames, _ = video.read_video(path)
  b, g, r = frames[0, 16, 24].astype(int)  # BGR as read: the red channel stays red
  assert r > 150 and b < 60 and g < 60, (b, g, r)
  assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_000020.mp4"]
