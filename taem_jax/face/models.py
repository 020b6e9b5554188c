"""Where dlib's model files come from: the installed `face-recognition-models` package.

The package's `__init__` imports `pkg_resources`, which a Python 3.12 venv without setuptools
lacks, so the files are located through `importlib.util.find_spec` without importing it.
"""
import functools
import hashlib
import importlib.util
import pathlib

from taem_jax.errors import UserError

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
DESCRIPTOR = "dlib_face_recognition_resnet_model_v1.dat"
# dlib's CNN (max-margin object detection) face detector; ships in the same package.
CNN_DETECTOR = "mmod_human_face_detector.dat"

_PACKAGE = "face_recognition_models"


def package_path(package: str, *parts: str) -> pathlib.Path | None:
  """`parts` inside an installed package's folder (found without importing it), or None when
  the package is not installed. The path itself may not exist."""
  try:
    spec = importlib.util.find_spec(package)
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.origin:
    return None
  return pathlib.Path(spec.origin).parent.joinpath(*parts)


def models_dir() -> pathlib.Path | None:
  """The `models/` folder of the installed face-recognition-models package, or None."""
  return package_path(_PACKAGE, "models")


def model_file(name: str, directory: str | pathlib.Path | None = None) -> pathlib.Path:
  """Path of dlib model file `name`, from `directory` if given, else from the package.

  Raises:
    UserError: the file is not there, with the install command that provides it.
  """
  folder = pathlib.Path(directory).expanduser() if directory else models_dir()
  path = folder / name if folder is not None else None
  if path is None or not path.is_file():
    where = f"in {folder}" if folder is not None else "(package face-recognition-models missing)"
    raise UserError(f"dlib model file {name} not found {where}: "
                    "run `pip install face-recognition-models` or pass the folder holding it")
  return path


@functools.cache
def _sha256_cached(path: str, size: int, mtime: float) -> str:
  del size, mtime  # Only part of the cache key, so an edited file is hashed again.
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def sha256_of(path: str | pathlib.Path) -> str:
  """Hex sha256 of a file (cached per path, size and mtime)."""
  st = pathlib.Path(path).stat()
  return _sha256_cached(str(path), st.st_size, st.st_mtime)
