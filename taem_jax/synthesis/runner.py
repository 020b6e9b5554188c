"""The Wav2Lip runner: generation on 96x96 face crops, batched in bucketed shapes, jit-compiled.

Face detection, cropping and paste-back live elsewhere (taem_jax/face); this module only turns
(face crops, speech) into generated crops, following the official `inference.py`:
per output frame i, face crop i mod N with rows 48..95 zeroed + the same crop unmasked
(6 channels, /255), and the mel window starting at int(i * 80 / fps).

`pipelined` runs the stages of synthesis (decode, crop, generate, paste; the encoder is its
own ffmpeg process) in threads joined by bounded queues, so they overlap: the generator's XLA
calls, OpenCV and the pipe reads/writes release the GIL.
"""
from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from taem_jax import audio
from taem_jax.errors import UserError
from taem_jax.face.crop import to_uint8
from taem_jax.models.targets import face_inputs
from taem_jax.rates import FACE_SIZE, VIDEO_FPS


@functools.partial(jax.jit, static_argnums=(0, 4))
def generate_batch(graphdef, state, drive, faces, method: str = "__call__"):
  """One jitted generator call on one batch (compiled once per shape and method).

  Args:
    graphdef, state: `eval_split(model)`.
    method: "__call__" (driven by mel windows) or "decode" (driven by latents z).

  Shapes:
    drive: (B, 80, 16, 1) mel windows or (B, D) latents; faces: (B, 96, 96, 6)
    -> (B, 96, 96, 3) float in [0, 1].
  """
  model = nnx.merge(graphdef, state)
  return getattr(model, method)(drive, faces)


def bucket_size(n: int, batch_size: int | None = None, *, floor: int = 1) -> int:
  """Padded shape for `n` items: the next power of two >= n, at least `floor`, and at most
  `batch_size` (which is used as it is once n reaches it).

  Powers of two bound the number of compiled shapes to ~log2 of the largest while not padding
  a short input up to a large batch: the generator's batches and TAEM's phoneme and frame
  lengths all use it.

  Example: bucket_size(5, 64) -> 8; bucket_size(100, 64) -> 64; bucket_size(5, floor=16) -> 16.
  """
  if batch_size is not None and n >= batch_size:
    return batch_size
  size = max(floor, 1 << max(0, (int(n) - 1).bit_length()))
  return size if batch_size is None else min(batch_size, size)


def eval_split(model: nnx.Module):
  """(graphdef, state) of an eval-mode view of `model` (the caller's model is not changed)."""
  graphdef, state = nnx.split(model)
  view = nnx.merge(graphdef, state)  # new Python objects, same arrays
  view.eval()
  return nnx.split(view)


def run_batched(model: nnx.Module, mels: np.ndarray, faces6: np.ndarray,
                batch_size: int = 64, method: str = "__call__") -> np.ndarray:
  """Runs the generator over aligned inputs in fixed-shape padded batches.

  Args:
    method: "__call__" (driven by mel windows) or "decode" (driven by latents z, e.g. TAEM's).

  Shapes:
    mels: (n, 80, 16, 1) mel windows, or (n, D) latents for "decode";
    faces6: (n, 96, 96, 6) -> (n, 96, 96, 3) float32 in [0, 1].
  """
  if batch_size < 1:
    raise UserError(f"batch_size must be >= 1, got {batch_size}")
  n = len(mels)
  graphdef, state = eval_split(model)
  bs = bucket_size(n, batch_size)
  out = []
  for start in range(0, n, bs):
    m, f = mels[start:start + bs], faces6[start:start + bs]
    k = len(m)
    if k < bs:  # pad with copies of the last row; padded outputs are dropped below
      m = np.concatenate([m, np.repeat(m[-1:], bs - k, axis=0)])
      f = np.concatenate([f, np.repeat(f[-1:], bs - k, axis=0)])
    y = generate_batch(graphdef, state, jnp.asarray(m), jnp.asarray(f), method)
    out.append(np.asarray(y)[:k])
  return np.concatenate(out) if out else np.zeros((0, FACE_SIZE, FACE_SIZE, 3), np.float32)


def generate_from_audio(model: nnx.Module, faces_96: np.ndarray, wav: np.ndarray, *,
                        fps: float = VIDEO_FPS, batch_size: int = 64) -> np.ndarray:
  """Lip-syncs face crops to speech with a Wav2Lip generator.

  The output covers the whole speech (`audio.speech_frames`: ceil(duration * fps) frames, the
  last ones driven by the clamped final mel window); faces are cycled (i mod N) if there are fewer crops than frames
  and extra crops are ignored. The model runs in eval mode (running BN statistics) in batches of
  one fixed shape (the last batch is padded, the padding dropped).

  Args:
    model: a `taem_jax.models.Wav2Lip`.
    faces_96: (N, 96, 96, 3) BGR face crops, uint8 or float in [0, 1].
    wav: (n_samples,) float mono speech at 16 kHz (see `audio.load_audio`).
    fps: video frame rate.
    batch_size: generator batch size.
  Returns:
    (n_frames, 96, 96, 3) uint8 BGR.
  """
  if fps <= 0:
    raise UserError(f"fps must be positive, got {fps}")
  wav = np.asarray(wav, np.float32)
  if wav.ndim != 1 or wav.size == 0:
    raise UserError(f"wav must be a non-empty 1-D 16 kHz signal, got shape {wav.shape}")
  faces6 = face_inputs(faces_96)
  mel = audio.melspectrogram(wav)
  n_frames = audio.speech_frames(len(wav), fps)
  mels = audio.mel_windows(mel, n_frames, fps)
  faces6 = faces6[np.arange(n_frames) % len(faces6)]
  return to_uint8(run_batched(model, mels, faces6, batch_size))


class _Failed:
  """A stage's exception on its way to the consumer (raised there, unchanged)."""

  def __init__(self, exc: BaseException):
    self.exc = exc


_END = object()
_POLL_S = 0.05  # how often a blocked thread looks whether the consumer has gone


def pipelined(items: Iterable, stages: Sequence[tuple[str, Callable]], depth: int = 2,
              busy: dict | None = None) -> Iterator:
  """`stages` applied in order to every item, each stage (and the iteration of `items`) in its
  own thread, joined by queues of `depth` items; yields the results in order.

  The output equals `for x in items: for _, f in stages: x = f(x)` item for item; memory holds
  at most about `depth` items per stage. An exception in any stage (or in `items`) is raised
  here, unchanged, after the other threads have stopped; closing the iterator early stops them
  as well (no thread outlives it).

  Args:
    items: the inputs (iterated in a thread of its own: "read").
    stages: (name, function) pairs.
    depth: queue size between two stages.
    busy: if given, {name: seconds} each stage (and "read") spent working is added to it.
  """
  stop = threading.Event()
  names = ["read"] + [name for name, _ in stages]
  queues = [queue.Queue(maxsize=max(1, depth)) for _ in names]

  def put(q, x) -> bool:
    while not stop.is_set():
      try:
        q.put(x, timeout=_POLL_S)
        return True
      except queue.Full:
        pass
    return False

  def get(q):
    while not stop.is_set():
      try:
        return q.get(timeout=_POLL_S)
      except queue.Empty:
        pass
    return _END

  def clock(name, t0):
    if busy is not None:
      busy[name] = busy.get(name, 0.0) + time.perf_counter() - t0

  def read():
    it = iter(items)
    while True:
      t0 = time.perf_counter()
      try:
        x = next(it, _END)
      except BaseException as e:  # pylint: disable=broad-except  # re-raised by the consumer
        put(queues[0], _Failed(e))
        return
      clock("read", t0)
      if not put(queues[0], x) or x is _END:
        return

  def work(k, fn):
    src, dst = queues[k - 1], queues[k]
    while True:
      x = get(src)
      if x is _END or isinstance(x, _Failed):
        put(dst, x)
        return
      t0 = time.perf_counter()
      try:
        y = fn(x)
      except BaseException as e:  # pylint: disable=broad-except  # re-raised by the consumer
        put(dst, _Failed(e))
        return
      clock(names[k], t0)
      if not put(dst, y):
        return

  threads = [threading.Thread(target=read, name="taem-pipeline-read", daemon=True)]
  threads += [threading.Thread(target=work, args=(k + 1, fn), name=f"taem-pipeline-{name}",
                               daemon=True) for k, (name, fn) in enumerate(stages)]
  for t in threads:
    t.start()
  try:
    while True:
      x = queues[-1].get()
      if x is _END:
        return
      if isinstance(x, _Failed):
        raise x.exc
      yield x
  finally:
    stop.set()
    for t in threads:
      t.join()


def sequential(items: Iterable, stages: Sequence[tuple[str, Callable]],
               busy: dict | None = None) -> Iterator:
  """`pipelined` without threads (the reference it must equal): each item through every stage
  in turn, in the calling thread; `busy` gets each stage's seconds, then alone on the CPU."""
  for x in items:
    for name, fn in stages:
      t0 = time.perf_counter()
      x = fn(x)
      if busy is not None:
        busy[name] = busy.get(name, 0.0) + time.perf_counter() - t0
    yield x
