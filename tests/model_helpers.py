"""What the model tests share: a copy of a model with one weight nudged (fingerprint tests)."""
import numpy as np
from flax import nnx


def perturbed(model: nnx.Module, *path) -> nnx.Module:
  """A copy of `model` with the first element of the array at `path` changed by 1e-3.

  `path` is a key path into `nnx.to_pure_dict` of the model's state, e.g.
  ("audio_encoder", 0, "conv", "kernel"); the model itself is left as it is.
  """
  graphdef, state = nnx.split(model)
  pure = nnx.to_pure_dict(state)
  node = pure
  for k in path[:-1]:
    node = node[k]
  a = np.array(node[path[-1]])
  a.flat[0] += 1e-3
  node[path[-1]] = a
  state = nnx.clone(state)
  nnx.replace_by_pure_dict(state, pure)
  return nnx.merge(graphdef, state)
