"""Lip-sync networks (Flax NNX): Wav2Lip's expert `SyncNetColor` and joonson's `SyncNetV2`.

Key mapping (layout rules in layers.py):

SyncNetColor (Wav2Lip `models/syncnet.py`, `lipsync_expert.pth`):
  torch `face_encoder.{i}.conv_block.0.*`  -> `face_encoder[i].conv.{kernel,bias}`
  torch `face_encoder.{i}.conv_block.1.*`  -> `face_encoder[i].bn.{scale,bias,mean,var}`
  torch `audio_encoder.{i}.conv_block.*`   -> `audio_encoder[i].{conv,bn}.*`

SyncNetV2 (syncnet_python `SyncNetModel.S`, `syncnet_v2.model`): the four Sequentials are
`nnx.List`s whose index equals the official Sequential index (parameter-free ReLU/MaxPool layers
sit at their official positions), so torch `netcnnaud.{i}.<name>` -> `netcnnaud[i].<name'>`:
  Conv2d/Conv3d at i -> `.kernel` (HWIO / THWIO: torch permute(2,3,1,0) / permute(2,3,4,1,0)),
                       `.bias`
  BatchNorm at i     -> `.scale`, `.bias`, `.mean`, `.var`
  Linear at i        -> `.kernel` (in, out) = torch weight.T, `.bias`
  netcnnaud: conv 0, 4, 8, 11, 14, 18; BN 1, 5, 9, 12, 15, 19.
  netcnnlip: conv 0, 4, 8, 11, 14, 18; BN 1, 5, 9, 12, 15, 19.
  netfcaud / netfclip: Linear 0, BN 1, Linear 3.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from taem_jax.models import layers
from taem_jax.models.layers import Conv2dBN, MaxPool, ReLU, scaled

# (cout, kernel, stride (H, W), padding, residual)
EXPERT_FACE_ENCODER = (
    (32, 7, 1, 3, False),
    (64, 5, (1, 2), 1, False), (64, 3, 1, 1, True), (64, 3, 1, 1, True),
    (128, 3, 2, 1, False), (128, 3, 1, 1, True), (128, 3, 1, 1, True), (128, 3, 1, 1, True),
    (256, 3, 2, 1, False), (256, 3, 1, 1, True), (256, 3, 1, 1, True),
    (512, 3, 2, 1, False), (512, 3, 1, 1, True), (512, 3, 1, 1, True),
    (512, 3, 2, 1, False),
    (512, 3, 1, 0, False), (512, 1, 1, 0, False),
)

EXPERT_AUDIO_ENCODER = (
    (32, 3, 1, 1, False), (32, 3, 1, 1, True), (32, 3, 1, 1, True),
    (64, 3, (3, 1), 1, False), (64, 3, 1, 1, True), (64, 3, 1, 1, True),
    (128, 3, 3, 1, False), (128, 3, 1, 1, True), (128, 3, 1, 1, True),
    (256, 3, (3, 2), 1, False), (256, 3, 1, 1, True), (256, 3, 1, 1, True),
    (512, 3, 1, 0, False), (512, 1, 1, 0, False),
)


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
  """x / max(||x||, eps) along the last axis (PyTorch `F.normalize`)."""
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


class SyncNetColor(nnx.Module):
  """Wav2Lip's lip-sync expert (official at width 1.0: 16,435,072 params).

  Note: Wav2Lip's generator training ran this frozen expert with BatchNorm in *training* mode
  (batch statistics); call `.train()` to reproduce that, `.eval()` for the running statistics.

  Shapes:
    mel: (B, 80, 16, 1) normalised log-mel window.
    faces: (B, 48, 96, 15) lower halves (rows 48..95) of 5 consecutive 96x96 BGR frames in
      [0, 1], stacked frame-major on channels (channel = 3 * t + c).
    returns (audio_emb (B, 512 * width), face_emb (B, 512 * width)), each L2-normalised.
  """

  family = "syncnet_color"

  def __init__(self, *, width: float = 1.0, rngs: nnx.Rngs):
    self.width = float(width)
    self.face_encoder = self._stack(15, EXPERT_FACE_ENCODER, rngs)
    self.audio_encoder = self._stack(1, EXPERT_AUDIO_ENCODER, rngs)

  def _stack(self, cin: int, table, rngs: nnx.Rngs) -> nnx.List:
    out = []
    for cout, k, s, p, res in table:
      out.append(Conv2dBN(cin, scaled(cout, self.width), k, s, p, res, rngs=rngs))
      cin = scaled(cout, self.width)
    return nnx.List(out)

  def get_config(self) -> dict:
    return {"width": self.width}

  def embed_audio(self, mel: jax.Array) -> jax.Array:
    """Shapes: mel (B, 80, 16, 1) -> (B, 512 * width), unit length."""
    x = mel
    for layer in self.audio_encoder:
      x = layer(x)
    return l2_normalize(x.reshape(x.shape[0], -1))

  def embed_faces(self, faces: jax.Array) -> jax.Array:
    """Shapes: faces (B, 48, 96, 15) -> (B, 512 * width), unit length."""
    x = faces
    for layer in self.face_encoder:
      x = layer(x)
    return l2_normalize(x.reshape(x.shape[0], -1))

  def __call__(self, mel: jax.Array, faces: jax.Array) -> tuple[jax.Array, jax.Array]:
    return self.embed_audio(mel), self.embed_faces(faces)


def _conv_bn_relu(cin, cout, kernel, stride, padding, ndim, rngs):
  return [layers.conv(cin, cout, kernel, stride, padding, ndim=ndim, rngs=rngs),
          layers.batch_norm(cout, rngs=rngs), ReLU()]


def _fc(cin, hidden, cout, rngs):
  return nnx.List([
      nnx.Linear(cin, hidden, kernel_init=layers.torch_like_kernel_init, rngs=rngs),
      layers.batch_norm(hidden, rngs=rngs), ReLU(),
      nnx.Linear(hidden, cout, kernel_init=layers.torch_like_kernel_init, rngs=rngs),
  ])


class SyncNetV2(nnx.Module):
  """joonson/syncnet_python `S` (the LSE-D / LSE-C metric network; 13,631,616 params).

  Embeddings are not normalised (the metric uses Euclidean distances of raw features).

  Shapes:
    mfcc: (B, 13, 20, 1) = 13 MFCCs (H) x 20 MFCC frames (W) (see audio.syncnet_mfcc).
    frames: (B, 5, 224, 224, 3) = 5 consecutive BGR frames as raw 0..255 floats (T, H, W, C).
    embed_audio -> (B, 1024); embed_lips -> (B, 1024).
  """

  family = "syncnet_v2"

  def __init__(self, *, embed_dim: int = 1024, rngs: nnx.Rngs):
    self.embed_dim = int(embed_dim)
    a = []
    a += _conv_bn_relu(1, 64, 3, 1, 1, 2, rngs)                           # 0-2
    a += [MaxPool((1, 1), (1, 1))]                                         # 3
    a += _conv_bn_relu(64, 192, 3, 1, 1, 2, rngs)                          # 4-6
    a += [MaxPool((3, 3), (1, 2))]                                         # 7
    a += _conv_bn_relu(192, 384, 3, 1, 1, 2, rngs)                         # 8-10
    a += _conv_bn_relu(384, 256, 3, 1, 1, 2, rngs)                         # 11-13
    a += _conv_bn_relu(256, 256, 3, 1, 1, 2, rngs)                         # 14-16
    a += [MaxPool((3, 3), (2, 2))]                                         # 17
    a += _conv_bn_relu(256, 512, (5, 4), 1, 0, 2, rngs)                    # 18-20
    self.netcnnaud = nnx.List(a)
    self.netfcaud = _fc(512, 512, self.embed_dim, rngs)

    v = []
    v += _conv_bn_relu(3, 96, (5, 7, 7), (1, 2, 2), 0, 3, rngs)            # 0-2
    v += [MaxPool((1, 3, 3), (1, 2, 2))]                                   # 3
    v += _conv_bn_relu(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1), 3, rngs)  # 4-6
    v += [MaxPool((1, 3, 3), (1, 2, 2), (0, 1, 1))]                        # 7
    v += _conv_bn_relu(256, 256, (1, 3, 3), 1, (0, 1, 1), 3, rngs)         # 8-10
    v += _conv_bn_relu(256, 256, (1, 3, 3), 1, (0, 1, 1), 3, rngs)         # 11-13
    v += _conv_bn_relu(256, 256, (1, 3, 3), 1, (0, 1, 1), 3, rngs)         # 14-16
    v += [MaxPool((1, 3, 3), (1, 2, 2))]                                   # 17
    v += _conv_bn_relu(256, 512, (1, 6, 6), 1, 0, 3, rngs)                 # 18-20
    self.netcnnlip = nnx.List(v)
    self.netfclip = _fc(512, 512, self.embed_dim, rngs)

  def get_config(self) -> dict:
    return {"embed_dim": self.embed_dim}

  @staticmethod
  def _run(seq, x):
    for layer in seq:
      x = layer(x)
    return x

  def embed_audio(self, mfcc: jax.Array) -> jax.Array:
    """Shapes: mfcc (B, 13, 20, 1) -> (B, 1024)."""
    x = self._run(self.netcnnaud, mfcc)
    return self._run(self.netfcaud, x.reshape(x.shape[0], -1))

  def lip_features(self, frames: jax.Array) -> jax.Array:
    """The 512-d conv feature before the FC head (official `forward_lipfeat`).

    Shapes: frames (B, 5, 224, 224, 3) -> (B, 512).
    """
    x = self._run(self.netcnnlip, frames)
    return x.reshape(x.shape[0], -1)

  def embed_lips(self, frames: jax.Array) -> jax.Array:
    """Shapes: frames (B, 5, 224, 224, 3) -> (B, 1024)."""
    return self._run(self.netfclip, self.lip_features(frames))

  def __call__(self, mfcc: jax.Array, frames: jax.Array) -> tuple[jax.Array, jax.Array]:
    return self.embed_audio(mfcc), self.embed_lips(frames)
