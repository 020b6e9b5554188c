"""Backbones: the frozen audio-driven model whose latent TAEM learns to imitate.

TAEM only needs a backbone's `latent_dim` and, for training, its frozen audio latents z_a; the
task loss and synthesis also need it to render frames from a latent and the backbone's own face
inputs. `Backbone` is that contract; `Wav2LipTarget` implements it for Wav2Lip and `PCAVSTarget` for
PC-AVS (paper Sec. 4.3). Another backbone is another class with the same members plus one line
in `BACKBONES`; TAEM itself never imports a backbone, and callers pick one by name
(`backbone_class`, the `--backbone` flag).

Provenance: a TAEM only fits the exact audio encoder whose z_a it was trained on (Wav2Lip and
Wav2Lip+GAN share the architecture but not the weights). `audio_encoder_fingerprint` hashes
that encoder, `target_record` is what datasets and TAEM checkpoints store about it, and
`check_pairing` refuses (or, when forced, warns about) a pair whose fingerprints differ.
"""
from __future__ import annotations

import hashlib
import logging
import pathlib
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import jax
import numpy as np
from flax import nnx

from taem_jax import audio
from taem_jax.errors import UserError
from taem_jax.face import align
from taem_jax.face.crop import BoxPlacement
from taem_jax.models.pcavs import FACE_SIZE as PCAVS_FACE_SIZE
from taem_jax.models.pretrained import load_pretrained
from taem_jax.models.registry import create
from taem_jax.rates import FACE_SIZE, VIDEO_FPS

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
class Backbone(Protocol):
  """A frozen audio-driven model: the target latent TAEM imitates and the renderer of frames.

  Members:
    name: short backbone name, stored with datasets and TAEM checkpoints ("wav2lip"); the key
      of `BACKBONES`.
    label: its display name in table rows ("Wav2Lip", "PC-AVS").
    latent_dim: D, the width of one per-video-frame latent (= TAEMConfig.latent_dim).
    fps: video frames per second the backbone's latents are made for.
    face_size: side of its square face crop, in pixels.
    can_render: whether `decode` is available.
    model: the wrapped network (for batched runners and checkpoints).
    audio_features(wav, n_frames) -> the encoder's input for n_frames video frames (at `fps`).
    audio_windows(wav, fps) -> windows(first, count): the same for video frames first ..
      first + count - 1 of a video at `fps` (synthesis cuts them chunk by chunk).
    encode(features) -> z_a, frozen (stop-gradient).
    prepare_faces(faces) -> the renderer's face input for each crop.
    placement(track, pads, feather, region) -> where its crops come from in a tracked video
      and how rendered faces go back: `.crop(frames, src)`, `.paste(frames, faces, src)`.
    decode(z, faces) -> frames, with frozen weights (gradients reach z only).
    fingerprint() -> sha256 hex of what decides z_a.
    record(source) -> {"name", "latent_dim", "fingerprint", "source"}: what datasets and TAEM
      checkpoints store about it (`check_pairing` compares two of them).
  Class members: `load(path)` (a checkpoint directory), `random(seed, **config)` (random
  weights, for tests and benchmarks), `demo` (the name of its committed demo model for
  `taem_jax.paths.demo_model`, None when it has none). `model` must offer
  `__call__(features, faces)` and `decode(z, faces)` on flat batches: the batched synthesis
  runner drives it through them.

  Shapes (Wav2Lip's; another backbone documents its own inputs):
    audio_features: wav (S,) 16 kHz -> (T, 80, 16, 1); encode: (B, T, ...) -> (B, T, D).
    prepare_faces: (N, 96, 96, 3) -> (N, 96, 96, 6); decode: z (N, D), faces -> (N, 96, 96, 3).
  """

  name: str
  label: str
  latent_dim: int
  fps: float
  face_size: int
  can_render: bool
  model: nnx.Module

  def audio_features(self, wav: np.ndarray, n_frames: int) -> np.ndarray: ...

  def audio_windows(self, wav: np.ndarray, fps: float) -> Callable[[int, int], np.ndarray]: ...

  def encode(self, features: Array) -> Array: ...

  def prepare_faces(self, faces: np.ndarray) -> np.ndarray: ...

  def placement(self, track, *, pads, feather: float, region: str): ...

  def decode(self, z: Array, faces: Array) -> Array: ...

  def fingerprint(self) -> str: ...

  def record(self, source=None) -> dict: ...


class FrozenBackbone:
  """What every backbone class shares: a frozen model with `encode_audio` and `decode`.

  The wrapped model is switched to eval mode (BatchNorm running statistics) and its weights
  are constants for autodiff (`frozen_call`): gradients reach z, never the weights.

  Shapes:
    encode: (B, T, ...) per-frame audio features -> (B, T, D) (stop-gradient).
    decode: z (N, D), the backbone's prepared faces -> (N, S, S, 3) BGR [0, 1].
  """

  def __init__(self, model: nnx.Module):
    model.eval()
    self.model = model
    self.latent_dim = int(model.embed_dim)
    self._encode = frozen_call(model, "encode_audio")
    self._decode = frozen_call(model, "decode")

  def encode(self, features: Array) -> Array:
    b, t = features.shape[:2]
    z = self._encode(features.reshape(b * t, *features.shape[2:]))
    return jax.lax.stop_gradient(z.reshape(b, t, -1))

  def decode(self, z: Array, faces: Array) -> Array:
    return self._decode(z, faces)


class Wav2LipTarget(FrozenBackbone):
  """Wav2Lip's audio encoder as TAEM's target, and its face decoder as the renderer.

  The wrapped model is switched to eval mode (BatchNorm running statistics): it is frozen.

  Shapes:
    encode: mel_windows (B, T, 80, 16, 1) (see `taem_jax.audio.mel_windows`) -> (B, T, D),
      D = 512 * width, non-negative.
    decode: z (N, D), faces (N, 96, 96, 6) BGR [0, 1] (masked target | reference)
      -> (N, 96, 96, 3) BGR [0, 1].
  """

  name = "wav2lip"
  label = "Wav2Lip"  # in table rows and messages
  family = "wav2lip"  # its checkpoint family (`taem_jax.models.registry.FAMILIES`)
  can_render = True
  fps = VIDEO_FPS
  face_size = FACE_SIZE
  demo = "wav2lip"  # its committed demo model (`taem_jax.paths.demo_model`), None if none

  @classmethod
  def load(cls, path) -> Wav2LipTarget:
    """The Wav2Lip of a converted or exported checkpoint directory (UserError if not one)."""
    return cls(load_pretrained(path, family=cls.family))

  @classmethod
  def random(cls, seed: int = 0, **config) -> Wav2LipTarget:
    """Random weights (`registry.create`); config e.g. width=0.125 for a tiny one."""
    return cls(create(cls.family, seed=seed, **config))

  def audio_features(self, wav: np.ndarray, n_frames: int) -> np.ndarray:
    """Wav2Lip's 80 fps mel windows, one per video frame (`taem_jax.audio.mel_windows`)."""
    return self.audio_windows(wav, self.fps)(0, n_frames)

  @staticmethod
  def audio_windows(wav: np.ndarray, fps: float) -> Callable[[int, int], np.ndarray]:
    """The mel once; windows of any video frame rate (`audio.mel_windows`), cut on demand."""
    mel = audio.melspectrogram(wav)
    return lambda first, count: audio.mel_windows(mel, count, fps, first)

  @staticmethod
  def prepare_faces(faces: np.ndarray) -> np.ndarray:
    """`face_inputs`: masked target | reference, as the official inference builds them."""
    return face_inputs(faces)

  def placement(self, track, *, pads, feather: float, region: str) -> BoxPlacement:
    """The track's padded boxes, crops resized to 96 px; paste-back as `face.paste_face`."""
    return BoxPlacement(track.crop_boxes(pads), self.face_size, feather, region)

  def fingerprint(self) -> str:
    return audio_encoder_fingerprint(self.model)

  def record(self, source=None) -> dict:
    return target_record(self.model, source)


PCAVS_FINGERPRINT_SCHEME = b"taem_jax pcavs netA_sync v1"
PCAVS_TINY = {"num_classes": 8, "size": 28, "n_mlp": 1}  # `PCAVSTarget.random(**PCAVS_TINY)`


class PCAVSTarget(FrozenBackbone):
  """PC-AVS (paper Sec. 4.3) as TAEM's target: netA_sync's per-frame speech-content feature,
  rendered by netV + netE + netG (`taem_jax.models.pcavs.PCAVS`).

  Faces: one aligned 224 crop per output frame (`taem_jax.face.align.align_faces`), which is
  both the identity and the head-pose source of that frame (see `PCAVS`).

  Shapes:
    audio_features: wav (S,) 16 kHz -> (n_frames, 80, 20, 1) (`audio.pcavs_video_windows`).
    encode: (B, T, 80, 20, 1) -> (B, T, 512), frozen.
    prepare_faces: (N, 224, 224, 3) uint8 BGR aligned crops -> (N, 224, 224, 3) float32 RGB
      [-1, 1] (the official loader's crop, `align.loader_crop`).
    decode: z (N, 512), prepared faces -> (N, size, size, 3) BGR [0, 1] (size 224 official).
  """

  name = "pcavs"
  label = "PC-AVS"  # in table rows and messages
  family = "pcavs"
  can_render = True
  fps = VIDEO_FPS
  face_size = PCAVS_FACE_SIZE
  demo = None  # no committed PC-AVS demo model

  @classmethod
  def load(cls, path) -> PCAVSTarget:
    """The PC-AVS of a converted directory (`python -m porting.convert --src FOLDER --dst DIR`).

    Raises:
      UserError: an official (unconverted) folder, or not a PC-AVS checkpoint (one line).
    """
    p = pathlib.Path(path).expanduser()
    if p.is_dir() and any(p.glob("*_net_A_sync.pth")):
      raise UserError(f"{p} holds official PC-AVS .pth files: convert the folder first with "
                      f"`python -m porting.convert --src {p} --dst DIR` and pass DIR")
    return cls(load_pretrained(p, family=cls.family))

  @classmethod
  def random(cls, seed: int = 0, **config) -> PCAVSTarget:
    """Random weights (`registry.create`); `**PCAVS_TINY` for a cheap one (28 px output)."""
    return cls(create(cls.family, seed=seed, **config))

  def audio_features(self, wav: np.ndarray, n_frames: int) -> np.ndarray:
    """PC-AVS's 100 fps spectrogram windows, one per video frame (`audio.pcavs_video_windows`)."""
    return self.audio_windows(wav, self.fps)(0, n_frames)

  def audio_windows(self, wav: np.ndarray, fps: float) -> Callable[[int, int], np.ndarray]:
    """The spectrogram once, windows cut on demand; PC-AVS's windows are 25 fps only.

    Raises:
      UserError: another frame rate (one line: convert the face video to 25 fps).
    """
    if abs(float(fps) - self.fps) > 1e-3:
      raise UserError(f"PC-AVS's audio windows are made for {self.fps:g} fps video, got "
                      f"{fps:g} fps: convert the face video to {self.fps:g} fps first")
    spec = audio.pcavs_melspectrogram(wav)
    return lambda first, count: audio.pcavs_video_windows(spec, count, first)

  @staticmethod
  def prepare_faces(faces: np.ndarray) -> np.ndarray:
    """The official loader's crop of each aligned 224 BGR uint8 crop (UserError otherwise)."""
    faces = np.asarray(faces)
    if faces.ndim != 4 or faces.dtype != np.uint8:
      raise UserError(f"PC-AVS faces must be (N, 224, 224, 3) uint8 BGR aligned crops, got "
                      f"{faces.dtype} {faces.shape}")
    if len(faces) == 0:
      raise UserError("no face crops given")
    return align.loader_crop(faces)

  def placement(self, track, *, pads, feather: float, region: str) -> align.AlignPlacement:
    """The official 224 alignment of the track's landmarks; pasted back by its inverse warp
    (the whole generated face, edges blended over `feather` of its side, at least 0.05;
    `pads` and `region` are Wav2Lip's box options and unused)."""
    del pads, region
    return align.AlignPlacement(track.landmarks, track.valid, max(float(feather), 0.05))

  def fingerprint(self) -> str:
    """sha256 of netA_sync's feature network (its unused identity classifier `fc` excluded)."""
    return state_fingerprint(self.model.netA_sync.model, PCAVS_FINGERPRINT_SCHEME,
                             what="PC-AVS netA_sync")

  def record(self, source=None) -> dict:
    return {"name": self.name, "latent_dim": self.latent_dim,
            "fingerprint": self.fingerprint(),
            "source": None if source is None else str(source)}


# The registry of backbones: name -> class. A new backbone is one class and one line here.
BACKBONES: dict[str, type] = {"wav2lip": Wav2LipTarget, "pcavs": PCAVSTarget}
DEFAULT_BACKBONE = "wav2lip"


def backbone_class(name: str) -> type:
  """The `Backbone` class registered as `name`; UserError (one line) for an unknown name."""
  if name not in BACKBONES:
    raise UserError(f"unknown backbone {name!r}: choose one of {', '.join(sorted(BACKBONES))}")
  return BACKBONES[name]


def recorded_backbone(record: dict | None) -> str:
  """The backbone name a dataset / TAEM record names; records made before names: "wav2lip"."""
  return str((record or {}).get("name") or DEFAULT_BACKBONE)


def check_backbone(record: dict | None, name: str, *, made: str) -> None:
  """Refuses a dataset / TAEM made for another backbone than `name` (cannot be forced).

  Raises:
    UserError: one line naming both backbones.
  """
  have = recorded_backbone(record)
  if have != name:
    raise UserError(f"{made} was made for the {have} backbone, not {name}: pass --backbone "
                    f"{have}, or use a TAEM / dataset made for {name}")


def face_inputs(faces: np.ndarray) -> np.ndarray:
  """The generator's 6-channel face input for each crop: [masked target, reference].

  As in the official inference, the reference is the same frame, unmasked, and the target has
  its lower half (rows 48..95) zeroed.

  Shapes:
    faces: (N, 96, 96, 3) BGR, uint8 0..255 or float in [0, 1]
    returns (N, 96, 96, 6) float32 in [0, 1].
  """
  f = as_unit_float(faces)
  masked = f.copy()
  masked[:, FACE_SIZE // 2:] = 0.0
  return np.concatenate([masked, f], axis=-1)


def as_unit_float(faces: np.ndarray) -> np.ndarray:
  """Validates 96x96 BGR crops and returns them as float32 in [0, 1].

  Shapes:
    faces: (N, 96, 96, 3) uint8 or float [0, 1] -> (N, 96, 96, 3) float32.
  """
  faces = np.asarray(faces)
  if faces.ndim != 4 or faces.shape[1:] != (FACE_SIZE, FACE_SIZE, 3):
    raise UserError(f"face crops must be (N, 96, 96, 3) BGR, got shape {faces.shape}")
  if len(faces) == 0:
    raise UserError("no face crops given")
  if faces.dtype == np.uint8:
    return faces.astype(np.float32) / 255.0
  if not np.issubdtype(faces.dtype, np.floating):
    raise UserError(f"face crops must be uint8 or float, got {faces.dtype}")
  if not np.all(np.isfinite(faces)) or faces.min() < -1e-3 or faces.max() > 1.0 + 1e-3:
    raise UserError("float face crops must be in [0, 1] (pass uint8 for 0..255 images)")
  return np.clip(faces, 0.0, 1.0).astype(np.float32)


def _host(x) -> np.ndarray:
  """A variable's value on the host; a replicated array over several hosts gives its local copy."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    x = x.addressable_shards[0].data
  return np.ascontiguousarray(np.asarray(x))


def audio_encoder_fingerprint(model: nnx.Module) -> str:
  """sha256 (64 hex digits) of a Wav2Lip's audio encoder: what decides its z_a.

  Covers every array under `model.audio_encoder` (conv kernels and biases, BatchNorm scales,
  offsets and running statistics, which change eval-mode outputs too), in sorted path order,
  each as path, dtype, shape and raw bytes (`state_fingerprint`). The face encoder and decoder
  are not included: retraining only those keeps a TAEM's targets valid. Independent of devices
  and of how the model was loaded (a converted .pth, a training export, a trainer checkpoint).
  """
  return state_fingerprint(model.audio_encoder, FINGERPRINT_SCHEME,
                           what=f"{type(model).__name__} audio_encoder")


def state_fingerprint(module: nnx.Module, scheme: bytes, *, what: str = "module") -> str:
  """sha256 hex of `scheme` then every Param / BatchStat array of `module`, in sorted path
  order, each as path, dtype, shape and raw bytes. A backbone hashes its audio encoder."""
  state = nnx.state(module, nnx.Any(nnx.Param, nnx.BatchStat))
  leaves = sorted(("/".join(str(k) for k in path), _host(v[...]))
                  for path, v in nnx.to_flat_state(state))
  if not leaves:
    raise ValueError(f"{what} has no arrays to fingerprint")
  h = hashlib.sha256(scheme)
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
  check_backbone(recorded, recorded_backbone(actual), made=made)
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
