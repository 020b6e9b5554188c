"""taem_jax.face.detectors: every kind is built one way, refusals, and the cache-key settings."""
import numpy as np
import pytest
import skimage.data

from taem_jax.errors import UserError
from taem_jax.face import detectors, s3fd_detect
from taem_jax.models import registry
from taem_jax.synthesis import Synthesizer


@pytest.mark.parametrize("kind", ["hog", "cnn", "hog+cnn"])
def test_dlib_kinds_and_their_settings(kind):
  det = detectors.build(kind)
  assert det.kind == kind
  # Read without building a detector, the settings are those of the built one.
  assert detectors.settings(det) == detectors.default_settings(kind)


def test_kinds_have_distinct_settings():
  keys = {str(sorted(detectors.default_settings(k).items())) for k in detectors.KINDS}
  assert len(keys) == len(detectors.KINDS)


def test_s3fd_needs_its_converted_checkpoint(tmp_path, monkeypatch):
  monkeypatch.delenv("TAEM_JAX_S3FD", raising=False)
  with pytest.raises(UserError, match="no converted S3FD checkpoint"):
    detectors.build("s3fd", s3fd_dir=tmp_path / "missing")
  pth = tmp_path / "s3fd-619a316812.pth"
  pth.write_bytes(b"x")
  with pytest.raises(UserError, match="convert it once"):
    detectors.build("s3fd", s3fd_dir=pth)
  with pytest.raises(UserError, match="unknown face detector 'retina'"):
    detectors.build("retina")


def test_s3fd_detector_fits_landmarks_in_its_boxes_for_tracks():
  # Face tracks call face_in_box between detections; the S3FD detector has it too.
  img = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
  det = s3fd_detect.S3FDFaceDetector(model=registry.create("s3fd", seed=0))
  f = det.face_in_box(img, [170, 70, 265, 170])
  assert f.landmarks.shape == (68, 2)
  assert np.all((f.landmarks[:, 0] > 120) & (f.landmarks[:, 0] < 320))


def test_synthesizer_refuses_an_unknown_kind_before_loading_anything():
  with pytest.raises(UserError, match="unknown face detector 'retina'"):
    Synthesizer(detector="retina")
