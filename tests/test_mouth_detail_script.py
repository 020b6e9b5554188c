"""experiments/mouth_detail.py's measurement of an output against its input (no synthesis)."""
import importlib.util
import pathlib

import cv2
import numpy as np
import pytest
import skimage.data

from taem_jax.errors import UserError

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
  spec = importlib.util.spec_from_file_location("mouth_detail_cli",
                                                ROOT / "experiments" / "mouth_detail.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def test_photo_output_scored_against_the_photo(script):
  photo = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])  # BGR, one face
  same = script.measure_pair(photo[None], np.repeat(photo[None], 3, axis=0))
  assert same["frames"] == 3 and same["detail"] == pytest.approx(1.0)
  assert np.allclose(same["tint_bgr"], 0.0)
  # A blurred, reddened copy: detail falls, the tint shows in the red channel.
  bad = cv2.GaussianBlur(photo, (0, 0), 3.0).astype(np.int16)
  bad[..., 2] += 10
  bad = np.clip(bad, 0, 255).astype(np.uint8)
  r = script.measure_pair(photo[None], np.repeat(bad[None], 3, axis=0))
  assert r["detail"] < 0.3 and r["tint_bgr"][2] > 5 > abs(r["tint_bgr"][0])
  # An encoder's extra even-size column is cut off; other size differences are refused.
  padded = np.concatenate([bad, bad[:, -1:]], axis=1)[None]
  assert script.measure_pair(photo[None], padded)["detail"] == pytest.approx(r["detail"], rel=1e-4)
  with pytest.raises(UserError, match="differ in size"):
    script.measure_pair(photo[None], photo[None, :-8])


def test_strip_shows_input_above_output(script, tmp_path):
  photo = np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1])
  blurred = cv2.GaussianBlur(photo, (0, 0), 3.0)
  dst = tmp_path / "m_strip.png"
  script.measure_pair(photo[None], np.repeat(blurred[None], 4, axis=0), dst)
  img = cv2.imread(str(dst))
  assert img is not None and img.shape[0] % 2 == 0
  top, bottom = img[:img.shape[0] // 2], img[img.shape[0] // 2:]
  lap = lambda x: cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()
  assert lap(bottom) < 0.5 * lap(top)  # the blurred output is the lower row
