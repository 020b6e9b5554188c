"""In-memory examples as a checkpointable batch iterator (synthetic data, toy runs, tests)."""
from __future__ import annotations

import time
from typing import Mapping

import grain
import jax
import numpy as np


def array_iterator(arrays: Mapping[str, np.ndarray], global_batch_size: int, *, seed: int,
                   shuffle: bool = True, repeat: bool = True, process_index: int | None = None,
                   process_count: int | None = None, load_delay: float = 0.0
                   ) -> grain.DatasetIterator:
  """A grain iterator over in-memory arrays with the trainer's checkpointable protocol.

  Every process walks the same shuffled order of global batches and keeps its own contiguous
  slice of rows, so the global batch (and the result) does not depend on the process count.
  `load_delay` seconds of sleep per batch stand in for a slow loader (tests kill runs mid-way).

  Shapes:
    returns batches with leaves (global_batch_size / process_count, ...).
  """
  pi = jax.process_index() if process_index is None else process_index
  pc = jax.process_count() if process_count is None else process_count
  local = global_batch_size // pc
  n = len(next(iter(arrays.values())))
  ds = grain.MapDataset.range(n)
  if shuffle:
    ds = ds.shuffle(seed=seed)
  if repeat:  # after shuffle: grain draws a new permutation for every epoch
    ds = ds.repeat(None)
  ds = ds.batch(global_batch_size, drop_remainder=True)
  def load(idx):
    if load_delay:
      time.sleep(load_delay)
    return {k: v[idx[pi * local:(pi + 1) * local]] for k, v in arrays.items()}

  return iter(ds.map(load))
