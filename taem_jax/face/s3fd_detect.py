"""Face detection with S3FD, the detector official Wav2Lip uses, and its crop-box rules.

`S3FDFaceDetector.detect(frame)` returns `Face`s like `FaceDetector.detect` (boxes are S3FD's,
landmarks are fitted by dlib's 68-point predictor inside the S3FD box with
`FaceDetector.face_in_box`; that predictor was trained on HOG boxes, so the fit is an
approximation). `wav2lip_boxes(frames)` reproduces official Wav2Lip inference for a whole
video: the highest-scoring box per frame (see `taem_jax.models.s3fd`), pads (top, bottom,
left, right) clipped to the frame, then temporal smoothing (`wav2lip_smooth_boxes`); a frame
without a face is an error, as there.

The weights come from the official `s3fd-619a316812.pth`, converted once with
`python -m porting.convert --src s3fd-619a316812.pth --dst <dir>`; pass `<dir>`.

The official pad and smoothing rules (`wav2lip_pad_box`, `wav2lip_smooth_boxes`,
`wav2lip_crop_boxes`, quirks included) live in `taem_jax.face.track`, beside the project's own
`pad_boxes` / `smooth_boxes`: this detector's `box_rule` is "wav2lip", so face tracks built
with it (`track_faces`, what synthesis uses) crop with the same functions as `wav2lip_boxes`.

This module sits above `taem_jax.models` in the import layers (it runs the network), so
`taem_jax.face.detect` cannot import it.
"""
from __future__ import annotations

import numpy as np

from taem_jax.errors import UserError
from taem_jax.face.detect import Face, FaceDetector
from taem_jax.face.track import SMOOTH_T, WAV2LIP_PADS, wav2lip_crop_boxes
from taem_jax.models import s3fd as s3fd_lib

BATCH_SIZE = 16  # official --face_det_batch_size


def _check_frames(frames) -> np.ndarray:
  try:
    arr = np.asarray(frames)
  except ValueError:  # frames of different sizes
    arr = np.zeros((0,), np.uint8)
  if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8 or len(arr) == 0:
    raise UserError(f"expected a non-empty batch of same-size uint8 (H, W, 3) BGR frames, got "
                    f"{arr.dtype} {arr.shape}")
  return arr


class S3FDFaceDetector:
  """S3FD face detection (official Wav2Lip rules) with dlib landmarks on top.

  Args:
    checkpoint: directory converted from `s3fd-619a316812.pth` (see the module docstring).
    model: an `S3FD` module to use instead of `checkpoint` (e.g. random weights in tests).
    landmarks: a `FaceDetector` whose `face_in_box` fits the 68 points; default: a new one.
    batch_size: frames per network call in `wav2lip_boxes` and face tracks (official 16).
  """

  box_rule = "wav2lip"  # `track_faces` crops with the official rules (taem_jax.face.track)

  def __init__(self, checkpoint=None, *, model: s3fd_lib.S3FD | None = None,
               landmarks: FaceDetector | None = None, batch_size: int = BATCH_SIZE):
    if (checkpoint is None) == (model is None):
      raise UserError("S3FDFaceDetector needs exactly one of checkpoint= (a directory "
                      "converted with `python -m porting.convert --src s3fd-619a316812.pth`) "
                      "or model=")
    if model is None:
      from taem_jax.models.pretrained import load_pretrained  # noqa: PLC0415 (orbax: slow)
      model = load_pretrained(checkpoint, family="s3fd")
    self.model = model
    self.checkpoint = None if checkpoint is None else str(checkpoint)  # part of track-cache keys
    self._landmarks = landmarks
    self.batch_size = max(1, int(batch_size))

  def boxes_with_scores(self, frames) -> list[np.ndarray]:
    """Every kept face per frame (NMS 0.3, score > 0.5), highest score first.

    Shapes: frames (B, H, W, 3) uint8 BGR -> B arrays (K, 5) float32 (x1, y1, x2, y2, score).
    """
    arr = _check_frames(frames)
    out = []
    for i in range(0, len(arr), self.batch_size):
      out += [s3fd_lib.decode_image(h)
              for h in s3fd_lib.run_heads(self.model, arr[i:i + self.batch_size])]
    return out

  def detect(self, frame: np.ndarray) -> list[Face]:
    """All faces in a frame, sorted left to right by box centre (like `FaceDetector.detect`).

    Shapes: frame (H, W, 3) uint8 BGR. Face.box = Face.det_box = the S3FD box (clipped to
    the frame), Face.score = S3FD's face probability.
    """
    frame = _check_frames(np.asarray(frame)[None])[0]
    h, w = frame.shape[:2]
    faces = []
    for det in self.boxes_with_scores(frame[None])[0]:
      box = np.clip(det[:4], 0, [w, h, w, h]).astype(np.float32)
      fit = self.face_in_box(frame, box)
      faces.append(Face(box=box, landmarks=fit.landmarks, score=float(det[4]), det_box=box))
    faces.sort(key=lambda f: f.box[0] + f.box[2])
    return faces

  def face_in_box(self, frame: np.ndarray, box) -> Face:
    """dlib's 68 landmarks in a known box (`FaceDetector.face_in_box`; used by face tracks)."""
    if self._landmarks is None:
      self._landmarks = FaceDetector(kind="hog")  # only its landmark predictor is used
    return self._landmarks.face_in_box(frame, box)

  def detect_batch(self, frames) -> list[tuple[int, int, int, int] | None]:
    """Official single box per frame (highest score, clipped at 0, truncated) or None.

    Shapes: frames (B, H, W, 3) uint8 BGR -> B entries (x1, y1, x2, y2) or None.
    """
    return [s3fd_lib.best_box(k) for k in self.boxes_with_scores(frames)]

  def wav2lip_boxes(self, frames, pads=WAV2LIP_PADS, smooth: bool = True) -> np.ndarray:
    """Crop boxes of a whole video as official Wav2Lip inference computes them.

    Args:
      frames: (N, H, W, 3) uint8 BGR frames of one video.
      pads: (top, bottom, left, right) pixels, official default (0, 10, 0, 0).
      smooth: the official 5-frame smoothing (`--nosmooth` turns it off there).
    Returns:
      (N, 4) int64 (x1, y1, x2, y2); the crop is frame[y1:y2, x1:x2].
    Raises:
      UserError: a frame without a face (official inference stops there too).
    """
    arr = _check_frames(frames)
    found = self.detect_batch(arr)
    missing = [i for i, b in enumerate(found) if b is None]
    if missing:
      raise UserError(f"S3FD found no face in frame {missing[0]} ({len(missing)} of "
                      f"{len(arr)} frames without a face); official Wav2Lip needs a face in "
                      "every frame: trim the video or use another detector")
    boxes = wav2lip_crop_boxes(np.array(found, np.int64), np.ones(len(found), bool),
                               arr.shape[1:3], pads, SMOOTH_T if smooth else 1)
    return boxes.astype(np.int64)
