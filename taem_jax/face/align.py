"""PC-AVS's face inputs: the aligned 224x224 crops and the pose-frame schedule.

PC-AVS (scripts/align_68.py of the official code) aligns every frame of a folder with one
similarity transform: the mean over the frames of three points (left-eye centre = mean of
landmarks 36-41, right-eye centre = 42-47, inner-mouth centre = 60-67) is mapped by least
squares onto the template (87, 59), (137, 59), (112, 120) of a 224x224 crop. Each frame's
translation is then shifted so its own mouth point lands on (112, 120), the shift smoothed
over time (0.2 previous + 0.8 current). The warp is OpenCV bilinear with black borders.

Its test loader then reads each aligned crop as `loader_crop` does: rows 0..191, columns
16..207 (a 192x192 square that drops the chin margin), resized back to 224x224 (bilinear),
BGR -> RGB, scaled to [-1, 1].

The pose source of a generated frame is `pose_indices`: a driving video's aligned frames in a
forward-backward loop, or, with one frame (the identity photo), that frame held still.
Landmarks here are dlib's 68 points (`taem_jax.face.FaceDetector`), the same 68-point scheme as
the face_alignment (FAN) landmarks the official script uses.
"""
import cv2
import numpy as np

from taem_jax.errors import UserError
from taem_jax.face.embed import similarity_transform

CROP_SIZE = 224
# Template positions in the 224 crop of the left-eye, right-eye and inner-mouth centres.
TEMPLATE = np.array([[87.0, 59.0], [137.0, 59.0], [112.0, 120.0]])
BIAS_KEEP = 0.2       # weight of the previous frame's mouth shift in the smoothed shift
LOADER_CROP_LEN = 16  # the test loader's crop margin (--crop_len)


def eyes_mouth(landmarks: np.ndarray) -> np.ndarray:
  """The three alignment points of 68 landmarks.

  Shapes:
    landmarks: (68, 2) or (N, 68, 2) (x, y) -> (3, 2) or (N, 3, 2) float64.
  """
  pts = np.asarray(landmarks, np.float64)
  if pts.shape[-2:] != (68, 2):
    raise UserError(f"PC-AVS alignment needs 68 (x, y) landmarks per face, got {pts.shape}")
  return np.stack([pts[..., 36:42, :].mean(-2), pts[..., 42:48, :].mean(-2),
                   pts[..., 60:68, :].mean(-2)], axis=-2)


def align_matrices(landmarks: np.ndarray) -> np.ndarray:
  """The official per-frame 2x3 warps of a sequence of frames (one photo: N = 1).

  Shapes:
    landmarks: (N, 68, 2) or (68, 2) -> (N, 2, 3) float64 affine matrices (source pixels ->
      crop pixels, OpenCV's warpAffine convention).
  """
  pts = eyes_mouth(landmarks)
  if pts.ndim == 2:
    pts = pts[None]
  base = similarity_transform(pts.mean(0), TEMPLATE)
  out = np.repeat(base[None], len(pts), axis=0)
  prev = None
  for i, p in enumerate(pts):
    mouth = base[:, :2] @ p[2] + base[:, 2]
    bias = TEMPLATE[2] - mouth
    if prev is not None:
      bias = BIAS_KEEP * prev + (1.0 - BIAS_KEEP) * bias
    prev = bias
    out[i, :, 2] += bias
  return out


def align_faces(frames, landmarks: np.ndarray) -> np.ndarray:
  """Aligned 224x224 crops of frames (or one photo), as the official script writes them.

  Shapes:
    frames: (N, H, W, 3) uint8 BGR (or a list of such, or one (H, W, 3) image);
    landmarks: (N, 68, 2) (or (68, 2)) -> (N, 224, 224, 3) uint8 BGR.
  """
  if isinstance(frames, np.ndarray) and frames.ndim == 3:
    frames = frames[None]
  mats = align_matrices(landmarks)
  if len(mats) != len(frames):
    raise UserError(f"got {len(frames)} frames but {len(mats)} landmark sets; give one per frame")
  return np.stack([_warp(f, m) for f, m in zip(frames, mats)])


def _warp(frame: np.ndarray, m: np.ndarray) -> np.ndarray:
  """The aligned crop of one frame: cv2 bilinear, black border (as the official script)."""
  return cv2.warpAffine(np.ascontiguousarray(frame), m, (CROP_SIZE, CROP_SIZE),
                        flags=cv2.INTER_LINEAR, borderValue=0)


def loader_crop(aligned: np.ndarray) -> np.ndarray:
  """What PC-AVS's test loader feeds its networks from an aligned crop.

  Shapes:
    aligned: (224, 224, 3) or (N, 224, 224, 3) uint8 BGR -> same leading shape,
      (224, 224, 3) float32 RGB in [-1, 1].
  """
  a = np.asarray(aligned)
  if a.shape[-3:] != (CROP_SIZE, CROP_SIZE, 3):
    raise UserError(f"expected aligned {CROP_SIZE}x{CROP_SIZE} BGR crops, got {a.shape}")
  c = LOADER_CROP_LEN
  flat = a.reshape((-1,) + a.shape[-3:])
  out = [cv2.resize(np.ascontiguousarray(x[:CROP_SIZE - 2 * c, c:CROP_SIZE - c]),
                    (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)[..., ::-1]
         for x in flat]
  out = np.stack(out).astype(np.float32) / 255.0 * 2.0 - 1.0
  return out.reshape(a.shape)


def pose_indices(frame_indices, n_pose_frames: int) -> np.ndarray:
  """Which pose frame drives each video frame: a forward-backward loop over the pose frames.

  Index i maps to i mod n on even passes and n - 1 - (i mod n) on odd passes (0, 1, .., n-1,
  n-1, .., 0, 0, 1, ..); with n = 1 (the identity photo as pose source) every frame gets 0.
  Official inference passes the video frame index (which starts at 2, see
  `taem_jax.audio.pcavs_num_frames`).

  Shapes:
    frame_indices: (T,) int -> (T,) int64.
  """
  if n_pose_frames < 1:
    raise UserError(f"need at least one pose frame, got {n_pose_frames}")
  i = np.asarray(frame_indices, np.int64)
  r = i % n_pose_frames
  return np.where((i // n_pose_frames) % 2 == 0, r, n_pose_frames - 1 - r)


def _invert(m: np.ndarray) -> np.ndarray:
  a = np.vstack([m, [0.0, 0.0, 1.0]])
  return np.linalg.inv(a)[:2]


class AlignPlacement:
  """PC-AVS's face placement: the official 224 alignment warp per frame, and its inverse for
  pasting the generated face back.

  The generator draws the loader's crop (rows 0..191, columns 16..207 of the aligned crop,
  resized to 224), so a generated face is scaled back to that region and warped into the frame
  with the inverse alignment, blended through a mask whose edges fall off over `feather` of
  the crop side (0: a hard edge).

  Args:
    landmarks: (T, 68, 2) per source frame; valid: (T,) bool (frames with a face). The warps
      are `align_matrices` over the valid frames (one photo: T = 1).
    feather: fraction of the crop side blended at its edges.

  Shapes:
    crop: frames (N, H, W, 3) uint8 BGR, src (N,) -> (N, 224, 224, 3) uint8 (`align_faces`).
    paste: frames (N, H, W, 3), faces (N, s, s, 3) uint8 or float [0, 1], src (N,)
      -> (N, H, W, 3) uint8.
  """

  def __init__(self, landmarks: np.ndarray, valid: np.ndarray, feather: float = 0.1):
    valid = np.asarray(valid, bool)
    self.mats = np.zeros((len(valid), 2, 3))
    if valid.any():
      self.mats[valid] = align_matrices(np.asarray(landmarks)[valid])
    self.feather = float(feather)

  def crop(self, frames: np.ndarray, src: np.ndarray) -> np.ndarray:
    return np.stack([_warp(f, self.mats[j]) for f, j in zip(frames, src)])

  def paste(self, frames: np.ndarray, faces: np.ndarray, src: np.ndarray) -> np.ndarray:
    out = np.array(frames, np.uint8, copy=True)
    h, w = out.shape[1:3]
    c = LOADER_CROP_LEN
    for i, (face, j) in enumerate(zip(faces, src)):
      face = np.asarray(face)
      if face.dtype != np.uint8:
        face = (np.clip(face, 0.0, 1.0) * 255.0).astype(np.uint8)
      s = face.shape[0]
      side = CROP_SIZE - 2 * c
      # generated pixel -> aligned-crop pixel (the loader's crop region) -> frame pixel
      to_crop = np.array([[side / s, 0.0, c], [0.0, side / s, 0.0], [0.0, 0.0, 1.0]])
      m = (np.vstack([_invert(self.mats[j]), [0.0, 0.0, 1.0]]) @ to_crop)[:2]
      warped = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
      weight = cv2.warpAffine(_edge_mask(s, self.feather), m, (w, h), flags=cv2.INTER_LINEAR,
                              borderValue=0)[..., None]
      out[i] = np.clip(weight * warped + (1.0 - weight) * out[i], 0, 255).astype(np.uint8)
    return out


def _edge_mask(size: int, feather: float) -> np.ndarray:
  """(size, size) float32: 1 inside, falling linearly to 0 over feather * size at the edges."""
  ramp = max(1.0, feather * size)
  d = np.minimum(np.arange(size), np.arange(size)[::-1]) + 0.5
  r = np.clip(d / ramp, 0.0, 1.0).astype(np.float32)
  return np.minimum.outer(r, r)
