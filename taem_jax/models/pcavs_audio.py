"""PC-AVS's audio content encoder (`netA_sync`, `ressesync`) in Flax NNX (NHWC), inference path.

PC-AVS (Zhou et al., CVPR 2021) encodes each video frame's speech content from a 20-frame
(0.2 s) log-mel window. netA_sync is a squeeze-excitation ResNet-34-style stack
(`SEBasicBlock` x (3, 4, 6, 3), widths 32/64/128/256, strides 1/2/2/2) over the (80 mel x 20
time) image, then self-attentive pooling over time (SAP) and a linear layer to 512-d.
`forward_feature` (this module's `__call__`) returns that 512-d feature; the 5830-way speaker
classifier `fc` is part of the official checkpoint and kept (`logits`) but not used by inference.

Attribute names mirror the official PyTorch modules so checkpoint keys map mechanically:
`model.layer2.0.downsample.1.running_var` -> `model.layer2.0.downsample.1.var`,
`model.attention.3.weight` -> `model.attention.3.kernel` (a width-1 1-D conv, (1, in, out)).
Torch Sequential positions without weights (ReLU, Sigmoid, Softmax) hold `layers.ReLU` or
are applied inline, so the indices stay the official ones.

Note the official order inside blocks is conv -> ReLU -> BatchNorm (not conv -> BN -> ReLU) for
the stem and each block's first conv.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from taem_jax.models import layers

WIDTHS = (32, 64, 128, 256)
DEPTHS = (3, 4, 6, 3)
STRIDES = (1, 2, 2, 2)
N_MELS = 80
SE_REDUCTION = 8
FEATURE_DIM = 512
NUM_CLASSES = 5830  # VoxCeleb2 training identities of the released checkpoint


def _conv_nobias(cin: int, cout: int, k: int, stride: int, pad: int, rngs: nnx.Rngs) -> nnx.Conv:
  return nnx.Conv(cin, cout, kernel_size=(k, k), strides=(stride, stride),
                  padding=((pad, pad), (pad, pad)), use_bias=False,
                  kernel_init=layers.torch_like_kernel_init, rngs=rngs)


def _linear(cin: int, cout: int, rngs: nnx.Rngs) -> nnx.Linear:
  return nnx.Linear(cin, cout, kernel_init=layers.torch_like_kernel_init, rngs=rngs)


class SELayer(nnx.Module):
  """Channel gate: global average pool -> Linear(C, C/8) -> ReLU -> Linear -> sigmoid -> scale.

  Shapes: x (B, H, W, C) -> (B, H, W, C).
  """

  def __init__(self, channels: int, *, rngs: nnx.Rngs):
    self.fc = nnx.List([_linear(channels, channels // SE_REDUCTION, rngs), layers.ReLU(),
                        _linear(channels // SE_REDUCTION, channels, rngs)])

  def __call__(self, x: jax.Array) -> jax.Array:
    y = x.mean(axis=(1, 2))
    y = self.fc[2](self.fc[1](self.fc[0](y)))
    return x * jax.nn.sigmoid(y)[:, None, None, :]


class SEBasicBlock(nnx.Module):
  """conv3x3(stride) -> ReLU -> BN -> conv3x3 -> BN -> SE, plus the (1x1 conv + BN) shortcut
  when the stride or width changes, then ReLU.

  Shapes: x (B, H, W, cin) -> (B, ceil(H / stride), ceil(W / stride), cout).
  """

  def __init__(self, cin: int, cout: int, stride: int = 1, *, rngs: nnx.Rngs):
    self.conv1 = _conv_nobias(cin, cout, 3, stride, 1, rngs)
    self.bn1 = layers.batch_norm(cout, rngs=rngs)
    self.conv2 = _conv_nobias(cout, cout, 3, 1, 1, rngs)
    self.bn2 = layers.batch_norm(cout, rngs=rngs)
    self.se = SELayer(cout, rngs=rngs)
    if stride != 1 or cin != cout:
      self.downsample = nnx.List([_conv_nobias(cin, cout, 1, stride, 0, rngs),
                                  layers.batch_norm(cout, rngs=rngs)])
    else:
      self.downsample = None

  def __call__(self, x: jax.Array) -> jax.Array:
    out = self.bn1(jax.nn.relu(self.conv1(x)))
    out = self.se(self.bn2(self.conv2(out)))
    residual = x if self.downsample is None else self.downsample[1](self.downsample[0](x))
    return jax.nn.relu(out + residual)


class ResNetSE(nnx.Module):
  """The official `ResNetSE` trunk with SAP pooling (its `fc` projects to `n_out`).

  Shapes: x (B, 80, T, 1) -> (B, n_out).
  """

  def __init__(self, n_out: int = FEATURE_DIM, *, rngs: nnx.Rngs):
    self.conv1 = layers.conv(1, WIDTHS[0], 3, 1, 1, rngs=rngs)
    self.bn1 = layers.batch_norm(WIDTHS[0], rngs=rngs)
    cin = WIDTHS[0]
    for i, (width, depth, stride) in enumerate(zip(WIDTHS, DEPTHS, STRIDES)):
      blocks = []
      for j in range(depth):
        blocks.append(SEBasicBlock(cin, width, stride if j == 0 else 1, rngs=rngs))
        cin = width
      setattr(self, f"layer{i + 1}", nnx.List(blocks))
    # Three stride-2 stages: 80 mel bins -> 10 rows; SAP attends over the time columns.
    pooled = WIDTHS[-1] * (N_MELS // 8)
    self.attention = nnx.List([
        nnx.Conv(pooled, 128, kernel_size=(1,), padding=((0, 0),), kernel_init=layers.torch_like_kernel_init,
                 rngs=rngs),
        layers.ReLU(),
        layers.batch_norm(128, rngs=rngs),
        nnx.Conv(128, pooled, kernel_size=(1,), padding=((0, 0),), kernel_init=layers.torch_like_kernel_init,
                 rngs=rngs)])
    self.fc = _linear(pooled, n_out, rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.bn1(jax.nn.relu(self.conv1(x)))
    for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
      for block in stage:
        x = block(x)
    b, f, t, c = x.shape
    # Official flattening is channel-major over (C, F): feature index = c * F + f.
    x = x.transpose(0, 2, 3, 1).reshape(b, t, c * f)
    w = self.attention[0](x)
    w = self.attention[2](self.attention[1](w))
    w = jax.nn.softmax(self.attention[3](w), axis=1)  # over time
    return self.fc(jnp.sum(x * w, axis=1))


class PCAVSAudioSync(nnx.Module):
  """PC-AVS netA_sync (`ResSESyncEncoder`); `__call__` is the official `forward_feature`.

  Shapes:
    mel: (B, 80, 20, 1) normalised log-mel window in [0, 1] (mel bins x 20 spectrogram frames,
      see `taem_jax.audio.pcavs_windows`), or (B, L, 80, 20, 1) which is folded to B * L rows
      like the official 5-D input.
    returns: (B, 512) (or (B * L, 512)) speech-content feature, before PC-AVS's
      mouth_feature_weight.
  """

  family = "pcavs_A_sync"

  def __init__(self, *, num_classes: int = NUM_CLASSES, rngs: nnx.Rngs):
    self.num_classes = int(num_classes)
    self.model = ResNetSE(FEATURE_DIM, rngs=rngs)
    self.fc = _linear(FEATURE_DIM, self.num_classes, rngs)

  def get_config(self) -> dict:
    return {"num_classes": self.num_classes}

  def __call__(self, mel: jax.Array) -> jax.Array:
    if mel.ndim == 5:
      mel = mel.reshape((-1,) + mel.shape[2:])
    return self.model(mel)

  def logits(self, mel: jax.Array) -> jax.Array:
    """Shapes: mel as `__call__` -> (B, num_classes) training-time identity scores."""
    return self.fc(self(mel))
