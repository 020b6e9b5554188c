"""Face tracks over a video: one box and 68 landmarks per frame, smoothed, with gaps.

`track_faces` streams frames (memory holds at most `stride` frames), so hour-long inputs can be
tracked from `taem_jax.video.iter_frames`. A frame without a face is kept and marked invalid
(callers pass it through untouched); only a video with no face in any frame is an error.

Detection on a stride. With `stride=k > 1` the detector (30-200 ms) runs on every k-th frame
and on the last one. Between two keyframes that found the same face, the dlib rectangle is
interpolated linearly and the 68 points are re-fitted on each frame inside it (about 1 ms), so
landmarks (the mouth for LMD) stay measured, not interpolated. Every frame in between is
detected instead when either keyframe has no face, when the two faces do not overlap, or when a
frame's face region stops looking like the keyframes' (normalised correlation of 32x32 grey
patches below 0.5: a cut, an occlusion, a faceless frame), so gaps keep their true extent.
Default stride 1 (detect every frame) is exact; 5 is a good speed/accuracy trade for
talking-head video at 25 fps (measured: same validity, boxes and lip points within 4 px).

Box rules. A detector whose `box_rule` is "wav2lip" (S3FD, `taem_jax.face.s3fd_detect`) gets
official Wav2Lip inference's boxes instead: every frame detected in batches (`stride` is not
used), its single official box per frame (`detect_batch`), and `FaceTrack.crop_boxes` applies
the official pads and then the official forward smoothing (`wav2lip_crop_boxes`, the same code
`S3FDFaceDetector.wav2lip_boxes` runs). Official inference stops at a faceless frame; here such
a frame is kept invalid and each run of frames with a face is smoothed as its own video.
"""
import dataclasses
from collections.abc import Iterable

import cv2
import numpy as np

from taem_jax.errors import UserError
from taem_jax.face.detect import Face, FaceDetector, iou, select_face
from taem_jax.video import single_frames

MOUTH = slice(48, 68)  # iBUG 68-point indices of the outer + inner lip contour.
# Official Wav2Lip inference defaults: --pads 0 10 0 0 and a smoothing window of T = 5 frames.
WAV2LIP_PADS = (0, 10, 0, 0)
SMOOTH_T = 5
BOX_RULES = ("taem", "wav2lip")


@dataclasses.dataclass
class FaceTrack:
  """One face followed through a video.

  Attributes:
    boxes: (T, 4) float32 `(x1, y1, x2, y2)` face boxes, temporally smoothed (rule "taem");
      zeros where no face.
    landmarks: (T, 68, 2) float32 `(x, y)` points (not smoothed); zeros where no face.
    valid: (T,) bool, a face was found in the frame.
    detected: (T,) bool, the detector ran on the frame (False: tracked from keyframes).
    frame_size: (H, W) of the frames.
    rule: "taem" (boxes smoothed by `smooth_boxes`, padded by `pad_boxes`) or "wav2lip"
      (boxes are the detector's official integer boxes, unsmoothed; `crop_boxes` pads them and
      then smooths with the official rule over `smooth` frames, as official inference does).
    smooth: the official smoothing window for rule "wav2lip" (1: none); unused for "taem".
  """
  boxes: np.ndarray
  landmarks: np.ndarray
  valid: np.ndarray
  detected: np.ndarray
  frame_size: tuple[int, int]
  rule: str = "taem"
  smooth: int = SMOOTH_T

  def __len__(self) -> int:
    return int(self.valid.shape[0])

  @property
  def num_missing(self) -> int:
    """Number of frames without a face (passed through untouched downstream)."""
    return int((~self.valid).sum())

  @property
  def missing_frames(self) -> np.ndarray:
    return np.flatnonzero(~self.valid)

  def mouth_landmarks(self) -> np.ndarray:
    """Lip points 48-67 (for LMD). Shapes: -> (T, 20, 2) float32."""
    return self.landmarks[:, MOUTH]

  def face(self, t: int) -> Face | None:
    """The face of frame t as a `Face` (None if the frame has none).

    Its `det_box` is the track box (dlib's own rectangle is not kept in a track).
    """
    if not self.valid[t]:
      return None
    return Face(box=self.boxes[t], landmarks=self.landmarks[t], score=float("inf"),
                det_box=self.boxes[t])

  def crop_boxes(self, pads=WAV2LIP_PADS) -> np.ndarray:
    """Integer crop boxes with Wav2Lip's pads, clamped to the frame.

    Args:
      pads: pixels added `(top, bottom, left, right)`; Wav2Lip's inference default (0, 10, 0, 0).

    Shapes:
      -> (T, 4) int32 `(x1, y1, x2, y2)`, x2/y2 exclusive; all zero where `valid` is False.
    """
    if self.rule == "wav2lip":
      return wav2lip_crop_boxes(self.boxes, self.valid, self.frame_size, pads, self.smooth)
    return pad_boxes(self.boxes, self.valid, self.frame_size, pads)


def wav2lip_pad_box(box, frame_hw, pads=WAV2LIP_PADS) -> tuple[int, int, int, int]:
  """Official padding: pads (top, bottom, left, right) added, then clipped to the frame.

  Shapes: box (x1, y1, x2, y2) ints, frame_hw (H, W) -> (x1, y1, x2, y2) ints.
  """
  top, bottom, left, right = (int(p) for p in pads)
  h, w = int(frame_hw[0]), int(frame_hw[1])
  x1, y1, x2, y2 = (int(v) for v in box)
  return max(0, x1 - left), max(0, y1 - top), min(w, x2 + right), min(h, y2 + bottom)


def wav2lip_smooth_boxes(boxes, t: int = SMOOTH_T) -> np.ndarray:
  """Official temporal smoothing, frame by frame in order, on a copy.

  Box i becomes the mean of boxes i..i+t-1, truncated to int. The last t-1 frames use the
  last t boxes instead, which by then include already-smoothed ones. With fewer than t boxes
  the official slice `boxes[n - t:]` starts at 2n - t (a negative index), clamped to 0.

  Shapes: boxes (N, 4) ints -> (N, 4) int64 (a new array; the argument is not changed).
  """
  out = np.array(boxes, dtype=np.int64).reshape(-1, 4)
  n = len(out)
  for i in range(n):
    if i + t <= n:
      window = out[i:i + t]
    else:
      start = n - t if n >= t else max(0, 2 * n - t)
      window = out[start:]
    out[i] = np.mean(window, axis=0)  # float -> int64 assignment truncates
  return out


def wav2lip_crop_boxes(boxes, valid, frame_size, pads=WAV2LIP_PADS,
                       smooth: int = SMOOTH_T) -> np.ndarray:
  """Official crop boxes: `wav2lip_pad_box` per frame, then `wav2lip_smooth_boxes`.

  Each run of consecutive valid frames is smoothed on its own (official inference has no
  faceless frames: it stops there); `smooth` <= 1 turns smoothing off (`--nosmooth`).

  Shapes:
    boxes: (T, 4) integer-valued; valid: (T,) bool -> (T, 4) int32, zero where not valid.
  """
  valid = np.asarray(valid, bool)
  out = np.zeros((len(valid), 4), np.int32)
  edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
  for start, end in zip(edges[::2], edges[1::2]):
    run = np.array([wav2lip_pad_box(b, frame_size, pads) for b in boxes[start:end]], np.int64)
    out[start:end] = wav2lip_smooth_boxes(run, smooth) if smooth > 1 else run
  return out


def pad_boxes(boxes: np.ndarray, valid: np.ndarray, frame_size, pads=(0, 10, 0, 0)) -> np.ndarray:
  """Adds `(top, bottom, left, right)` pads, clamps to the frame, rounds to integers.

  Shapes:
    boxes: (T, 4) float; valid: (T,) bool -> (T, 4) int32 `(x1, y1, x2, y2)`.
  """
  top, bottom, left, right = pads
  h, w = frame_size
  b = np.asarray(boxes, np.float64)
  out = np.stack([b[:, 0] - left, b[:, 1] - top, b[:, 2] + right, b[:, 3] + bottom], -1)
  out = np.rint(np.clip(out, 0, [w, h, w, h])).astype(np.int32)
  # Keep at least a 2x2 box so resizing never sees an empty crop.
  out[:, 2] = np.maximum(out[:, 2], np.minimum(out[:, 0] + 2, w))
  out[:, 3] = np.maximum(out[:, 3], np.minimum(out[:, 1] + 2, h))
  out[:, 0] = np.minimum(out[:, 0], out[:, 2] - 2)
  out[:, 1] = np.minimum(out[:, 1], out[:, 3] - 2)
  out[~np.asarray(valid, bool)] = 0
  return out


def smooth_boxes(boxes: np.ndarray, valid: np.ndarray, window: int = 5) -> np.ndarray:
  """Moving average of boxes over `window` frames, never across a faceless gap.

  Wav2Lip averages each box with the next 4 (a forward-looking window, truncated to ints); this
  one is centred (no time shift), float, and shrinks at the ends of each run of valid frames.

  Shapes:
    boxes: (T, 4); valid: (T,) bool -> (T, 4) float32 (invalid rows unchanged).
  """
  boxes = np.asarray(boxes, np.float32)
  valid = np.asarray(valid, bool)
  out = boxes.copy()
  if window <= 1:
    return out
  before, after = (window - 1) // 2, window // 2
  # Runs of consecutive valid frames: [start, end).
  edges = np.flatnonzero(np.diff(np.concatenate([[0], valid.astype(np.int8), [0]])))
  for start, end in zip(edges[::2], edges[1::2]):
    run = boxes[start:end].astype(np.float64)
    csum = np.concatenate([np.zeros((1, 4)), np.cumsum(run, 0)])
    idx = np.arange(end - start)
    lo = np.maximum(idx - before, 0)
    hi = np.minimum(idx + after + 1, end - start)
    out[start:end] = ((csum[hi] - csum[lo]) / (hi - lo)[:, None]).astype(np.float32)
  return out


# Below this correlation with both keyframes' face patches a tracked frame is re-detected.
_MIN_PATCH_CORRELATION = 0.5


def _patch(frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
  """Zero-mean, unit-norm 32x32 grey patch of a box (None if flat: nothing to compare)."""
  h, w = frame.shape[:2]
  x1, y1, x2, y2 = np.rint(np.clip(box, 0, [w, h, w, h])).astype(int)
  if x2 - x1 < 2 or y2 - y1 < 2:
    return None
  grey = cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
  p = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
  p -= p.mean()
  norm = float(np.linalg.norm(p))
  return p / norm if norm > 1e-3 * p.size else None


def _looks_alike(frame, box, refs) -> bool:
  p = _patch(frame, box)
  return p is not None and any(
      r is not None and float(p @ r) >= _MIN_PATCH_CORRELATION for r in refs)


def track_faces(frames: Iterable[np.ndarray] | np.ndarray, detector: FaceDetector | None = None,
                *, stride: int = 1, face_index: int | None = None, smooth: int = 5,
                source: str = "the video") -> FaceTrack:
  """Detects and follows one face through a video.

  Args:
    frames: uint8 BGR frames: an array (T, H, W, 3), or an iterable of frames or of chunks
      (N, H, W, 3) such as `taem_jax.video.iter_frames(path)`.
    detector: a `FaceDetector` (one is built with defaults if None), or one with
      `box_rule = "wav2lip"` and `detect_batch` (S3FD: official boxes, see the module docstring).
    stride: run the detector every `stride` frames (see the module docstring).
    face_index: None follows the largest face; k follows the k-th face from the left.
    smooth: box moving-average window in frames (1 disables; the official window for
      "wav2lip" boxes).
    source: name used in error messages.

  Returns:
    A `FaceTrack` of the T frames.

  Raises:
    UserError: no frames, or no face in any frame.
  """
  if stride < 1:
    raise UserError(f"detection stride must be >= 1, got {stride}")
  det = detector if detector is not None else FaceDetector()
  if getattr(det, "box_rule", "taem") == "wav2lip":
    if face_index is not None:
      raise UserError("the official S3FD rules follow the highest-scoring face in each frame: "
                      "drop the face index or choose another detector")
    return _track_wav2lip(frames, det, smooth, source)
  faces: list[Face | None] = []
  detected: list[bool] = []
  pending: list[np.ndarray] = []
  key_face: Face | None = None
  key_patch = None
  last_box = None  # Box of the most recent frame with a face, for continuity.
  frame_size = None

  def detect_one(frame):
    nonlocal last_box
    face = select_face(det.detect(frame), face_index, last_box)
    if face is not None:
      last_box = face.box
    return face

  def resolve_pending(next_key: Face | None, next_frame: np.ndarray):
    nonlocal last_box
    n = len(pending)
    tracked = []
    if key_face is not None and next_key is not None and iou(key_face.det_box,
                                                             next_key.det_box) > 0.2:
      refs = (key_patch, _patch(next_frame, next_key.box))
      for i, frame in enumerate(pending):
        a = (i + 1) / (n + 1)
        box = (1 - a) * key_face.det_box + a * next_key.det_box
        if not _looks_alike(frame, (1 - a) * key_face.box + a * next_key.box, refs):
          tracked = []
          break
        tracked.append(det.face_in_box(frame, box))
    if tracked:
      faces.extend(tracked)
      detected.extend([False] * n)
      last_box = next_key.box
    else:
      for frame in pending:
        faces.append(detect_one(frame))
        detected.append(True)
      if next_key is not None:
        last_box = next_key.box
    pending.clear()

  t = -1
  for t, frame in enumerate(single_frames(frames)):
    if frame_size is None:
      frame_size = frame.shape[:2]
    elif frame.shape[:2] != frame_size:
      raise UserError(f"frame {t} of {source} is {frame.shape[:2]}, earlier frames {frame_size}")
    if t % stride == 0:
      # Detect the keyframe with continuity from the last keyframe, then fill the frames between.
      face = select_face(det.detect(frame), face_index,
                         key_face.box if key_face is not None else last_box)
      resolve_pending(face, frame)
      faces.append(face)
      detected.append(True)
      key_face = face
      key_patch = _patch(frame, face.box) if face is not None else None
      if face is not None:
        last_box = face.box
    else:
      pending.append(frame)
  if pending:  # The last frame is always a keyframe.
    last_frame = pending.pop()
    face = select_face(det.detect(last_frame), face_index,
                       key_face.box if key_face is not None else last_box)
    resolve_pending(face, last_frame)
    faces.append(face)
    detected.append(True)
  if t < 0:
    raise UserError(f"{source} has no frames")
  boxes, landmarks, valid = _stack(faces, source)
  return FaceTrack(boxes=smooth_boxes(boxes, valid, smooth), landmarks=landmarks, valid=valid,
                   detected=np.asarray(detected, bool), frame_size=tuple(frame_size))


def _stack(faces: list[Face | None], source: str):
  """Boxes (T, 4), landmarks (T, 68, 2) float32 and valid (T,) of per-frame faces."""
  count = len(faces)
  boxes = np.zeros((count, 4), np.float32)
  landmarks = np.zeros((count, 68, 2), np.float32)
  valid = np.zeros((count,), bool)
  for i, face in enumerate(faces):
    if face is not None:
      boxes[i], landmarks[i], valid[i] = face.box, face.landmarks, True
  if not valid.any():
    raise UserError(f"no face found in any of the {count} frame(s) of {source}: "
                    "use a video or image with a clearly visible frontal face")
  return boxes, landmarks, valid


def _track_wav2lip(frames, det, smooth: int, source: str) -> FaceTrack:
  """The track of a "wav2lip"-rule detector: its official box in every frame (see the module
  docstring), 68 points fitted inside it."""
  faces: list[Face | None] = []
  batch: list[np.ndarray] = []
  frame_size = None

  def flush():
    for frame, box in zip(batch, det.detect_batch(np.stack(batch))):
      if box is None:
        faces.append(None)
      else:
        fit = det.face_in_box(frame, np.asarray(box, np.float32))
        faces.append(Face(box=np.asarray(box, np.float32), landmarks=fit.landmarks,
                          score=fit.score, det_box=np.asarray(box, np.float32)))
    batch.clear()

  for t, frame in enumerate(single_frames(frames)):
    if frame_size is None:
      frame_size = frame.shape[:2]
    elif frame.shape[:2] != frame_size:
      raise UserError(f"frame {t} of {source} is {frame.shape[:2]}, earlier frames {frame_size}")
    batch.append(frame)
    if len(batch) >= max(1, int(det.batch_size)):
      flush()
  if batch:
    flush()
  if not faces:
    raise UserError(f"{source} has no frames")
  boxes, landmarks, valid = _stack(faces, source)
  return FaceTrack(boxes=boxes, landmarks=landmarks, valid=valid,
                   detected=np.ones(len(faces), bool), frame_size=tuple(frame_size),
                   rule="wav2lip", smooth=max(1, int(smooth)))
