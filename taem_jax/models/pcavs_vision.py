"""PC-AVS's visual encoders in Flax NNX (NHWC): identity encoder netV and pose encoder netE.

PC-AVS (Zhou et al., CVPR 2021) encodes a reference face twice: netV (a ResNeXt-50 32x4d) gives
the identity vector and a 7x7 identity map, netE (a FAN face-alignment hourglass) gives a
512-d "non-identity" feature that small MLP heads split into a head-pose and a mouth code.
Attribute names follow the official modules, so a torch key maps mechanically, e.g.
`model.layer2.0.downsample.0.weight` -> `model.layer2[0].downsample[0].kernel` (HWIO) and
`to_headpose.2.bias` -> `to_headpose[2].bias`. Parameter-free layers (ReLU) keep their slot in
each list so the indices match PyTorch's `nn.Sequential`.

Inputs of both nets (official inference): RGB, 224x224, pixel / 255 normalised with mean 0.5
and std 0.5, i.e. values in [-1, 1]. netV accepts any size >= 32 (its pools are adaptive);
netE needs exactly 224 (its final Linear takes a 28x28 map).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from taem_jax.errors import UserError
from taem_jax.models import layers

RESNEXT_LAYERS = (3, 4, 6, 3)  # bottlenecks per stage
RESNEXT_GROUPS = 32
RESNEXT_WIDTH = 4  # channels per group at the first stage
NUM_CLASSES = 5830  # the VoxCeleb2 identities of the official checkpoint
POSE_DIM = 12
FAN_SIZE = 224


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, *, bias: bool = False,
          groups: int = 1, rngs: nnx.Rngs) -> nnx.Conv:
  # torch-style explicit padding; most convs here are bias-free (BatchNorm follows).
  return nnx.Conv(cin, cout, kernel_size=(k, k), strides=(stride, stride),
                  padding=((pad, pad), (pad, pad)), use_bias=bias, feature_group_count=groups,
                  kernel_init=layers.torch_like_kernel_init, rngs=rngs)


def _linear(cin: int, cout: int, rngs: nnx.Rngs) -> nnx.Linear:
  return nnx.Linear(cin, cout, kernel_init=layers.torch_like_kernel_init, rngs=rngs)


def _run(seq, x: jax.Array) -> jax.Array:
  for layer in seq:
    x = layer(x)
  return x


def adaptive_avg_pool_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) averaging weights of PyTorch's adaptive_avg_pool along one axis.

  Bin i covers [floor(i * n_in / n_out), ceil((i + 1) * n_in / n_out)).
  """
  m = np.zeros((n_out, n_in), np.float32)
  for i in range(n_out):
    lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
    m[i, lo:hi] = 1.0 / (hi - lo)
  return m


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) weights of PyTorch's bilinear resize (align_corners=False) along one axis.

  Source coordinate (j + 0.5) * n_in / n_out - 0.5, clamped at 0; the upper neighbour is
  clamped to the last pixel.
  """
  m = np.zeros((n_out, n_in), np.float32)
  scale = n_in / n_out
  for j in range(n_out):
    src = max((j + 0.5) * scale - 0.5, 0.0)
    i0 = int(np.floor(src))
    i1 = min(i0 + 1, n_in - 1)
    frac = src - i0
    m[j, i0] += 1.0 - frac
    m[j, i1] += frac
  return m


def _resample(x: jax.Array, mh: np.ndarray, mw: np.ndarray) -> jax.Array:
  """Separable linear resampling of NHWC `x` with (H', H) and (W', W) weight matrices."""
  hp = jax.lax.Precision.HIGHEST
  x = jnp.einsum("oh,bhwc->bowc", jnp.asarray(mh), x, precision=hp)
  return jnp.einsum("pw,bowc->bopc", jnp.asarray(mw), x, precision=hp)


def _max_pool2(x: jax.Array) -> jax.Array:
  # torch max_pool2d(x, 2, 2): floor mode (an odd last row/column is dropped).
  return nnx.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")


def normalize(images_rgb) -> jax.Array:
  """Official PC-AVS input scaling: uint8 RGB -> float32 in [-1, 1] (x / 255 * 2 - 1).

  Shapes: (B, H, W, 3) uint8 RGB -> (B, H, W, 3) float32. The official loader reads frames
  with OpenCV, crops rows [0, 192) and columns [16, 208) of the 224x224 aligned face, resizes
  back to 224x224 (bilinear) and converts BGR -> RGB before this step.
  """
  x = np.asarray(images_rgb)
  if x.dtype != np.uint8:
    raise UserError(f"PC-AVS encoders take uint8 RGB frames, got {x.dtype}; pass the "
                    "0..255 pixels (e.g. frames.astype(np.uint8)), not pre-scaled floats")
  # Divide in float64 and cast, as the official loader does (bit-identical inputs).
  return jnp.asarray((x / 255.0).astype(np.float32)) * 2.0 - 1.0


# ----------------------------------------------------------------------------- netV (ResNeXt)


class Bottleneck(nnx.Module):
  """torchvision-style ResNeXt bottleneck (stride on the grouped 3x3 conv).

  Shapes: (B, H, W, cin) -> (B, ceil(H / stride), ceil(W / stride), 4 * planes).
  """

  def __init__(self, cin: int, planes: int, stride: int, *, rngs: nnx.Rngs):
    width = planes * RESNEXT_WIDTH * RESNEXT_GROUPS // 64
    cout = planes * 4
    self.conv1 = _conv(cin, width, 1, rngs=rngs)
    self.bn1 = layers.batch_norm(width, rngs=rngs)
    self.conv2 = _conv(width, width, 3, stride, 1, groups=RESNEXT_GROUPS, rngs=rngs)
    self.bn2 = layers.batch_norm(width, rngs=rngs)
    self.conv3 = _conv(width, cout, 1, rngs=rngs)
    self.bn3 = layers.batch_norm(cout, rngs=rngs)
    self.downsample = nnx.List([_conv(cin, cout, 1, stride, rngs=rngs),
                                layers.batch_norm(cout, rngs=rngs)]) if (
                                    stride != 1 or cin != cout) else None

  def __call__(self, x: jax.Array) -> jax.Array:
    h = jax.nn.relu(self.bn1(self.conv1(x)))
    h = jax.nn.relu(self.bn2(self.conv2(h)))
    h = self.bn3(self.conv3(h))
    skip = x if self.downsample is None else _run(self.downsample, x)
    return jax.nn.relu(h + skip)


class ResNeXt50(nnx.Module):
  """ResNeXt-50 32x4d trunk (torchvision key layout, incl. its unused 1000-way `fc`).

  Shapes: (B, H, W, 3) -> (B, H/32, W/32, 2048) (each stride-2 step rounds up).
  """

  def __init__(self, *, rngs: nnx.Rngs):
    self.conv1 = _conv(3, 64, 7, 2, 3, rngs=rngs)
    self.bn1 = layers.batch_norm(64, rngs=rngs)
    self.maxpool = layers.MaxPool((3, 3), (2, 2), (1, 1))
    cin = 64
    for stage, (n, planes) in enumerate(zip(RESNEXT_LAYERS, (64, 128, 256, 512))):
      blocks = []
      for b in range(n):
        blocks.append(Bottleneck(cin, planes, 2 if (b == 0 and stage > 0) else 1, rngs=rngs))
        cin = planes * 4
      setattr(self, f"layer{stage + 1}", nnx.List(blocks))
    # ImageNet head of torchvision's ResNet: in the checkpoint, never called by PC-AVS.
    self.fc = _linear(2048, 1000, rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = self.maxpool(jax.nn.relu(self.bn1(self.conv1(x))))
    for stage in range(1, 5):
      x = _run(getattr(self, f"layer{stage}"), x)
    return x


class PCAVSIdentityEncoder(nnx.Module):
  """PC-AVS netV (`--netV resnext`): identity vector, 7x7 identity map, identity scores.

  Shapes:
    x: (B * num_inputs, H, W, 3) float32 RGB in [-1, 1] (official: H = W = 224).
    returns (id_vector (B, 2048), id_map (B, 7, 7, 512), scores (B, num_classes)); with
      num_inputs > 1 the views of one identity (consecutive rows) are averaged, as official.
  """

  family = "pcavs_V"

  def __init__(self, num_classes: int = NUM_CLASSES, *, rngs: nnx.Rngs):
    self.num_classes = int(num_classes)
    self.model = ResNeXt50(rngs=rngs)
    self.conv1x1 = _conv(2048, 512, 1, bias=True, rngs=rngs)
    self.fc = _linear(2048, self.num_classes, rngs)

  def get_config(self) -> dict:
    return {"num_classes": self.num_classes}

  def __call__(self, x: jax.Array, num_inputs: int = 1):
    feat = self.model(x)
    vec = jnp.mean(feat, axis=(1, 2))
    fmap = self.conv1x1(feat)
    h, w = fmap.shape[1:3]
    if (h, w) != (7, 7):  # identity at 224 px; otherwise torch's adaptive pool to 7x7
      fmap = _resample(fmap, adaptive_avg_pool_matrix(h, 7), adaptive_avg_pool_matrix(w, 7))
    vec = jnp.mean(vec.reshape(-1, num_inputs, vec.shape[-1]), axis=1)
    fmap = jnp.mean(fmap.reshape(-1, num_inputs, *fmap.shape[1:]), axis=1)
    return vec, fmap, self.fc(vec)


# ----------------------------------------------------------------------------- netE (FAN)


class ConvBlock(nnx.Module):
  """FAN's pre-activation residual block: three 3x3 convs (cout/2, /4, /4) concatenated.

  Shapes: (B, H, W, cin) -> (B, H, W, cout).
  """

  def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs):
    half, quarter = cout // 2, cout // 4
    self.bn1 = layers.batch_norm(cin, rngs=rngs)
    self.conv1 = _conv(cin, half, 3, 1, 1, rngs=rngs)
    self.bn2 = layers.batch_norm(half, rngs=rngs)
    self.conv2 = _conv(half, quarter, 3, 1, 1, rngs=rngs)
    self.bn3 = layers.batch_norm(quarter, rngs=rngs)
    self.conv3 = _conv(quarter, quarter, 3, 1, 1, rngs=rngs)
    self.downsample = nnx.List([layers.batch_norm(cin, rngs=rngs), layers.ReLU(),
                                _conv(cin, cout, 1, rngs=rngs)]) if cin != cout else None

  def __call__(self, x: jax.Array) -> jax.Array:
    o1 = self.conv1(jax.nn.relu(self.bn1(x)))
    o2 = self.conv2(jax.nn.relu(self.bn2(o1)))
    o3 = self.conv3(jax.nn.relu(self.bn3(o2)))
    skip = x if self.downsample is None else _run(self.downsample, x)
    return jnp.concatenate([o1, o2, o3], axis=-1) + skip


class HourGlass(nnx.Module):
  """FAN hourglass of `depth` levels on 256 channels (blocks b1_L, b2_L, b2_plus_1, b3_L).

  Shapes: (B, H, W, 256) -> (B, H, W, 256). Dropout of the official module is eval-identity.
  """

  def __init__(self, depth: int = 4, *, rngs: nnx.Rngs):
    self.depth = depth
    for level in range(depth, 0, -1):
      setattr(self, f"b1_{level}", ConvBlock(256, 256, rngs=rngs))
      setattr(self, f"b2_{level}", ConvBlock(256, 256, rngs=rngs))
      setattr(self, f"b3_{level}", ConvBlock(256, 256, rngs=rngs))
    self.b2_plus_1 = ConvBlock(256, 256, rngs=rngs)

  def _level(self, level: int, x: jax.Array) -> jax.Array:
    up = getattr(self, f"b1_{level}")(x)
    low = getattr(self, f"b2_{level}")(_max_pool2(x))
    low = self._level(level - 1, low) if level > 1 else self.b2_plus_1(low)
    low = getattr(self, f"b3_{level}")(low)
    (h, w), (lh, lw) = x.shape[1:3], low.shape[1:3]
    return up + _resample(low, bilinear_matrix(lh, h), bilinear_matrix(lw, w))

  def __call__(self, x: jax.Array) -> jax.Array:
    return self._level(self.depth, x)


class FAN(nnx.Module):
  """PC-AVS's `FAN_use`: one-stack FAN up to the 68 heatmaps, then a 512-d feature.

  Shapes: (B, 224, 224, 3) -> (B, 512).
  """

  def __init__(self, *, rngs: nnx.Rngs):
    self.conv1 = _conv(3, 64, 7, 2, 3, bias=True, rngs=rngs)
    self.bn1 = layers.batch_norm(64, rngs=rngs)
    self.conv2 = ConvBlock(64, 128, rngs=rngs)
    self.conv3 = ConvBlock(128, 128, rngs=rngs)
    self.conv4 = ConvBlock(128, 256, rngs=rngs)
    self.m0 = HourGlass(4, rngs=rngs)
    self.top_m_0 = ConvBlock(256, 256, rngs=rngs)
    self.conv_last0 = _conv(256, 256, 1, bias=True, rngs=rngs)
    self.l0 = _conv(256, 68, 1, bias=True, rngs=rngs)
    self.bn_end0 = layers.batch_norm(256, rngs=rngs)
    self.conv6 = _conv(68, 1, 3, 2, 1, bias=True, rngs=rngs)
    self.fc = _linear(28 * 28, 512, rngs)
    self.bn5 = layers.batch_norm(68, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = jax.nn.relu(self.bn1(self.conv1(x)))
    x = self.conv4(self.conv3(_max_pool2(self.conv2(x))))
    h = self.bn_end0(self.conv_last0(self.top_m_0(self.m0(x))))
    heat = self.l0(jax.nn.relu(h))
    h = self.conv6(jax.nn.relu(self.bn5(heat)))  # (B, 28, 28, 1)
    return self.fc(jax.nn.relu(h.reshape(h.shape[0], -1)))


class PCAVSPoseEncoder(nnx.Module):
  """PC-AVS netE (`--netE fan`): the non-identity feature and its pose / mouth heads.

  `classifier`, `mouth_fc` and `headpose_fc` are training-time classifiers: held (so the
  checkpoint converts one to one) and, except `classify`, never called.

  Shapes:
    features: (B, 224, 224, 3) float32 RGB in [-1, 1] -> (B, 512)  (official forward_feature)
    headpose: (B, 512) -> (B, 512)      (to_headpose)
    embed_headpose: (B, 512) -> (B, pose_dim)   (headpose_embed)
    mouth: (B, 512) -> (B, 512)         (to_mouth)
    embed_mouth: (B, 512) -> (B, 512 - pose_dim)   (mouth_embed; official inference feeds it
      the audio content feature)
    classify: (B, 512) -> (B, num_classes)
  """

  family = "pcavs_E"

  def __init__(self, num_classes: int = NUM_CLASSES, pose_dim: int = POSE_DIM,
               clip_len: int = 1, *, rngs: nnx.Rngs):
    self.num_classes, self.pose_dim, self.clip_len = int(num_classes), int(pose_dim), int(
        clip_len)
    nc = self.num_classes
    self.model = FAN(rngs=rngs)

    def mlp(cout):
      return nnx.List([_linear(512, 512, rngs), layers.ReLU(), _linear(512, cout, rngs)])

    def head(cin, cout):
      return nnx.List([layers.ReLU(), _linear(cin, cout, rngs)])

    self.classifier = mlp(nc)
    self.to_mouth = mlp(512)
    self.mouth_embed = head(512, 512 - pose_dim)
    self.mouth_fc = head(512 * clip_len, nc)
    self.to_headpose = mlp(512)
    self.headpose_embed = head(512, pose_dim)
    self.headpose_fc = head(pose_dim * clip_len, nc)

  def get_config(self) -> dict:
    return {"num_classes": self.num_classes, "pose_dim": self.pose_dim,
            "clip_len": self.clip_len}

  def features(self, x: jax.Array) -> jax.Array:
    return self.model(x)

  def headpose(self, feat: jax.Array) -> jax.Array:
    return _run(self.to_headpose, feat)

  def embed_headpose(self, pose: jax.Array) -> jax.Array:
    return _run(self.headpose_embed, pose)

  def mouth(self, feat: jax.Array) -> jax.Array:
    return _run(self.to_mouth, feat)

  def embed_mouth(self, mouth: jax.Array) -> jax.Array:
    return _run(self.mouth_embed, mouth)

  def classify(self, feat: jax.Array) -> jax.Array:
    return _run(self.classifier, feat)

  def __call__(self, x: jax.Array) -> jax.Array:
    """Shapes: (B, 224, 224, 3) -> (B, 512) head-pose code before its embedding."""
    return self.headpose(self.features(x))
