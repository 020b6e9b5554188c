"""A tiny regression task and in-memory data source that exercise the trainer in seconds.

Used by the trainer tests (resume after SIGKILL, 1 vs 2 devices, multi-process) and by
`experiments/train.py --config=experiments/configs/toy.py`. It has dropout (so the per-step RNG
reseeding matters) and a frozen layer (so the `trainable` filter matters).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Mapping

import grain
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class ToyMLP(nnx.Module):
  """x -> frozen random projection -> trainable 2-layer MLP with dropout.

  Shapes:
    x: (B, D_in); returns (B, D_out).
  """

  def __init__(self, d_in: int, d_hidden: int, d_out: int, dropout: float, *, rngs: nnx.Rngs):
    self.frozen = nnx.Linear(d_in, d_in, rngs=rngs)
    self.hidden = nnx.Linear(d_in, d_hidden, rngs=rngs)
    self.dropout = nnx.Dropout(dropout, rngs=rngs)
    self.out = nnx.Linear(d_hidden, d_out, rngs=rngs)

  def __call__(self, x: jax.Array, *, deterministic: bool = False) -> jax.Array:
    h = jax.nn.gelu(self.hidden(self.frozen(x)))
    return self.out(self.dropout(h, deterministic=deterministic))


@dataclasses.dataclass
class ToyTask:
  """Mean-squared-error regression of a fixed random linear map (see module docstring)."""
  d_in: int = 8
  d_hidden: int = 32
  d_out: int = 4
  dropout: float = 0.1

  # Everything except the first projection is trained.
  trainable = nnx.All(nnx.Param, nnx.Not(nnx.PathContains("frozen")))

  def make_model(self, rngs: nnx.Rngs) -> ToyMLP:
    return ToyMLP(self.d_in, self.d_hidden, self.d_out, self.dropout, rngs=rngs)

  def loss(self, model: ToyMLP, batch: Mapping[str, jax.Array], rng: jax.Array):
    del rng  # dropout draws from the model's reseeded stream
    pred = model(batch["x"])
    loss = jnp.mean((pred - batch["y"]) ** 2)
    # A fingerprint of which examples formed this batch, so tests can compare data order.
    fingerprint = jnp.sum(batch["index"].astype(jnp.float32) *
                          (1.0 + jnp.arange(batch["index"].shape[0], dtype=jnp.float32)))
    return loss, {"mse": loss, "data_fingerprint": fingerprint}

  def eval_metrics(self, model: ToyMLP, batch: Mapping[str, jax.Array]):
    pred = model(batch["x"], deterministic=True)
    return {"mse": jnp.mean((pred - batch["y"]) ** 2)}

  def load_init(self, model: ToyMLP, path: str) -> None:
    from taem_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
    checkpoint.load_model_weights(model, path)


def toy_arrays(n: int, d_in: int = 8, d_out: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
  """n examples of y = tanh(x W) + small noise, with their index."""
  rs = np.random.RandomState(seed)
  w = rs.randn(d_in, d_out).astype(np.float32) / np.sqrt(d_in)
  x = rs.randn(n, d_in).astype(np.float32)
  y = np.tanh(x @ w) + 0.01 * rs.randn(n, d_out).astype(np.float32)
  return {"x": x, "y": y.astype(np.float32), "index": np.arange(n, dtype=np.int32)}


def toy_iterator(arrays: Mapping[str, np.ndarray], global_batch_size: int, *, seed: int,
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
