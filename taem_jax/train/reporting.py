"""Trainer hooks that report a run: tqdm progress, TensorBoard, a JSON-lines log, sample PNGs
and sample mp4s.

The trainer calls these (see `taem_jax.train.trainer.Hook`); the command-line layer decides
which ones to create, so library code stays silent. In a multi-process run only process 0
writes; the others get no-op hooks from `default_hooks`.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Mapping

import cv2
import jax
import numpy as np
import tqdm

from taem_jax import video
from taem_jax.face.crop import to_uint8
from taem_jax.rates import VIDEO_FPS

# Frames per row when a sample video is laid out as one image.
GRID_COLUMNS = 8


def frame_grid(x: np.ndarray, columns: int = GRID_COLUMNS) -> np.ndarray:
  """Sample videos as images: each clip's frames in reading order, `columns` to a row.

  Images pass through. The last row is padded with black frames.

  Shapes:
    x: (N, H, W, C) images or (N, T, H, W, C) videos, uint8 -> (N, H', W', C) uint8 with
    H' = ceil(T / columns) H and W' = min(T, columns) W for videos.
  """
  x = to_uint8(x)
  if x.ndim != 5:
    return x
  n, t, h, w, c = x.shape
  cols = max(1, min(t, columns))
  rows = -(-t // cols)
  padded = np.zeros((n, rows * cols, h, w, c), np.uint8)
  padded[:, :t] = x
  grid = padded.reshape(n, rows, cols, h, w, c).transpose(0, 1, 3, 2, 4, 5)
  return np.ascontiguousarray(grid.reshape(n, rows * h, cols * w, c))


class ProgressBar:
  """A tqdm bar over steps with step/s, ETA and the current loss (writes to stderr)."""

  def __init__(self, desc: str = "train", keys: tuple[str, ...] = ("loss",), file=None):
    self._desc, self._keys, self._file = desc, keys, file
    self._bar = None

  def on_start(self, step: int, total: int, origin: str) -> None:
    self._bar = tqdm.tqdm(total=total, initial=step, desc=self._desc, unit="step",
                          dynamic_ncols=True, file=self._file or sys.stderr, smoothing=0.1)
    if origin != "scratch":
      self._bar.write(f"resuming from {origin}" if origin.startswith("checkpoint") else
                      "starting from --init_from weights", file=self._bar.fp)

  def on_step(self, step: int, metrics: Mapping[str, float]) -> None:
    if self._bar is None:
      return
    self._bar.update(step - self._bar.n)
    shown = {k: f"{metrics[k]:.4g}" for k in self._keys if k in metrics}
    if shown:
      self._bar.set_postfix(shown, refresh=False)

  def on_eval_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
    if self._bar is not None and metrics:
      self._bar.write(f"eval @ {step}: " +
                      ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())),
                      file=self._bar.fp)

  def on_end(self, step: int) -> None:
    if self._bar is not None:
      self._bar.update(step - self._bar.n)
      self._bar.close()
      self._bar = None


class TensorBoardWriter:
  """Scalars under `train/` and `eval/`, samples as images, via tensorboardX.

  Both curves use the trainer's global step and the same metric names, and a custom-scalars
  layout ("train vs held-out", written once both kinds have been seen) draws `train/<k>` and
  `eval/<k>` of every shared name in one chart, so over-fitting shows as two lines parting.
  Videos (N, T, H, W, C) are written as one image per clip (`frame_grid`), since
  tensorboardX's video encoder needs moviepy, which the project does not depend on.
  """

  def __init__(self, logdir: str | os.PathLike, max_samples: int = 4):
    # Heavy (protobuf, its own writers): imported only when TensorBoard is on.
    from tensorboardX import SummaryWriter  # lazy: only when TensorBoard logging is on
    self._writer = SummaryWriter(os.fspath(logdir))
    self._max = max_samples
    self._keys = {"train": set(), "eval": set()}
    self._layout_written = False

  def _scalars(self, kind: str, step: int, metrics: Mapping[str, float]) -> None:
    for k, v in metrics.items():
      self._writer.add_scalar(f"{kind}/{k}", v, step)
    self._keys[kind].update(metrics)
    shared = sorted(self._keys["train"] & self._keys["eval"])
    if shared and not self._layout_written:
      # tensorboardX allows one layout per writer: written when the first pair exists.
      self._writer.add_custom_scalars({"train vs held-out": {
          k: ["Multiline", [f"train/{k}", f"eval/{k}"]] for k in shared}})
      self._layout_written = True
    self._writer.flush()

  def on_train_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
    metrics = dict(metrics)
    if metrics.get("steps_per_sec", 0) > 0:
      metrics["step_time_sec"] = 1.0 / metrics["steps_per_sec"]
    self._scalars("train", step, metrics)

  def on_eval_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
    self._scalars("eval", step, metrics)

  def on_samples(self, step: int, samples: Mapping[str, np.ndarray]) -> None:
    for name, x in samples.items():
      self._writer.add_images(f"samples/{name}", frame_grid(np.asarray(x)[:self._max]), step,
                              dataformats="NHWC")
    self._writer.flush()

  def on_end(self, step: int) -> None:  # pylint: disable=unused-argument
    self._writer.close()


class JsonlWriter:
  """Appends one JSON object per logged step to a file (greppable, plots without TensorBoard).

  On resume, lines for steps after the restored step are dropped first, so the file always
  describes exactly the steps that the final parameters went through.
  """

  def __init__(self, path: str | os.PathLike, every_step: bool = False):
    self.path = os.fspath(path)
    self._every_step = every_step
    self._f = None

  def on_start(self, step: int, total: int, origin: str) -> None:  # pylint: disable=unused-argument
    kept = []
    if os.path.exists(self.path):
      with open(self.path) as f:
        for line in f:
          try:
            rec = json.loads(line)
          except json.JSONDecodeError:
            continue  # a line cut short by a kill
          if rec.get("step", 0) <= step:
            kept.append(line if line.endswith("\n") else line + "\n")
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(kept)
    os.replace(tmp, self.path)
    self._f = open(self.path, "a")

  def _write(self, kind: str, step: int, metrics: Mapping[str, float]) -> None:
    if self._f is None:
      return
    self._f.write(json.dumps({"step": step, "kind": kind, "time": time.time(), **metrics}) + "\n")
    self._f.flush()

  def on_step(self, step: int, metrics: Mapping[str, float]) -> None:
    if self._every_step:
      self._write("step", step, metrics)

  def on_train_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
    self._write("train", step, metrics)

  def on_eval_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
    self._write("eval", step, metrics)

  def on_end(self, step: int) -> None:  # pylint: disable=unused-argument
    if self._f is not None:
      self._f.close()
      self._f = None


class SampleImageWriter:
  """Writes each sample image batch as one PNG, `<dir>/<name>_<step>.png` (images stacked).

  Images (N, H, W, 3) RGB are stacked vertically; videos (N, T, H, W, C) as frame grids
  (`frame_grid`; `SampleVideoWriter` writes them as mp4s).
  """

  def __init__(self, directory: str | os.PathLike, max_samples: int = 4):
    self.directory = os.fspath(directory)
    self._max = max_samples

  def on_samples(self, step: int, samples: Mapping[str, np.ndarray]) -> None:
    os.makedirs(self.directory, exist_ok=True)
    for name, x in samples.items():
      x = frame_grid(np.asarray(x)[:self._max])
      image = x.reshape(-1, *x.shape[2:])
      if image.shape[-1] == 3:
        image = image[..., ::-1]  # RGB -> BGR for OpenCV
      cv2.imwrite(os.path.join(self.directory, f"{name}_{step:07d}.png"), image)


class SampleVideoWriter:
  """Writes the first clip of each sample video (N, T, H, W, 3) RGB as an mp4 in `directory`.

  The file is `step_<step:06d>.mp4` when the samples hold one video, `<name>_step_<step>.mp4`
  otherwise; each is written atomically (`taem_jax.video.write_video`), silent, at `fps`.
  Images are left to the other writers.
  """

  def __init__(self, directory: str | os.PathLike, fps: float = VIDEO_FPS):
    self.directory = os.fspath(directory)
    self._fps = fps

  def on_samples(self, step: int, samples: Mapping[str, np.ndarray]) -> None:
    clips = {k: to_uint8(v) for k, v in samples.items() if np.ndim(v) == 5}
    if not clips:
      return
    os.makedirs(self.directory, exist_ok=True)
    for name, x in clips.items():
      stem = f"step_{step:06d}" if len(clips) == 1 else f"{name}_step_{step:06d}"
      frames = np.ascontiguousarray(x[0][..., ::-1])  # RGB -> BGR, as the writer takes it
      video.write_video(os.path.join(self.directory, stem + ".mp4"), frames, self._fps)


def read_jsonl(path: str | os.PathLike, kind: str | None = None) -> list[dict[str, Any]]:
  """The records of a `JsonlWriter` file (optionally only one kind: 'step', 'train', 'eval')."""
  out = []
  with open(path) as f:
    for line in f:
      try:
        rec = json.loads(line)
      except json.JSONDecodeError:
        continue
      if kind is None or rec.get("kind") == kind:
        out.append(rec)
  return out


def default_hooks(workdir: str | os.PathLike, *, progress: bool = True,
                  tensorboard: bool = True, jsonl_every_step: bool = False) -> list[Any]:
  """The hooks a CLI run wants: progress bar, TensorBoard and JSONL log (process 0 only)."""
  if jax.process_index() != 0:
    return []
  workdir = os.fspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  hooks: list[Any] = [JsonlWriter(os.path.join(workdir, "metrics.jsonl"), jsonl_every_step)]
  if tensorboard:
    hooks.append(TensorBoardWriter(os.path.join(workdir, "tensorboard")))
  hooks.append(SampleImageWriter(os.path.join(workdir, "samples")))
  hooks.append(SampleVideoWriter(os.path.join(workdir, "samples")))
  if progress:
    hooks.append(ProgressBar())
  return hooks

