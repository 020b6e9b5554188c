"""S3FD, the face detector official Wav2Lip runs (`s3fd-619a316812.pth`), in Flax NNX (NHWC).

Attribute names are the official module names, so a torch key maps mechanically:
`conv1_1.weight` -> `conv1_1.kernel` (HWIO), `conv3_3_norm.weight` -> `conv3_3_norm.scale`,
`fc7_mbox_conf.bias` -> `fc7_mbox_conf.bias`.

Network: a VGG16 trunk (conv1_1..conv5_3, 2x2 max-pools after conv1_2, conv2_2, conv3_3,
conv4_3, conv5_3), fc6 (3x3, padding 3, no dilation: the official PyTorch definition; its output
is 4 cells larger than its input), fc7, conv6_1/6_2, conv7_1/7_2, L2Norm on conv3_3..conv5_3 and
six heads (strides 4, 8, ..., 128) of 2 class logits + 4 box offsets per cell; the stride-4
head has 4 class logits, reduced by max-out (background = max of the first 3).

Detection follows official Wav2Lip's `face_detection` exactly (`detect`): frames BGR -> RGB,
minus (104, 117, 123) in that (RGB) order; the network runs jit-compiled on the batch; softmax;
cells with face probability > 0.05 are decoded on the host in numpy (their number varies per
frame, which a jitted function cannot return): anchor centre (stride/2 + x*stride,
stride/2 + y*stride), side 4*stride, SSD offsets with variances (0.1, 0.2); then NMS at IoU 0.3
("+1" pixel areas), keep score > 0.5, take the highest-scoring box, clip negatives to 0 and
truncate to int. Each image is decoded on its own: the official batched decode also adds, for
every image, the cells that pass 0.05 in another image of the batch, but those score <= 0.05
here, so they can neither suppress a higher box in NMS nor pass 0.5: the result is the same.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from taem_jax.models import layers

# (name, cin, cout, kernel, stride, padding), in the official order.
TRUNK = (("conv1_1", 3, 64, 3, 1, 1), ("conv1_2", 64, 64, 3, 1, 1),
         ("conv2_1", 64, 128, 3, 1, 1), ("conv2_2", 128, 128, 3, 1, 1),
         ("conv3_1", 128, 256, 3, 1, 1), ("conv3_2", 256, 256, 3, 1, 1),
         ("conv3_3", 256, 256, 3, 1, 1), ("conv4_1", 256, 512, 3, 1, 1),
         ("conv4_2", 512, 512, 3, 1, 1), ("conv4_3", 512, 512, 3, 1, 1),
         ("conv5_1", 512, 512, 3, 1, 1), ("conv5_2", 512, 512, 3, 1, 1),
         ("conv5_3", 512, 512, 3, 1, 1), ("fc6", 512, 1024, 3, 1, 3),
         ("fc7", 1024, 1024, 1, 1, 0), ("conv6_1", 1024, 256, 1, 1, 0),
         ("conv6_2", 256, 512, 3, 2, 1), ("conv7_1", 512, 128, 1, 1, 0),
         ("conv7_2", 128, 256, 3, 2, 1))
POOL_AFTER = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")
# L2Norm layers: (name, channels, initial scale).
NORMS = (("conv3_3_norm", 256, 10.0), ("conv4_3_norm", 512, 8.0), ("conv5_3_norm", 512, 5.0))
# Heads: (source feature, channels, class logits), strides 4, 8, 16, 32, 64, 128.
HEADS = (("conv3_3_norm", 256, 4), ("conv4_3_norm", 512, 2), ("conv5_3_norm", 512, 2),
         ("fc7", 1024, 2), ("conv6_2", 512, 2), ("conv7_2", 256, 2))
STRIDES = (4, 8, 16, 32, 64, 128)

# Official inference constants (Wav2Lip face_detection/detection/sfd).
MEAN_RGB = (104.0, 117.0, 123.0)  # subtracted from R, G, B in this order
VARIANCES = (0.1, 0.2)
CELL_THRESHOLD = 0.05
NMS_IOU = 0.3
SCORE_THRESHOLD = 0.5


class L2Norm(nnx.Module):
  """x / (||x||_C + 1e-10) * scale, with a learned per-channel scale.

  Shapes: (B, H, W, C) -> (B, H, W, C).
  """

  def __init__(self, channels: int, init: float):
    self.init = float(init)
    self.scale = nnx.Param(jnp.full((channels,), init, jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    norm = jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True)) + 1e-10
    return x / norm * self.scale[...]


class S3FD(nnx.Module):
  """The S3FD network (official architecture; no configuration).

  Shapes:
    x: (B, H, W, 3) float32, RGB pixel values minus MEAN_RGB (see `preprocess`).
    returns 6 pairs (probs (B, h_i, w_i, 2) softmax [background, face],
      offsets (B, h_i, w_i, 4) (dx, dy, dw, dh)), heads of strides 4..128. For H = W = 128:
      h_i = 32, 16, 8, 8, 4, 2 (fc6's padding 3 makes the stride-32 map 4 cells larger).
  """

  family = "s3fd"

  def __init__(self, *, rngs: nnx.Rngs):
    for name, cin, cout, k, s, p in TRUNK:
      setattr(self, name, layers.conv(cin, cout, k, s, p, rngs=rngs))
    for name, c, init in NORMS:
      setattr(self, name, L2Norm(c, init))
    for src, c, ncls in HEADS:
      setattr(self, f"{src}_mbox_conf", layers.conv(c, ncls, 3, 1, 1, rngs=rngs))
      setattr(self, f"{src}_mbox_loc", layers.conv(c, 4, 3, 1, 1, rngs=rngs))

  def get_config(self) -> dict:
    return {}

  def logits(self, x: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
    """Per head (class logits (B, h, w, 2) after max-out, offsets (B, h, w, 4))."""
    feats = {}
    h = x
    for name, *_ in TRUNK:
      h = jax.nn.relu(getattr(self, name)(h))
      feats[name] = h
      if name in POOL_AFTER:
        # Floor mode, like torch's max_pool2d(2, 2).
        h = nnx.max_pool(h, (2, 2), strides=(2, 2), padding="VALID")
    for name, *_ in NORMS:
      feats[name] = getattr(self, name)(feats[name[:-len("_norm")]])
    out = []
    for src, _, ncls in HEADS:
      cls = getattr(self, f"{src}_mbox_conf")(feats[src])
      if ncls == 4:  # max-out background: max of the first 3, face = the 4th
        cls = jnp.concatenate([jnp.max(cls[..., :3], axis=-1, keepdims=True), cls[..., 3:]], -1)
      out.append((cls, getattr(self, f"{src}_mbox_loc")(feats[src])))
    return out

  def __call__(self, x: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
    return [(jax.nn.softmax(c, axis=-1), o) for c, o in self.logits(x)]


def preprocess(frames_bgr) -> jax.Array:
  """Official pre-processing: BGR -> RGB, minus MEAN_RGB, float32.

  Shapes: (B, H, W, 3) uint8 BGR -> (B, H, W, 3) float32.
  """
  x = jnp.asarray(frames_bgr)[..., ::-1].astype(jnp.float32)
  return x - jnp.asarray(MEAN_RGB, jnp.float32)


@nnx.jit
def _forward(model: S3FD, frames_bgr: jax.Array):
  return model(preprocess(frames_bgr))


def decode_head(probs: np.ndarray, offsets: np.ndarray, stride: int,
                threshold: float = CELL_THRESHOLD) -> np.ndarray:
  """Candidate boxes of one head of one image, cells in row-major order (as official).

  Shapes:
    probs: (h, w, 2), offsets: (h, w, 4) -> (N, 5) float32 (x1, y1, x2, y2, face score) for
    the N cells whose face probability > threshold.
  """
  probs = np.asarray(probs, np.float32)
  offsets = np.asarray(offsets, np.float32)
  ys, xs = np.nonzero(probs[..., 1] > threshold)
  s = np.float32(stride)
  size = np.float32(4 * stride)
  acx = s / 2 + xs.astype(np.float32) * s
  acy = s / 2 + ys.astype(np.float32) * s
  off = offsets[ys, xs]
  # Same float32 operation order as the official batch_decode.
  cx = acx + off[:, 0] * np.float32(VARIANCES[0]) * size
  cy = acy + off[:, 1] * np.float32(VARIANCES[0]) * size
  w = size * np.exp(off[:, 2] * np.float32(VARIANCES[1]))
  h = size * np.exp(off[:, 3] * np.float32(VARIANCES[1]))
  x1, y1 = cx - w / 2, cy - h / 2
  return np.stack([x1, y1, w + x1, h + y1, probs[ys, xs, 1]], -1).astype(np.float32)


def nms(dets: np.ndarray, iou: float = NMS_IOU) -> list[int]:
  """Greedy NMS, highest score first; overlap with "+1" pixel areas (official convention).

  Shapes: dets (N, 5) (x1, y1, x2, y2, score) -> indices kept, in descending score order.
  """
  if len(dets) == 0:
    return []
  x1, y1, x2, y2, scores = (dets[:, i] for i in range(5))
  areas = (x2 - x1 + 1) * (y2 - y1 + 1)
  order = scores.argsort()[::-1]
  keep = []
  while order.size > 0:
    i = order[0]
    keep.append(int(i))
    rest = order[1:]
    w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
    h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
    inter = w * h
    overlap = inter / (areas[i] + areas[rest] - inter)
    order = rest[overlap <= iou]
  return keep


def decode_image(heads) -> np.ndarray:
  """All faces of one image: candidates of every head, NMS, score > 0.5.

  Shapes: heads: 6 pairs (probs (h, w, 2), offsets (h, w, 4)) -> (K, 5) float32 boxes with
  scores, highest score first.
  """
  cands = [decode_head(p, o, s) for (p, o), s in zip(heads, STRIDES)]
  dets = np.concatenate(cands, 0) if cands else np.zeros((0, 5), np.float32)
  kept = dets[nms(dets)]
  return kept[kept[:, 4] > SCORE_THRESHOLD]


def best_box(kept: np.ndarray) -> tuple[int, int, int, int] | None:
  """The official single box: the highest-scoring face, negatives clipped to 0, truncated."""
  if len(kept) == 0:
    return None
  x1, y1, x2, y2 = (int(v) for v in np.clip(kept[0, :4], 0, None))
  return x1, y1, x2, y2


def run_heads(model: S3FD, frames_bgr) -> list[list[tuple[np.ndarray, np.ndarray]]]:
  """The jit-compiled network on a batch of same-size frames; per image, per head (probs,
  offsets) as numpy.

  Shapes: frames_bgr (B, H, W, 3) uint8 -> B lists of 6 pairs ((h, w, 2), (h, w, 4)).
  """
  heads = jax.device_get(_forward(model, jnp.asarray(frames_bgr, jnp.uint8)))
  return [[(np.asarray(p[b]), np.asarray(o[b])) for p, o in heads]
          for b in range(len(frames_bgr))]


def detect(model: S3FD, frames_bgr) -> list[tuple[int, int, int, int] | None]:
  """Official S3FD detection on a batch of same-size frames: one box per frame or None.

  Shapes: frames_bgr (B, H, W, 3) uint8 BGR -> B entries (x1, y1, x2, y2) int or None.
  """
  return [best_box(decode_image(h)) for h in run_heads(model, frames_bgr)]
