"""Target encoders: the frozen audio-driven backbone whose latent TAEM learns to imitate.

TAEM only needs a backbone's `latent_dim` and, for training, its frozen audio latents z_a; the
task loss and synthesis also need it to render frames from a latent. `TargetEncoder` is that
contract; `Wav2LipTarget` implements it for Wav2Lip. Another backbone (e.g. PC-AVS, paper
Sec. 4.3) is another class with the same four members; TAEM itself never imports a backbone.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import jax
from flax import nnx

Array = jax.Array


def frozen_call(module: nnx.Module, method: str = "__call__") -> Callable[..., Array]:
  """`module.method` as a function whose parameters are constants for autodiff.

  The state is passed through `jax.lax.stop_gradient`, so gradients can flow *through* the
  module into its inputs but never into its weights (whatever the caller differentiates).
  The module's mode is left as it is: put BatchNorm models in eval mode first.
  """

  def call(*args, **kwargs):
    graphdef, state = nnx.split(module)
    frozen = nnx.merge(graphdef, jax.lax.stop_gradient(state))
    return getattr(frozen, method)(*args, **kwargs)

  return call


@runtime_checkable
class TargetEncoder(Protocol):
  """A frozen audio encoder (+ optional renderer) that defines TAEM's target latent.

  Members:
    name: short backbone name, stored with TAEM checkpoints ("wav2lip").
    latent_dim: D, the width of one per-video-frame latent (= TAEMConfig.latent_dim).
    can_render: whether `decode` is available.
    encode(mel_windows) -> z_a, frozen (stop-gradient).
    decode(z, faces) -> frames, with frozen weights (gradients reach z only).

  Shapes (Wav2Lip's; another backbone documents its own inputs):
    encode: (B, T, 80, 16, 1) mel windows, one per video frame -> (B, T, D).
    decode: z (N, D), faces (N, 96, 96, 6) -> (N, 96, 96, 3).
  """

  name: str
  latent_dim: int
  can_render: bool

  def encode(self, mel_windows: Array) -> Array: ...

  def decode(self, z: Array, faces: Array) -> Array: ...


class Wav2LipTarget:
  """Wav2Lip's audio encoder as TAEM's target, and its face decoder as the renderer.

  The wrapped model is switched to eval mode (BatchNorm running statistics): it is frozen.

  Shapes:
    encode: mel_windows (B, T, 80, 16, 1) (see `taem_jax.audio.mel_windows`) -> (B, T, D),
      D = 512 * width, non-negative.
    decode: z (N, D), faces (N, 96, 96, 6) BGR [0, 1] (masked target | reference)
      -> (N, 96, 96, 3) BGR [0, 1].
  """

  name = "wav2lip"
  can_render = True

  def __init__(self, model: nnx.Module):
    model.eval()
    self.model = model
    self.latent_dim = int(model.embed_dim)
    self._encode = frozen_call(model, "encode_audio")
    self._decode = frozen_call(model, "decode")

  def encode(self, mel_windows: Array) -> Array:
    b, t = mel_windows.shape[:2]
    z = self._encode(mel_windows.reshape(b * t, *mel_windows.shape[2:]))
    return jax.lax.stop_gradient(z.reshape(b, t, -1))

  def decode(self, z: Array, faces: Array) -> Array:
    return self._decode(z, faces)
