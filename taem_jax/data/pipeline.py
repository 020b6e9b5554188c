"""grain input pipeline: bucketed, padded, sharded, deterministic and checkpointable batches.

    src = open_split("~/tensorflow_datasets/grid/dlib/1.0.0", "train")   # no TensorFlow
    it = make_iterator(src, PipelineConfig(batch_size=8))
    batch = next(it)
    state = it.get_state()          # save with the trainer's Orbax checkpoint (JSON-able dict)
    it.set_state(state)             # a resumed run continues with the same next batch

How batches are planned. Each example falls in the first bucket (Lv, Lt) that holds its frame
count and phoneme count (`buckets`); longer examples are dropped (counted in
`DataPlan.dropped`). For epoch e, example order is a permutation seeded by (seed, e); each
bucket's examples, in that order, are cut into *global* batches of `batch_size x
process_count` (remainder dropped), and the global batches of all buckets are shuffled
(seed, e, 1). Process p takes rows [p B, (p + 1) B) of every global batch, so all hosts see the
same bucket (the same static shapes) at every step, as `jax.make_array_from_process_local_data`
needs. Step i of the run is a pure function of (seed, i): the iterator state is just the next
step, so save/restore is exact and cheap, with or without worker processes.

Batch fields (B = per-process batch size, Lt / Lv = the bucket's phoneme / frame length):

    phonemes       (B, Lt) int32     phoneme ids, 0 (= <pad>) after the end
    phoneme_mask   (B, Lt) bool
    durations      (B, Lt) int32     100 fps frames per phoneme (sum = 4 n_frames), 0 padded
    n_phonemes     (B,) int32
    n_frames       (B,) int32        video frames (25 fps)
    frame_mask     (B, Lv) bool
    mel_windows    (B, Lv, 80, 16, 1) float32   Wav2Lip windows (`audio.mel_windows`),
                                     padding frames filled with -4 (silence)
    faces          (B, Lv, 96, 96, 3) uint8     BGR crops, zeros after the end
                                     (absent with decode_faces=False)
    speaker        (B, D) float32    speaker embedding
    z_a            (B, Lv, D) float32           only if the dataset stores z_a (zeros padded);
                                     D = `z_a_dim` of its metadata (512 for older datasets)
    valid          (B,) bool         False only for filler rows of a padded final eval batch

Worker processes (`worker_count > 0`) use grain's multiprocessing prefetch; as grain requires,
call `absl.flags.FLAGS.mark_as_parsed()` (done here) and build the iterator under
`if __name__ == "__main__":` in scripts.
"""
import dataclasses
import json
import os
import pathlib
import uuid

import grain
import jax
import numpy as np
from absl import flags

from taem_jax import audio
from taem_jax.data import prepare
from taem_jax.errors import UserError
from taem_jax.rates import FACE_SIZE, Z_DIM

DEFAULT_BUCKETS = ((48, 32), (80, 48), (128, 72), (192, 104), (256, 136), (384, 200),
                   (512, 264))
_FOREVER = 1_000_000  # epochs of an "endless" iterator


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """Input pipeline settings.

  Attributes:
    batch_size: examples per batch on this process.
    buckets: (max frames Lv, max phonemes Lt) per bucket, increasing; each bucket is one static
      batch shape (one jit compile).
    seed: shuffling seed.
    shuffle: shuffle examples and batches (False: dataset order, for evaluation).
    num_epochs: epochs to run; None runs forever.
    drop_remainder: drop each bucket's incomplete last batch (training). False pads it with
      filler rows (`valid` False) so every example is seen once (evaluation).
    decode_faces: decode the JPEG face crops (TAEM's MSE-only training does not need them).
    with_za: include cached z_a if the dataset has them.
    worker_count: grain worker processes (0: in the calling process).
    prefetch_batches: batches read ahead in threads (grain's default, 500, holds hundreds of
      decoded face batches in memory: gigabytes).
    process_index / process_count: this host's shard; None uses jax.process_index/count().
  """
  batch_size: int = 8
  buckets: tuple = DEFAULT_BUCKETS
  seed: int = 0
  shuffle: bool = True
  num_epochs: int | None = None
  drop_remainder: bool = True
  decode_faces: bool = True
  with_za: bool = True
  worker_count: int = 0
  prefetch_batches: int = 4
  process_index: int | None = None
  process_count: int | None = None


def open_split(dataset_dir, split: str):
  """A random-access source of one split of a built dataset (no TensorFlow, no builder class).

  Args:
    dataset_dir: the versioned dataset folder, e.g. `<data_dir>/grid/dlib/1.0.0`.
    split: 'train', 'test', 'val', ...
  """
  # Heavy (TensorFlow): only readers of a built dataset pay for it.
  import tensorflow_datasets as tfds  # lazy: TFDS takes seconds to import
  d = pathlib.Path(dataset_dir).expanduser()
  if not (d / "dataset_info.json").is_file():
    raise UserError(f"{d} is not a built dataset (no dataset_info.json); build it with "
                    "experiments/build_dataset.py and pass <data_dir>/<name>/<config>/<version>")
  builder = tfds.builder_from_directory(str(d))
  if split not in builder.info.splits:
    raise UserError(f"{d} has no split {split!r} (splits: {', '.join(builder.info.splits)})")
  return builder.as_data_source(split=split)


def dataset_metadata(dataset_dir) -> dict:
  """The builder's metadata (vocab JSON, frame rates, embedder, skipped counts, z_a target)."""
  p = pathlib.Path(dataset_dir).expanduser() / "metadata.json"
  if not p.is_file():
    raise UserError(f"{p} is missing: is {dataset_dir} a dataset built by taem_jax?")
  return json.loads(p.read_text())


def z_a_target(meta: dict) -> dict | None:
  """Which Wav2Lip made a dataset's cached z_a: {"name", "latent_dim", "fingerprint", "source"}.

  None when the dataset stores no z_a. Datasets built before this was recorded give
  {"name": "wav2lip", "latent_dim": 512, "fingerprint": None, "source": None}.
  """
  if not meta.get("with_za"):
    return None
  rec = dict(meta.get("z_a_target") or {})
  rec.setdefault("name", "wav2lip")
  rec.setdefault("latent_dim", Z_DIM)  # older builds could only store 512-d z_a
  rec.setdefault("fingerprint", None)
  rec.setdefault("source", None)
  return rec


def z_a_dim(meta: dict) -> int:
  """The width D of a dataset's cached z_a (512 when its metadata does not say)."""
  return int((z_a_target(meta) or {}).get("latent_dim", Z_DIM))


def dataset_identity(dataset_dir) -> dict:
  """{"builder", "config", "version", "path"} of a built dataset (its folder names them)."""
  d = pathlib.Path(dataset_dir).expanduser().absolute()
  builder, config, version = (d.parts[-3:] if len(d.parts) >= 3 else ("", "", d.name))
  return {"builder": builder, "config": config, "version": version, "path": str(d)}


def _source_z_dim(source) -> int:
  """z_a width from a built split's metadata; 512 for other sources (lists of dicts)."""
  meta = getattr(getattr(source, "dataset_info", None), "metadata", None)
  return z_a_dim(dict(meta)) if meta else Z_DIM


def _lengths_cache_path(source) -> pathlib.Path | None:
  info = getattr(source, "dataset_info", None)
  data_dir = getattr(info, "data_dir", None) if info is not None else None
  split = getattr(source, "split", None)
  if data_dir is None or split is None:
    return None
  return pathlib.Path(str(data_dir)) / f"lengths-{split}.npy"


def example_lengths(source) -> np.ndarray:
  """(n_frames, n_phonemes) of every example, read once and cached next to the data.

  Shapes:
    returns (N, 2) int64.
  """
  cache = _lengths_cache_path(source)
  if cache is not None and cache.is_file():
    arr = np.load(cache)
    if len(arr) == len(source):
      return arr
  arr = np.array([(int(ex["n_frames"]), len(ex["phonemes"])) for ex in
                  (source[i] for i in range(len(source)))], np.int64).reshape(-1, 2)
  if cache is not None:
    try:
      tmp = cache.parent / f".{cache.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.part"
      with open(tmp, "wb") as f:
        np.save(f, arr)
      os.replace(tmp, cache)
    except OSError:
      pass  # read-only dataset folder: recompute next time
  return arr


def assign_buckets(lengths: np.ndarray, buckets) -> np.ndarray:
  """Bucket index of each example (-1: longer than the largest bucket).

  Shapes:
    lengths: (N, 2) (frames, phonemes) -> (N,) int64.
  """
  out = np.full(len(lengths), -1, np.int64)
  for b in range(len(buckets) - 1, -1, -1):
    lv, lt = buckets[b]
    fits = (lengths[:, 0] <= lv) & (lengths[:, 1] <= lt)
    out[fits] = b
  return out


class DataPlan:
  """Which examples form global step i (pure function of the seed and i)."""

  def __init__(self, lengths: np.ndarray, cfg: PipelineConfig, process_count: int):
    buckets = tuple(tuple(int(v) for v in b) for b in cfg.buckets)
    if not buckets or any(b2[0] < b1[0] or b2[1] < b1[1] for b1, b2 in zip(buckets, buckets[1:])):
      raise UserError(f"buckets must be a non-empty increasing list of (frames, phonemes), got "
                      f"{cfg.buckets}")
    if cfg.batch_size < 1:
      raise UserError(f"batch_size must be >= 1, got {cfg.batch_size}")
    self.cfg = cfg
    self.buckets = buckets
    self.global_batch = cfg.batch_size * process_count
    self.bucket_of = assign_buckets(lengths, buckets)
    self.dropped = int((self.bucket_of < 0).sum())
    members = [np.flatnonzero(self.bucket_of == b) for b in range(len(buckets))]
    gb = self.global_batch
    if cfg.drop_remainder:
      self.per_bucket = [len(m) // gb for m in members]
    else:
      self.per_bucket = [-(-len(m) // gb) for m in members]
    self.steps_per_epoch = int(sum(self.per_bucket))
    if self.steps_per_epoch == 0:
      raise UserError(f"no complete batch: {len(lengths)} examples ({self.dropped} too long for "
                      f"the largest bucket {buckets[-1]}), global batch {gb}; lower batch_size "
                      "or use drop_remainder=False")
    self._members = members
    self._epoch_cache = {}

  def num_steps(self) -> int:
    epochs = _FOREVER if self.cfg.num_epochs is None else int(self.cfg.num_epochs)
    return epochs * self.steps_per_epoch

  def _epoch(self, e: int):
    if e in self._epoch_cache:
      return self._epoch_cache[e]
    cfg, gb = self.cfg, self.global_batch
    batches = []
    for b, m in enumerate(self._members):
      order = m
      if cfg.shuffle:
        order = m[np.random.default_rng([cfg.seed, e, b]).permutation(len(m))]
      for j in range(self.per_bucket[b]):
        rows = order[j * gb:(j + 1) * gb]
        batches.append((b, rows))
    if cfg.shuffle:
      perm = np.random.default_rng([cfg.seed, e, 1_000_003]).permutation(len(batches))
      batches = [batches[k] for k in perm]
    if len(self._epoch_cache) > 2:
      self._epoch_cache.clear()
    self._epoch_cache[e] = batches
    return batches

  def step(self, i: int):
    """(bucket index, global row indices (<= global_batch; fewer only without drop_remainder))."""
    e, j = divmod(int(i), self.steps_per_epoch)
    return self._epoch(e)[j]


class _PlanSource:
  """grain source: element i = (bucket, this process's example indices) of global step i."""

  def __init__(self, plan: DataPlan, process_index: int, batch_size: int):
    self.plan, self.p, self.b = plan, process_index, batch_size

  def __len__(self):
    return self.plan.num_steps()

  def __getitem__(self, i):
    bucket, rows = self.plan.step(i)
    mine = rows[self.p * self.b:(self.p + 1) * self.b]
    return int(bucket), np.asarray(mine, np.int64)


class LoadBatch:
  """Reads, decodes and pads the examples of one planned batch (picklable for workers)."""

  def __init__(self, source, buckets, batch_size: int, decode_faces: bool, with_za: bool,
               z_dim: int = Z_DIM):
    self.source = source
    self.z_dim = int(z_dim)
    self.buckets = buckets
    self.batch_size = batch_size
    self.decode_faces = decode_faces
    self.with_za = with_za

  def __call__(self, item):
    bucket, rows = item
    lv, lt = self.buckets[bucket]
    b = self.batch_size
    exs = [self.source[int(r)] for r in rows]
    has_za = self.with_za and bool(exs) and "z_a" in exs[0]
    d = exs[0]["speaker_embedding"].shape[-1] if exs else 128
    out = {
        "phonemes": np.zeros((b, lt), np.int32),
        "phoneme_mask": np.zeros((b, lt), bool),
        "durations": np.zeros((b, lt), np.int32),
        "n_phonemes": np.zeros((b,), np.int32),
        "n_frames": np.zeros((b,), np.int32),
        "frame_mask": np.zeros((b, lv), bool),
        "mel_windows": np.full((b, lv, 80, 16, 1), -4.0, np.float32),
        "speaker": np.zeros((b, d), np.float32),
        "valid": np.zeros((b,), bool),
    }
    if self.decode_faces:
      out["faces"] = np.zeros((b, lv, FACE_SIZE, FACE_SIZE, 3), np.uint8)
    if has_za:
      out["z_a"] = np.zeros((b, lv, self.z_dim), np.float32)
    for k, ex in enumerate(exs):
      n = int(ex["n_frames"])
      ph = np.asarray(ex["phonemes"], np.int32)
      L = len(ph)
      out["phonemes"][k, :L] = ph
      out["phoneme_mask"][k, :L] = True
      out["durations"][k, :L] = np.asarray(ex["durations"], np.int32)
      out["n_phonemes"][k] = L
      out["n_frames"][k] = n
      out["frame_mask"][k, :n] = True
      out["mel_windows"][k, :n] = audio.mel_windows(np.asarray(ex["mel"]), n)
      out["speaker"][k] = ex["speaker_embedding"]
      out["valid"][k] = True
      if self.decode_faces:
        for t, jpg in enumerate(ex["faces"][:n]):
          out["faces"][k, t] = prepare.decode_jpeg(bytes(jpg))
      if has_za:
        z = np.asarray(ex["z_a"])
        if z.shape[-1] != self.z_dim:
          raise UserError(f"example {ex.get('id', k)!r} has {z.shape[-1]}-d z_a but the dataset "
                          f"metadata says {self.z_dim}-d; the dataset is inconsistent, build it "
                          "again")
        out["z_a"][k, :n] = z[:n]
    return out


def _process_info(cfg: PipelineConfig) -> tuple[int, int]:
  if cfg.process_index is not None and cfg.process_count is not None:
    p, n = int(cfg.process_index), int(cfg.process_count)
  else:
    p, n = jax.process_index(), jax.process_count()
  if not 0 <= p < n:
    raise UserError(f"process_index {p} not in [0, {n})")
  return p, n


def make_dataset(source, cfg: PipelineConfig = PipelineConfig(), *, lengths=None):
  """The grain `IterDataset` of padded batches (see the module docstring).

  Args:
    source: a random-access source of examples (`open_split`, or any sequence of dicts).
    cfg: pipeline settings.
    lengths: optional (N, 2) (frames, phonemes) per example (default: read once and cached).

  Returns:
    (dataset, plan): iterate `iter(dataset)`; `plan.steps_per_epoch`, `plan.dropped`.
  """
  p, n = _process_info(cfg)
  lengths = example_lengths(source) if lengths is None else np.asarray(lengths)
  plan = DataPlan(lengths, cfg, n)
  ds = grain.MapDataset.source(_PlanSource(plan, p, cfg.batch_size))
  ds = ds.map(LoadBatch(source, plan.buckets, cfg.batch_size, cfg.decode_faces, cfg.with_za,
                        _source_z_dim(source)))
  it = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, int(cfg.prefetch_batches)),
                                            prefetch_buffer_size=int(cfg.prefetch_batches)))
  if cfg.worker_count > 0:
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()  # grain's workers read absl flags
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=int(cfg.worker_count)))
  return it, plan


def make_iterator(source, cfg: PipelineConfig = PipelineConfig(), *, lengths=None):
  """An iterator of batches with `get_state()` / `set_state(state)` (grain DatasetIterator)."""
  ds, _ = make_dataset(source, cfg, lengths=lengths)
  return iter(ds)
