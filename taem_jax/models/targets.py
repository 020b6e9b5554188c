"""Target encoders: the frozen audio-driven backbone whose latent TAEM learns to imitate.

TAEM only needs a backbone's `latent_dim` and, for training, its frozen audio latents z_a; the
task loss and synthesis also need it to render frames from a latent. `TargetEncoder` is that
contract; `Wav2LipTarget` implements it for Wav2Lip. Another backbone (e.g. PC-AVS, paper
Sec. 4.3) is another class with the same four members; TAEM itself never imports a backbone.

Provenance: a TAEM only fits the exact audio encoder whose z_a it was trained on (Wav2Lip and
Wav2Lip+GAN share the architecture but not the weights). `audio_encoder_fingerprint` hashes
that encoder, `target_record` is what datasets and TAEM checkpoints store about it, and
`check_pairing` refuses (or, when forced, warns about) a pair whose fingerprints differ.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import jax
import numpy as np
from flax import nnx

from taem_jax.errors import UserError

log = logging.getLogger(__name__)

# Hashed first, so a change of what is hashed never collides with an older fingerprint.
FINGERPRINT_SCHEME = b"taem_jax wav2lip audio_encoder v1"
SHORT = 12  # hex characters of a fingerprint shown in messages

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


def _host(x) -> np.ndarray:
  """A variable's value on the host; a replicated array over several hosts gives its local copy."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    x = x.addressable_shards[0].data
  return np.ascontiguousarray(np.asarray(x))


def audio_encoder_fingerprint(model: nnx.Module) -> str:
  """sha256 (64 hex digits) of a Wav2Lip's audio encoder: what decides its z_a.

  Covers every array under `model.audio_encoder` (conv kernels and biases, BatchNorm scales,
  offsets and running statistics, which change eval-mode outputs too), in sorted path order,
  each as path, dtype, shape and raw bytes. The face encoder and decoder are not included:
  retraining only those keeps a TAEM's targets valid. Independent of devices and of how the
  model was loaded (a converted .pth, a training export, a trainer checkpoint).
  """
  state = nnx.state(model.audio_encoder, nnx.Any(nnx.Param, nnx.BatchStat))
  leaves = sorted(("/".join(str(k) for k in path), _host(v[...]))
                  for path, v in nnx.to_flat_state(state))
  if not leaves:
    raise ValueError(f"{type(model).__name__} has no audio_encoder arrays to fingerprint")
  h = hashlib.sha256(FINGERPRINT_SCHEME)
  for path, a in leaves:
    h.update(f"\0{path}\0{a.dtype.str}\0{a.shape}\0".encode())
    h.update(a.tobytes())
  return h.hexdigest()


def target_record(model: nnx.Module, source=None) -> dict:
  """What a dataset or TAEM checkpoint stores about the Wav2Lip that produced its z_a.

  Args:
    model: the Wav2Lip.
    source: the checkpoint directory it was loaded from, if known.
  Returns:
    {"name": "wav2lip", "latent_dim": D, "fingerprint": `audio_encoder_fingerprint`,
     "source": str or None}.
  """
  return {"name": "wav2lip", "latent_dim": int(model.embed_dim),
          "fingerprint": audio_encoder_fingerprint(model),
          "source": None if source is None else str(source)}


def short_fingerprint(fp) -> str:
  """The first `SHORT` hex digits of a fingerprint (messages), "unknown" for none."""
  return str(fp)[:SHORT] if fp else "unknown"


def check_pairing(recorded: dict, actual: dict, *, made: str, loaded: str, force: bool,
                  force_hint: str) -> bool:
  """Refuses z_a targets (a dataset's or a TAEM's) made by another Wav2Lip than the loaded one.

  Args:
    recorded: the `target_record`-like dict stored with the dataset / TAEM (may lack
      "fingerprint": made before fingerprints were recorded).
    actual: `target_record` of the Wav2Lip about to be used.
    made: what holds `recorded`, for the message ("TAEM ckpt/taem", "dataset data/...").
    loaded: the Wav2Lip side, for the message ("Wav2Lip ckpt/wav2lip_gan").
    force: pair them anyway (one warning line instead of the error).
    force_hint: how the user forces it ("pass --force_pairing").
  Returns:
    whether the pairing was verified (False: no fingerprint recorded, or forced).
  Raises:
    UserError: the fingerprints differ and not `force`; one line naming both sides.
  """
  want, have = recorded.get("fingerprint"), actual.get("fingerprint")
  if not want:
    log.warning("%s records no Wav2Lip fingerprint (made before taem_jax recorded them, or "
                "not from a Wav2Lip): cannot check that %s is the Wav2Lip it was made with",
                made, loaded)
    return False
  if want == have:
    return True
  src = actual.get("source")
  what = (f"{made} was made with Wav2Lip audio encoder {short_fingerprint(want)} (from "
          f"{recorded.get('source') or 'an unrecorded path'}) but {loaded} has "
          f"{short_fingerprint(have)}" + (f" (from {src})" if src and src not in loaded else ""))
  if force:
    log.warning("%s; pairing them anyway as asked: expect wrong mouth shapes", what)
    return False
  raise UserError(f"{what}: use the Wav2Lip it was made with, or {force_hint} to pair them "
                  "anyway")
