"""LMD: mean distance between the mouth landmarks of generated and ground-truth faces.

Definition used here (the paper gives only "mean distance between mouth landmarks"):

  LMD = mean over frames t and lip points k in 48..67 of || p_gen[t, k] - p_gt[t, k] ||_2,

with both point sets expressed in the coordinates of a `size` x `size` face crop (default 96,
Wav2Lip's crop) of the **ground-truth** face box of frame t: x' = (x - x1) * size / (x2 - x1),
y' = (y - y1) * size / (y2 - y1). The landmarks themselves are fitted by dlib on the full-size
frames (more reliable than on a 96-pixel image), so the number means "pixels of a 96x96 face
crop", independent of the video resolution; the paper's values (0.87-1.8) are on that order.
No per-frame re-centring is applied: a mouth drawn in the wrong place counts as an error.
Pass `boxes=None` for raw frame pixels.

Frames in which either video has no detected face are left out (the count is reported).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from taem_jax import face
from taem_jax.errors import UserError
from taem_jax.rates import FACE_SIZE

MOUTH = slice(48, 68)
NUM_MOUTH_POINTS = 20
LMD_CROP_SIZE = FACE_SIZE


def _points(a, name: str) -> np.ndarray:
  a = np.asarray(a, np.float64)
  if a.ndim == 3 and a.shape[1:] == (68, 2):
    a = a[:, MOUTH]
  if a.ndim != 3 or a.shape[1:] != (NUM_MOUTH_POINTS, 2):
    raise UserError(f"{name} landmarks must be (T, 20, 2) mouth points or (T, 68, 2) full "
                    f"iBUG-68 sets, got shape {a.shape}")
  return a


def to_crop_coords(points, boxes, size: int = LMD_CROP_SIZE) -> np.ndarray:
  """Maps frame-pixel points into the size x size crop of each frame's box (per-axis scale).

  Shapes:
    points: (T, K, 2) `(x, y)`; boxes: (T, 4) `(x1, y1, x2, y2)` -> (T, K, 2) float64.
  """
  points = np.asarray(points, np.float64)
  boxes = np.asarray(boxes, np.float64)
  if boxes.shape != (points.shape[0], 4):
    raise UserError(f"need one (x1, y1, x2, y2) box per frame: {points.shape[0]} frames, "
                    f"boxes of shape {boxes.shape}")
  origin = boxes[:, None, 0:2]
  extent = boxes[:, None, 2:4] - origin
  with np.errstate(divide="ignore", invalid="ignore"):
    return (points - origin) * (float(size) / extent)


def lmd_frames(gen_landmarks, gt_landmarks, boxes=None, size: int = LMD_CROP_SIZE) -> np.ndarray:
  """Per-frame LMD (mean over the 20 lip points of the Euclidean distance).

  Args:
    gen_landmarks: mouth (or full 68-point) landmarks of the generated frames, frame pixels.
    gt_landmarks: the same for the ground-truth frames.
    boxes: ground-truth face boxes used for normalisation (see the module docstring); None
      measures in frame pixels.
    size: side of the normalised crop.

  Shapes:
    gen_landmarks, gt_landmarks: (T, 20, 2) or (T, 68, 2); boxes: (T, 4) -> (T,) float64.
  """
  gen, gt = _points(gen_landmarks, "generated"), _points(gt_landmarks, "ground-truth")
  if gen.shape != gt.shape:
    raise UserError(f"generated landmarks {gen.shape} and ground truth {gt.shape} cover "
                    "different numbers of frames: trim the videos to the same length")
  if boxes is not None:
    gen, gt = to_crop_coords(gen, boxes, size), to_crop_coords(gt, boxes, size)
  return np.linalg.norm(gen - gt, axis=-1).mean(axis=-1)


@dataclasses.dataclass(frozen=True)
class LmdResult:
  """LMD of one clip: the mean over the frames where both faces were found."""
  lmd: float
  per_frame: np.ndarray  # (T,) float64, nan where a face is missing
  num_frames: int  # frames that counted
  num_missing: int  # frames left out (no face in the generated or ground-truth frame)


def lmd(gen_landmarks, gt_landmarks, boxes=None, size: int = LMD_CROP_SIZE,
        gen_valid=None, gt_valid=None) -> LmdResult:
  """LMD of a clip, leaving out frames without a face.

  Args:
    gen_landmarks, gt_landmarks, boxes, size: as `lmd_frames`.
    gen_valid, gt_valid: (T,) bool, a face was found in that frame (default: all).

  Raises:
    UserError: shapes disagree, or no frame has a face in both videos.
  """
  per_frame = lmd_frames(gen_landmarks, gt_landmarks, boxes, size)
  t = per_frame.shape[0]
  valid = np.ones(t, bool)
  for v in (gen_valid, gt_valid):
    if v is not None:
      v = np.asarray(v, bool)
      if v.shape != (t,):
        raise UserError(f"validity mask of shape {v.shape} does not match {t} frames")
      valid &= v
  valid &= np.isfinite(per_frame)
  if not valid.any():
    raise UserError("no frame has a face in both the generated and the ground-truth video, "
                    "so LMD is undefined")
  per_frame = np.where(valid, per_frame, np.nan)
  return LmdResult(lmd=float(np.nanmean(per_frame)), per_frame=per_frame,
                   num_frames=int(valid.sum()), num_missing=int(t - valid.sum()))


@dataclasses.dataclass(frozen=True)
class MouthTrack:
  """Mouth landmarks of a video (from the face front end)."""
  mouth: np.ndarray  # (T, 20, 2) float32 frame-pixel `(x, y)` of points 48-67
  boxes: np.ndarray  # (T, 4) float32 face boxes `(x1, y1, x2, y2)`, zeros where no face
  valid: np.ndarray  # (T,) bool

  @classmethod
  def of(cls, track) -> "MouthTrack":
    """The mouth points of an existing `taem_jax.face.FaceTrack` (no detection)."""
    return cls(mouth=track.mouth_landmarks(), boxes=track.boxes, valid=track.valid)


def mouth_landmarks(frames, detector=None, stride: int = 1) -> MouthTrack:
  """Detects and tracks the face of a frame stack and returns its lip points.

  Uses `taem_jax.face.track_faces` (dlib HOG + 68 landmarks); stride 1 detects every frame, so
  every landmark set is measured on its own frame.

  Args:
    frames: uint8 BGR frames, or an iterable of frames/chunks (e.g. `video.iter_frames`).
    detector: a `taem_jax.face.FaceDetector` to reuse (one is built if None).
    stride: detection stride (see `track_faces`); landmarks are still fitted on every frame.

  Shapes:
    frames: (T, H, W, 3) uint8 -> MouthTrack with (T, 20, 2) points.
  """
  return MouthTrack.of(face.track_faces(frames, detector, stride=stride))


def lmd_of_tracks(gen: MouthTrack, gt: MouthTrack, size: int = LMD_CROP_SIZE) -> LmdResult:
  """LMD between two `MouthTrack`s, normalised by the ground-truth boxes."""
  return lmd(gen.mouth, gt.mouth, gt.boxes, size, gen_valid=gen.valid, gt_valid=gt.valid)
