"""Trainer hooks that report a run: tqdm progress, TensorBoard, a JSON-lines log, sample PNGs.

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

from taem_jax.face.crop import to_uint8


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

  Videos (N, T, H, W, C) are written as one image per clip with its frames side by side, since
  tensorboardX's video encoder needs moviepy, which the project does not depend on.
  """

  def __init__(self, logdir: str | os.PathLike, max_samples: int = 4):
    # Heavy (protobuf, its own writers): imported only when TensorBoard is on.
    from tensorboardX import SummaryWriter  # lazy: only when TensorBoard logging is on
    self._writer = SummaryWriter(os.fspath(logdir))
    self._max = max_samples

  def on_train_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
    for k, v in metrics.items():
      self._writer.add_scalar(f"train/{k}", v, step)
    if "steps_per_sec" in metrics and metrics["steps_per_sec"] > 0:
      self._writer.add_scalar("train/step_time_sec", 1.0 / metrics["steps_per_sec"], step)
    self._writer.flush()

  def on_eval_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
    for k, v in metrics.items():
      self._writer.add_scalar(f"eval/{k}", v, step)
    self._writer.flush()

  def on_samples(self, step: int, samples: Mapping[str, np.ndarray]) -> None:
    for name, x in samples.items():
      x = to_uint8(x)[:self._max]
      if x.ndim == 5:  # (N, T, H, W, C) -> (N, H, T*W, C)
        n, t, h, w, c = x.shape
        x = x.transpose(0, 2, 1, 3, 4).reshape(n, h, t * w, c)
      self._writer.add_images(f"samples/{name}", x, step, dataformats="NHWC")
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

  Images (N, H, W, 3) RGB are stacked vertically; videos (N, T, H, W, C) as frame rows.
  """

  def __init__(self, directory: str | os.PathLike, max_samples: int = 4):
    self.directory = os.fspath(directory)
    self._max = max_samples

  def on_samples(self, step: int, samples: Mapping[str, np.ndarray]) -> None:
    os.makedirs(self.directory, exist_ok=True)
    for name, x in samples.items():
      x = to_uint8(x)[:self._max]
      if x.ndim == 5:
        n, t, h, w, c = x.shape
        x = x.transpose(0, 2, 1, 3, 4).reshape(n, h, t * w, c)
      image = x.reshape(-1, *x.shape[2:])
      if image.shape[-1] == 3:
        image = image[..., ::-1]  # RGB -> BGR for OpenCV
      cv2.imwrite(os.path.join(self.directory, f"{name}_{step:07d}.png"), image)


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
  if progress:
    hooks.append(ProgressBar())
  return hooks

