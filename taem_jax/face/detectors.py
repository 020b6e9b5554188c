"""One way to build a face detector of any kind, S3FD included, and the settings that key it.

Kinds: "hog+cnn" (default), "hog", "cnn" (dlib, `taem_jax.face.detect`) and "s3fd" (official
Wav2Lip's detector, `taem_jax.face.s3fd_detect`; needs its converted checkpoint). This module
sits in the layer above `taem_jax.models` because S3FD runs a network.
"""
from __future__ import annotations

import inspect
import pathlib

from taem_jax import paths
from taem_jax.errors import UserError
from taem_jax.face.detect import DETECTORS, FaceDetector
from taem_jax.face.s3fd_detect import S3FDFaceDetector

KINDS = DETECTORS + ("s3fd",)
DEFAULT_KIND = DETECTORS[0]
# FaceDetector arguments that change its boxes (what a face-track cache must be keyed by).
DLIB_SETTINGS = ("kind", "box_mode", "max_side", "upsample_below", "threshold", "cnn_max_side")
# Their defaults, read once from the constructor's signature (no dlib model is loaded).
_DLIB_DEFAULTS = {k: inspect.signature(FaceDetector).parameters[k].default for k in DLIB_SETTINGS}


def check_kind(kind: str) -> str:
  """`kind` if it is one of `KINDS`, else a UserError naming them."""
  if kind not in KINDS:
    raise UserError(f"unknown face detector {kind!r}: choose from {', '.join(KINDS)}")
  return kind


def build(kind: str = DEFAULT_KIND, *, s3fd_dir=None):
  """A detector with `detect(frame) -> list[Face]`.

  Args:
    kind: one of `KINDS`.
    s3fd_dir: for "s3fd": the folder `python -m porting.convert` wrote from
      s3fd-619a316812.pth; default: `$TAEM_JAX_S3FD`.
  """
  if check_kind(kind) != "s3fd":
    return FaceDetector(kind=kind)
  path = s3fd_path(s3fd_dir)
  if path.is_file():
    raise UserError(f"{path} is the PyTorch S3FD file: convert it once with `python -m "
                    f"porting.convert --src {path} --dst <dir>` and pass <dir> (--s3fd_dir)")
  if not path.is_dir():
    raise UserError(f"no converted S3FD checkpoint at {path}: convert s3fd-619a316812.pth with "
                    "`python -m porting.convert --src s3fd-619a316812.pth --dst <dir>` and pass "
                    "<dir> (--s3fd_dir or $TAEM_JAX_S3FD)")
  return S3FDFaceDetector(checkpoint=str(path))


def s3fd_path(s3fd_dir=None) -> pathlib.Path:
  """Where the converted S3FD checkpoint is looked for (it may not exist)."""
  return pathlib.Path(s3fd_dir).expanduser() if s3fd_dir else paths.optional_file("s3fd")


def default_settings(kind: str = DEFAULT_KIND, s3fd_dir=None) -> dict:
  """The box-changing settings of `build(kind, s3fd_dir=)`'s detector, without building it."""
  if kind == "s3fd":
    return {"kind": "s3fd", "checkpoint": str(s3fd_path(s3fd_dir))}
  return {**_DLIB_DEFAULTS, "kind": kind}


def settings(detector) -> dict:
  """The box-changing settings of a built detector (S3FD: its weights' identity)."""
  if isinstance(detector, S3FDFaceDetector):
    return {"kind": "s3fd", "checkpoint": detector.checkpoint}
  return {k: getattr(detector, k) for k in DLIB_SETTINGS}
