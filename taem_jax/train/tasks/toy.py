"""A tiny regression task that exercises the trainer in seconds.

Used by the trainer tests (resume after SIGKILL, 1 vs 2 devices, multi-process) and by
`experiments/train.py --config=experiments/configs/toy.py` (its in-memory batches come from
`taem_jax.data.memory.array_iterator`). It has dropout (so the per-step RNG
reseeding matters) and a frozen layer (so the `trainable` filter matters).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from taem_jax.train import checkpoint
from taem_jax.train.tasks.recipe import Recipe


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
    checkpoint.load_model_weights(model, path)


def toy_arrays(n: int, d_in: int = 8, d_out: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
  """n examples of y = tanh(x W) + small noise, with their index."""
  rs = np.random.RandomState(seed)
  w = rs.randn(d_in, d_out).astype(np.float32) / np.sqrt(d_in)
  x = rs.randn(n, d_in).astype(np.float32)
  y = np.tanh(x @ w) + 0.01 * rs.randn(n, d_out).astype(np.float32)
  return {"x": x, "y": y.astype(np.float32), "index": np.arange(n, dtype=np.int32)}


def recipe(config, dataset_dir) -> Recipe:
  """The toy task of experiments/configs/toy.py and its examples (one draw, split: the
  held-out inputs are new, the target map is the same)."""
  del dataset_dir  # in-memory data
  task = ToyTask(d_hidden=config.model.d_hidden, dropout=config.model.dropout)
  return Recipe(task, arrays=toy_arrays(config.data.num_train + config.data.num_eval,
                                        seed=config.seed))
