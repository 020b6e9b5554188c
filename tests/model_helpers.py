"""What the model tests share: a copy of a model with one weight nudged (fingerprint tests),
and a tiny random Wav2Lip + lip-sync expert pair on disk."""
import numpy as np
from flax import nnx

from taem_jax.models import create, save_pretrained


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


def save_tiny_pair(root) -> None:
  """Writes a tiny random Wav2Lip (width 1/16, seed 0) to `root/wav2lip` and a tiny lip-sync
  expert (width 1/16, seed 1) to `root/expert`, as `load_pretrained` directories."""
  w2l = create("wav2lip", seed=0, width=1 / 16)
  save_pretrained(w2l, root / "wav2lip", family="wav2lip", config=w2l.get_config())
  expert = create("syncnet_color", seed=1, width=1 / 16)
  save_pretrained(expert, root / "expert", family="syncnet_color", config=expert.get_config())
