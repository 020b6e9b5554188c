"""Training windows cut on the host from clip batches, for the Wav2Lip expert and generator.

The data pipeline yields whole clips (`faces`, `mel_windows`, `n_frames`, `valid`; see
`taem_jax.data.pipeline`); `expert_samples` and `generator_samples` cut Wav2Lip's 5-frame
windows out of them, as the official training scripts do, and `WindowIterator` applies one of
them to every batch with random draws that are a pure function of (seed, batch number): a
resumed run redraws exactly the same windows, and every validation pass sees the same ones.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from taem_jax.errors import UserError
from taem_jax.rates import FACE_SIZE

WINDOW = 5  # video frames per window (Wav2Lip's syncnet_T)
HALF = FACE_SIZE // 2  # first row of the lower half


def _source_rows(n_frames: np.ndarray, valid: np.ndarray, need: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
  """Which clip each row samples from, and its weight (0: filler row or too short a clip).

  Unusable rows borrow the first usable clip (weight 0), so batch statistics stay sensible.
  """
  usable = valid & (n_frames >= need)
  first = int(np.argmax(usable)) if usable.any() else 0
  rows = np.where(usable, np.arange(len(n_frames)), first)
  return rows, usable.astype(np.float32)


def _batch_fields(batch: Mapping[str, np.ndarray]):
  n = np.asarray(batch["n_frames"]).astype(np.int64)
  valid = np.asarray(batch.get("valid", np.ones(len(n), bool))).astype(bool)
  return np.asarray(batch["faces"]), np.asarray(batch["mel_windows"], np.float32), n, valid


def expert_samples(batch: Mapping[str, np.ndarray], rng: np.random.Generator, *,
                   windows_per_clip: int = 1, min_offset: int = 1) -> dict[str, np.ndarray]:
  """Expert training pairs: (lower halves of 5 frames, 16-frame mel window, in sync or not).

  For each clip, `windows_per_clip` audio windows start at random frames a; labels alternate
  from a random first label (half the pairs are positives). A positive takes the frames
  a..a+4; a negative takes frames f..f+4 with |f - a| >= `min_offset` (official: any other
  start, i.e. 1). The audio window is always `mel_windows[a]` (mel rows from int(3.2 a), 16
  rows: the audio of frames a..a+4).

  Shapes:
    batch: faces (B, Lv, 96, 96, 3) uint8, mel_windows (B, Lv, 80, 16, 1), n_frames (B,),
      valid (B,) optional.
    returns (N = B * windows_per_clip): lips (N, 5, 48, 96, 3) uint8, mel (N, 80, 16, 1),
      label (N,) float32 1/0, weight (N,) float32, audio_start (N,) int32,
      face_start (N,) int32.
  """
  faces, mels, n, valid = _batch_fields(batch)
  k = int(windows_per_clip)
  if min_offset < 1:
    raise UserError(f"min_offset must be >= 1 (a negative must be off sync), got {min_offset}")
  rows, weights = _source_rows(n, valid, WINDOW + min_offset)
  size = len(n) * k
  out = {
      "lips": np.zeros((size, WINDOW, FACE_SIZE - HALF, FACE_SIZE, 3), np.uint8),
      "mel": np.zeros((size, *mels.shape[2:]), np.float32),
      "label": np.zeros((size,), np.float32),
      "weight": np.repeat(weights, k),
      "audio_start": np.zeros((size,), np.int32),
      "face_start": np.zeros((size,), np.int32),
  }
  for b, src in enumerate(rows):
    last = int(n[src]) - WINDOW  # last window start
    if last < min_offset:
      continue  # nothing usable in the batch at all: zeros, weight 0
    starts = np.arange(last + 1)
    # audio starts that have at least one start far enough away for a negative
    has_negative = starts[(starts >= min_offset) | (starts <= last - min_offset)]
    first_label = int(rng.integers(2))
    for j in range(k):
      i = b * k + j
      positive = (first_label + j) % 2 == 0
      if positive:
        a = int(rng.integers(last + 1))
        f = a
      else:
        a = int(rng.choice(has_negative))
        f = int(rng.choice(starts[np.abs(starts - a) >= min_offset]))
      out["lips"][i] = faces[src, f:f + WINDOW, HALF:]
      out["mel"][i] = mels[src, a]
      out["label"][i] = float(positive)
      out["audio_start"][i] = a
      out["face_start"][i] = f
  return out


def generator_samples(batch: Mapping[str, np.ndarray], rng: np.random.Generator, *,
                      windows_per_clip: int = 1, audio_shift: int = -1,
                      min_ref_offset: int = 1) -> dict[str, np.ndarray]:
  """Generator training windows, as wav2lip_train.py builds them.

  For each clip, `windows_per_clip` windows start at random frames s; the reference window
  starts at a random r with |r - s| >= `min_ref_offset` (official: any other frame, i.e. 1).
  Frame s+t is conditioned on `mel_windows[s + t + audio_shift]` (official training uses the
  window starting one video frame earlier: audio_shift = -1; official inference uses 0), and
  the expert scores the window against `mel_windows[s]`.

  Shapes:
    batch: as `expert_samples`.
    returns (N = B * windows_per_clip): window (N, 5, 96, 96, 3) uint8 (ground truth),
      reference (N, 5, 96, 96, 3) uint8, indiv_mels (N, 5, 80, 16, 1), mel (N, 80, 16, 1),
      weight (N,) float32, start (N,) int32, ref_start (N,) int32.
  """
  faces, mels, n, valid = _batch_fields(batch)
  k = int(windows_per_clip)
  if audio_shift > 0:
    raise UserError(f"audio_shift must be <= 0 (the window's audio may start before it), got "
                    f"{audio_shift}")
  if min_ref_offset < 1:
    raise UserError(f"min_ref_offset must be >= 1 (the reference must be another window), "
                    f"got {min_ref_offset}")
  lo = -audio_shift  # first start whose per-frame audio windows all exist
  rows, weights = _source_rows(n, valid, WINDOW + lo + min_ref_offset)
  size = len(n) * k
  out = {
      "window": np.zeros((size, WINDOW, FACE_SIZE, FACE_SIZE, 3), np.uint8),
      "reference": np.zeros((size, WINDOW, FACE_SIZE, FACE_SIZE, 3), np.uint8),
      "indiv_mels": np.zeros((size, WINDOW, *mels.shape[2:]), np.float32),
      "mel": np.zeros((size, *mels.shape[2:]), np.float32),
      "weight": np.repeat(weights, k),
      "start": np.zeros((size,), np.int32),
      "ref_start": np.zeros((size,), np.int32),
  }
  for b, src in enumerate(rows):
    last = int(n[src]) - WINDOW
    if last < lo + min_ref_offset:
      continue
    starts = np.arange(last + 1)
    # window starts with audio for every frame and a reference start far enough away
    ok = starts[(starts >= lo) & ((starts >= min_ref_offset) |
                                  (starts <= last - min_ref_offset))]
    for j in range(k):
      i = b * k + j
      s = int(rng.choice(ok))
      r = int(rng.choice(starts[np.abs(starts - s) >= min_ref_offset]))
      out["window"][i] = faces[src, s:s + WINDOW]
      out["reference"][i] = faces[src, r:r + WINDOW]
      out["indiv_mels"][i] = mels[src, s + audio_shift:s + audio_shift + WINDOW]
      out["mel"][i] = mels[src, s]
      out["start"][i] = s
      out["ref_start"][i] = r
  return out


def generator_input(window, reference):
  """The generator's face input: (target with rows 48..95 zeroed | reference) on channels.

  Works on numpy or JAX arrays, uint8 or float (the dtype is kept).

  Shapes:
    window, reference (..., 96, 96, 3) -> (..., 96, 96, 6).
  """
  xp = jnp if isinstance(window, jax.Array) or isinstance(reference, jax.Array) else np
  h = window.shape[-3]
  keep = (xp.arange(h) < h // 2).astype(window.dtype)[:, None, None]
  return xp.concatenate([window * keep, reference], axis=-1)


class WindowIterator:
  """Clip batches -> training samples, with the trainer's checkpointable iterator protocol.

  The random draws of batch i come from `np.random.default_rng([seed, i])`, so a resumed
  iterator (same inner position, same i) produces the same samples, and a fresh iterator over
  held-out clips produces the same validation samples every time.
  """

  def __init__(self, clips, make_samples: Callable[[Mapping[str, np.ndarray],
                                                    np.random.Generator], dict],
               seed: int):
    self._clips, self._make, self._seed, self._count = clips, make_samples, int(seed), 0

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._clips)
    rng = np.random.default_rng([self._seed, self._count])
    self._count += 1
    return self._make(batch, rng)

  def get_state(self) -> dict:
    return {"clips": self._clips.get_state(), "count": self._count}

  def set_state(self, state: Mapping[str, Any]) -> None:
    self._clips.set_state(state["clips"])
    self._count = int(state["count"])

