"""Face crops for the models and paste-back of generated faces.

Boxes here are integer `(x1, y1, x2, y2)`, x2/y2 exclusive, already padded and clamped (see
`FaceTrack.crop_boxes`). Frames and crops are uint8 BGR, like Wav2Lip's.

Paste-back regions. "box" writes the whole generated box, as Wav2Lip's inference does; the
generator's 96-px face then blurs the upper face and shows the box edges. "lower" (what
synthesis uses by default) takes only the lower face from the generator, the part Wav2Lip
masks in its input and re-draws (mouth, jaw, chin), through a soft elliptic mask that reaches
zero inside the box, so every other pixel stays the input's; the generated colours are first
shifted by the difference measured on the upper face, where the generator only reconstructs
its input, then their saturation (distance of each channel from the pixel's grey) is scaled
down to at most the input box's, so a grey (black-and-white) input stays exactly grey and a
generator's tint never exceeds the colour the input has.
"""
import functools

import cv2
import numpy as np


def _box(box) -> tuple[int, int, int, int]:
  x1, y1, x2, y2 = (int(v) for v in box)
  if x2 <= x1 or y2 <= y1:
    raise ValueError(f"empty crop box {(x1, y1, x2, y2)}")
  return x1, y1, x2, y2


def crop_face(frame: np.ndarray, box, size: int = 96) -> np.ndarray:
  """Wav2Lip's crop: the box region resized (bilinear, aspect not kept) to size x size.

  Shapes:
    frame: (H, W, 3) uint8; box: (4,) int -> (size, size, 3) uint8.
  """
  x1, y1, x2, y2 = _box(box)
  return cv2.resize(frame[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_LINEAR)


def has_box(box) -> bool:
  """False for the all-zero box that marks a frame without a face."""
  return bool(np.any(np.asarray(box) != 0))


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int = 96) -> np.ndarray:
  """`crop_face` over a batch; frames without a face (zero box) give an all-zero crop.

  Shapes:
    frames: (N, H, W, 3) uint8; boxes: (N, 4) int -> (N, size, size, 3) uint8.
  """
  out = np.zeros((len(frames), size, size, 3), np.uint8)
  for i, (frame, box) in enumerate(zip(frames, boxes)):
    if has_box(box):
      out[i] = crop_face(frame, box, size)
  return out


# Lower-face mask, in fractions of the padded box (u across, v down; the box reaches from above
# the brows to just below the chin): an ellipse around mouth, jaw and chin, zero from v = 0.98.
LOWER_FACE_CENTRE = (0.5, 0.72)
LOWER_FACE_RADII = (0.36, 0.26)
LOWER_FACE_SOFTNESS = 0.4  # fraction of the radius over which the mask falls from 1 to 0
# Where the colour shift is measured: eyes and nose, which the generator copies from its input.
_COLOUR_BAND = (0.2, 0.8, 0.12, 0.45)  # u0, u1, v0, v1
MAX_COLOUR_SHIFT = 40.0  # a larger measured shift is a failure to reconstruct, not a tint
PASTE_REGIONS = ("lower", "box")


def paste_faces(frames: np.ndarray, faces: np.ndarray, boxes: np.ndarray,
                feather: float = 0.0, region: str = "box") -> np.ndarray:
  """`paste_face` over a batch; frames without a face (zero box) are returned untouched.

  Shapes:
    frames: (N, H, W, 3) uint8; faces: (N, h, w, 3); boxes: (N, 4) int -> (N, H, W, 3) uint8.
  """
  out = np.array(frames, np.uint8, copy=True)
  for i, (face, box) in enumerate(zip(faces, boxes)):
    if has_box(box):
      paste_face(out[i], face, box, feather, inplace=True, region=region)
  return out


@functools.lru_cache(maxsize=64)
def _feather_mask(h: int, w: int, ramp: int) -> np.ndarray:
  """(h, w, 1) float32 weights: 1 inside, falling linearly to ~0 over `ramp` px at the edges."""
  def ramp_1d(n):
    d = np.minimum(np.arange(n), np.arange(n)[::-1]) + 0.5  # distance to the nearest edge
    return np.clip(d / ramp, 0.0, 1.0).astype(np.float32)
  return np.minimum.outer(ramp_1d(h), ramp_1d(w))[..., None]


@functools.lru_cache(maxsize=64)
def lower_face_mask(h: int, w: int) -> np.ndarray:
  """Weights of the generated pixels for region="lower": 1 around the mouth, 0 outside.

  A smoothstep of the elliptic radius (see LOWER_FACE_*), so the blend has no kink at either
  end of its ramp. Shapes: -> (h, w, 1) float32.
  """
  v = (np.arange(h, dtype=np.float32) + 0.5) / h
  u = (np.arange(w, dtype=np.float32) + 0.5) / w
  (cu, cv), (ru, rv) = LOWER_FACE_CENTRE, LOWER_FACE_RADII
  r = np.sqrt(((u[None, :] - cu) / ru) ** 2 + ((v[:, None] - cv) / rv) ** 2)
  m = np.clip((1.0 - r) / LOWER_FACE_SOFTNESS, 0.0, 1.0)
  return (m * m * (3.0 - 2.0 * m))[..., None].astype(np.float32)


def colour_shift(patch: np.ndarray, region: np.ndarray) -> np.ndarray:
  """Per-channel offset that moves the generated `patch` to the input `region`'s colours.

  Measured on the upper face (eyes, nose), where the generator reconstructs its input; clipped
  to +-MAX_COLOUR_SHIFT. Shapes: patch, region (h, w, 3) -> (3,) float32.
  """
  h, w = region.shape[:2]
  u0, u1, v0, v1 = _COLOUR_BAND
  ys = slice(int(v0 * h), max(int(v0 * h) + 1, int(v1 * h)))
  xs = slice(int(u0 * w), max(int(u0 * w) + 1, int(u1 * w)))
  diff = (region[ys, xs].astype(np.float32).reshape(-1, 3).mean(0) -
          patch[ys, xs].astype(np.float32).reshape(-1, 3).mean(0))
  return np.clip(diff, -MAX_COLOUR_SHIFT, MAX_COLOUR_SHIFT).astype(np.float32)


# BT.601 luma weights in BGR order (what cv2's BGR2GRAY uses): the grey of a pixel.
_LUMA_BGR = np.array([0.114, 0.587, 0.299], np.float32)


def saturation(pixels: np.ndarray) -> float:
  """Mean distance of the channels from the pixel's grey (0 for a black-and-white image).

  Shapes: pixels (..., 3) BGR, any dtype -> float.
  """
  p = np.asarray(pixels, np.float32).reshape(-1, 3)
  return float(np.abs(p - (p @ _LUMA_BGR)[:, None]).mean()) if p.size else 0.0


def limit_saturation(patch: np.ndarray, region: np.ndarray) -> np.ndarray:
  """The generated `patch` with its saturation scaled down to at most the input `region`'s.

  Each pixel keeps its grey level; its chroma (channels minus that grey) is multiplied by
  min(1, saturation(region) / saturation(patch)), so a grey region gives a grey patch (all three
  channels equal) and a colour region, whose generated face is rarely more saturated, is left
  as it is. Shapes: patch (h, w, 3) float32, region (h', w', 3) -> (h, w, 3) float32.
  """
  sat = saturation(patch)
  gain = min(1.0, saturation(region) / sat) if sat > 1e-6 else 1.0
  if gain >= 1.0:
    return patch
  grey = (patch @ _LUMA_BGR)[..., None]
  return grey + np.float32(gain) * (patch - grey)


def to_uint8(face: np.ndarray) -> np.ndarray:
  """A generated face as uint8: uint8 kept; floats in [0, 1] scaled by 255 and truncated.

  Truncation (not rounding) matches Wav2Lip's `(pred * 255).astype(np.uint8)`.
  """
  face = np.asarray(face)
  if face.dtype == np.uint8:
    return face
  return (np.clip(face, 0.0, 1.0) * 255.0).astype(np.uint8)


def paste_face(frame: np.ndarray, face: np.ndarray, box, feather: float = 0.0,
               inplace: bool = False, region: str = "box") -> np.ndarray:
  """Writes a generated face back into its box (bilinear resize to the box size).

  Args:
    frame: the original frame.
    face: the generated crop, uint8 or float in [0, 1] (see `to_uint8`).
    box: the integer box the crop was taken from.
    feather: 0 pastes the whole box hard, as Wav2Lip does. > 0 blends over a border whose width
      is this fraction of the smaller box side (0.1 hides the seam on most faces). Only for
      region="box".
    inplace: write into `frame` instead of a copy.
    region: "box" (the whole box) or "lower" (the lower face, colour-matched; see the module
      docstring). With "lower", pixels where `lower_face_mask` is 0 keep their exact values.

  Shapes:
    frame: (H, W, 3) uint8; face: (h, w, 3); box: (4,) int -> (H, W, 3) uint8.
  """
  if region not in PASTE_REGIONS:
    raise ValueError(f"region must be one of {PASTE_REGIONS}, got {region!r}")
  x1, y1, x2, y2 = _box(box)
  out = frame if inplace else frame.copy()
  patch = cv2.resize(to_uint8(face), (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)
  ramp = int(round(feather * min(x2 - x1, y2 - y1)))
  if region == "lower":
    mask = lower_face_mask(y2 - y1, x2 - x1)
    rows, cols = np.flatnonzero(mask.any((1, 2))), np.flatnonzero(mask.any((0, 2)))
    if rows.size == 0:  # a box too small to hold any mask pixel
      return out
    ys = slice(y1 + rows[0], y1 + rows[-1] + 1)
    xs = slice(x1 + cols[0], x1 + cols[-1] + 1)
    orig = out[y1:y2, x1:x2]
    shifted = limit_saturation(patch.astype(np.float32) + colour_shift(patch, orig), orig)
    m = mask[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    base = out[ys, xs].astype(np.float32)
    sub = shifted[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    blended = np.clip(np.rint(base + m * (sub - base)), 0, 255).astype(np.uint8)
    # Where the mask is 0 the input's bytes are kept as they are (not re-rounded).
    out[ys, xs] = np.where(m > 0, blended, out[ys, xs])
  elif ramp <= 0:
    out[y1:y2, x1:x2] = patch
  else:
    mask = _feather_mask(y2 - y1, x2 - x1, ramp)
    region = out[y1:y2, x1:x2].astype(np.float32)
    blended = region + mask * (patch.astype(np.float32) - region)
    out[y1:y2, x1:x2] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
  return out


def syncnet_crop(frame: np.ndarray, box, crop_scale: float = 0.4, size: int = 224,
                 pad_value: int = 110) -> np.ndarray:
  """syncnet_python's face-track crop (run_pipeline.py) for SyncNet v2 / LSE-D, LSE-C.

  A square of side 2s(1 + crop_scale), s = half the larger box side, centred horizontally on
  the box and reaching s above / s(1 + 2 crop_scale) below its centre (so the mouth is well
  inside); pixels outside the frame are `pad_value`; resized to size x size, colour BGR.

  Shapes:
    frame: (H, W, 3) uint8; box: (4,) float or int -> (size, size, 3) uint8.
  """
  x1, y1, x2, y2 = (float(v) for v in box)
  s = max(x2 - x1, y2 - y1) / 2.0
  cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
  top, bottom = int(cy - s), int(cy + s * (1 + 2 * crop_scale))
  left, right = int(cx - s * (1 + crop_scale)), int(cx + s * (1 + crop_scale))
  h, w = frame.shape[:2]
  canvas = np.full((bottom - top, right - left, 3), pad_value, np.uint8)
  sy1, sy2, sx1, sx2 = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
  if sy2 > sy1 and sx2 > sx1:
    canvas[sy1 - top:sy2 - top, sx1 - left:sx2 - left] = frame[sy1:sy2, sx1:sx2]
  return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_LINEAR)


class BoxPlacement:
  """Where a backbone's face crops come from and go back to: Wav2Lip's padded box per frame.

  Args:
    boxes: (T, 4) int crop boxes per source frame (`FaceTrack.crop_boxes`); zeros: no face.
    size: crop side. feather, region: as `paste_face`.

  Shapes:
    crop: frames (N, H, W, 3) uint8, src (N,) source-frame indices -> (N, size, size, 3).
    paste: frames (N, H, W, 3), faces (N, h, w, 3) uint8 or [0, 1], src (N,) -> (N, H, W, 3).
  """

  def __init__(self, boxes: np.ndarray, size: int = 96, feather: float = 0.0,
               region: str = "box"):
    self.boxes, self.size, self.feather, self.region = boxes, int(size), feather, region

  def crop(self, frames: np.ndarray, src: np.ndarray) -> np.ndarray:
    return crop_faces(frames, self.boxes[src], self.size)

  def paste(self, frames: np.ndarray, faces: np.ndarray, src: np.ndarray) -> np.ndarray:
    return paste_faces(frames, faces, self.boxes[src], self.feather, self.region)
