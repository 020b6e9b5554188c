"""PSNR / SSIM against scikit-image on real images with noise; edge cases and refusals."""
import numpy as np
import pytest
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from taem_jax import face, metrics
from taem_jax.errors import UserError


def _noisy(frames, sigma, seed=0):
  rng = np.random.default_rng(seed)
  return np.clip(frames + rng.normal(0, sigma, frames.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def colour_pair():
  a = skimage.data.astronaut()
  # 3 different 96x96 "face crops" (one not square) and distortions of increasing strength.
  gt = np.stack([a[60:156, 160:256], a[200:296, 0:96], a[300:396, 300:396]])
  gen = np.stack([_noisy(gt[0], 4), _noisy(gt[1], 15, 1), np.roll(gt[2], 3, axis=1)])
  return gen, gt


@pytest.fixture(scope="module")
def grey_pair():
  c = skimage.data.camera()
  gt = np.stack([c[100:228, 200:300], c[300:428, 50:150]])  # (2, 128, 100)
  return _noisy(gt, 10, 2), gt


@pytest.mark.parametrize("gaussian", [False, True])
def test_ssim_matches_skimage_colour(colour_pair, gaussian):
  gen, gt = colour_pair
  kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False) if gaussian else {}
  ref = [structural_similarity(g, t, data_range=255, channel_axis=-1, **kw)
         for g, t in zip(gen, gt)]
  got = metrics.ssim_frames(gen, gt, gaussian=gaussian)
  tol = 1e-5 if gaussian else 1e-6  # the Gaussian variant's moments are float32
  np.testing.assert_allclose(got, ref, atol=tol)
  assert metrics.ssim(gen, gt, gaussian=gaussian) == pytest.approx(np.mean(ref), abs=tol)
  assert got[0] > got[1]  # more noise, lower SSIM


def test_ssim_and_psnr_match_skimage_grey(grey_pair):
  gen, gt = grey_pair
  ref = [structural_similarity(g, t, data_range=255) for g, t in zip(gen, gt)]
  np.testing.assert_allclose(metrics.ssim_frames(gen, gt), ref, atol=1e-6)
  ref_p = [peak_signal_noise_ratio(t, g, data_range=255) for g, t in zip(gen, gt)]
  np.testing.assert_allclose(metrics.psnr_frames(gen, gt), ref_p, rtol=1e-12)


def test_psnr_matches_skimage_colour(colour_pair):
  gen, gt = colour_pair
  ref = [peak_signal_noise_ratio(t, g, data_range=255) for g, t in zip(gen, gt)]
  np.testing.assert_allclose(metrics.psnr_frames(gen, gt), ref, rtol=1e-12)
  assert metrics.psnr(gen, gt) == pytest.approx(np.mean(ref), rel=1e-12)


def test_clip_longer_than_a_chunk_is_scored_frame_by_frame():
  rng = np.random.default_rng(3)
  gt = rng.integers(0, 256, (19, 16, 16, 3), dtype=np.uint8)  # 19: not a multiple of the chunk
  gen = _noisy(gt, 30, 4)
  ref = [structural_similarity(g, t, data_range=255, channel_axis=-1) for g, t in zip(gen, gt)]
  np.testing.assert_allclose(metrics.ssim_frames(gen, gt), ref, atol=1e-6)


def test_identical_frames():
  a = skimage.data.astronaut()[:64, :64]
  frames = np.stack([a, a[::-1]])
  np.testing.assert_allclose(metrics.ssim_frames(frames, frames), 1.0, atol=1e-7)
  assert metrics.psnr(frames, frames) == 100.0  # capped (documented), not inf
  assert np.all(np.isinf(metrics.psnr_frames(frames, frames, max_db=None)))
  # One unit of error in one value is still below the cap.
  b = frames.copy()
  b[0, 0, 0, 0] ^= 1
  assert metrics.psnr_frames(b, frames)[0] < 100.0


def test_refusals():
  a = np.zeros((2, 32, 32, 3), np.uint8)
  with pytest.raises(UserError, match="differ in shape"):
    metrics.ssim(a, a[:1])
  with pytest.raises(UserError, match="differ in shape"):
    metrics.psnr(a, a[:, :16])
  with pytest.raises(UserError, match="uint8"):
    metrics.psnr(a.astype(np.float32), a)
  with pytest.raises(UserError, match="smaller than"):
    metrics.ssim(a[:, :5, :5], a[:, :5, :5])
  with pytest.raises(UserError, match="stack"):
    metrics.psnr(a[0, 0], a[0, 0])


def test_face_crops_use_the_ground_truth_boxes_for_both_videos():
  rng = np.random.default_rng(7)
  t = 4
  gt = rng.integers(0, 256, (t, 80, 120, 3), dtype=np.uint8)
  gen = gt.copy()
  gen[:, :, 100:] = 0  # outside the box: must not matter
  boxes = np.tile(np.array([10, 5, 60, 75], np.float32), (t, 1))
  valid = np.array([True, True, False, True])
  boxes[2] = 0
  track = face.FaceTrack(boxes=boxes, landmarks=np.zeros((t, 68, 2), np.float32), valid=valid,
                         detected=valid.copy(), frame_size=(80, 120))
  g, r = metrics.face_crops(gen, gt, track, size=32)
  assert g.shape == r.shape == (3, 32, 32, 3)
  np.testing.assert_array_equal(r[2], face.crop_face(gt[3], [10, 5, 60, 75], 32))
  assert metrics.psnr(g, r) == 100.0  # identical inside the box
  with pytest.raises(UserError, match="frames"):
    metrics.face_crops(gen[:3], gt, track)


def _face_like():
  """A 96x96 crop of the astronaut's face (mouth in the lower half) as uint8 BGR."""
  return skimage.data.astronaut()[20:220:2, 150:350:2][:96, :96, ::-1].copy()


def test_mouth_detail_matches_a_direct_laplacian():
  import cv2  # noqa: PLC0415  (only this test compares with OpenCV's Laplacian)
  img = _face_like()
  grey = img.astype(np.float32).mean(-1)
  r0, r1, c0, c1 = (round(f * 96) for f in metrics.MOUTH_REGION)
  lap = cv2.Laplacian(grey[r0:r1, c0:c1], cv2.CV_32F, ksize=1)[1:-1, 1:-1]
  got = float(metrics.mouth_detail(img[None])[0])
  np.testing.assert_allclose(got, float(lap.var()), rtol=1e-4)


def test_mouth_detail_separates_sharp_from_blurred():
  import cv2  # noqa: PLC0415
  sharp = _face_like()
  blurred = cv2.GaussianBlur(sharp, (0, 0), 2.0)
  d = np.asarray(metrics.mouth_detail(np.stack([sharp, blurred])))
  assert d[1] < 0.25 * d[0], d
  ratio = float(metrics.mouth_detail_ratio(blurred[None], sharp[None]))
  assert 0.0 < ratio < 0.25
  assert float(metrics.mouth_detail_ratio(sharp[None], sharp[None])) == pytest.approx(1.0)
  # The upper half does not count: blurring only above the region leaves the value unchanged.
  top = sharp.copy()
  top[:48] = blurred[:48]
  assert float(metrics.mouth_detail(top[None])[0]) == pytest.approx(float(d[0]), rel=1e-6)


def test_mouth_detail_ratio_mask_and_scale():
  import cv2  # noqa: PLC0415
  sharp = _face_like().astype(np.float32) / 255.0
  blurred = cv2.GaussianBlur(sharp, (0, 0), 2.0)
  gen = np.stack([blurred, sharp])[:, None]  # (N=2, 1, 96, 96, 3)
  gt = np.stack([sharp, sharp])[:, None]
  only_first = float(metrics.mouth_detail_ratio(gen, gt, np.array([True, False])))
  both = float(metrics.mouth_detail_ratio(gen, gt))
  assert only_first < both < 1.0
  # Unit-free: the same pair in 0..255 gives the same ratio.
  assert float(metrics.mouth_detail_ratio(gen * 255, gt * 255)) == pytest.approx(both, rel=1e-5)
  with pytest.raises(UserError, match="3x3"):
    metrics.mouth_detail(np.zeros((1, 4, 4, 3), np.uint8))


def test_mouth_colour_shift_sees_a_tint_in_the_mouth_only():
  face_ = _face_like().astype(np.float32)
  tinted = face_.copy()
  tinted[..., 2] += 12.0  # red up everywhere
  got = np.asarray(metrics.mouth_colour_shift(tinted[None], face_[None]))
  np.testing.assert_allclose(got, [0.0, 0.0, 12.0], atol=1e-4)
  above = face_.copy()
  above[:40] += 30.0  # outside the mouth region: not counted
  np.testing.assert_allclose(np.asarray(metrics.mouth_colour_shift(above[None], face_[None])),
                             0.0, atol=1e-4)


def test_mouth_strip_picks_the_same_frames_in_every_row_and_keeps_pixels():
  rng = np.random.default_rng(0)
  inp = rng.integers(0, 256, (20, 96, 96, 3), np.uint8)
  out = rng.integers(0, 256, (25, 96, 96, 3), np.uint8)
  strip = metrics.mouth_strip([inp, out], n=5, scale=2)
  top, bottom, left, right = metrics.MOUTH_REGION
  h, w = round(top * 96), round(bottom * 96)
  c0, c1 = round(left * 96), round(right * 96)
  rh, rw = (w - h) * 2, (c1 - c0) * 2
  assert strip.shape == (2 * rh, 5 * rw, 3) and strip.dtype == np.uint8
  # Frames 0, 5, 10, 14, 19 (evenly over the shorter row), pixels repeated, not smoothed.
  for k, t in enumerate([0, 5, 10, 14, 19]):
    for row, src in enumerate((inp, out)):
      tile = strip[row * rh:(row + 1) * rh, k * rw:(k + 1) * rw]
      np.testing.assert_array_equal(tile[::2, ::2], src[t, h:w, c0:c1])
  assert metrics.mouth_strip([inp[:3]], n=12).shape[1] == 3 * (c1 - c0) * 2
  with pytest.raises(UserError, match="stacks of crops of one size"):
    metrics.mouth_strip([inp, out[:, :64, :64]])
  with pytest.raises(UserError, match="at least one frame"):
    metrics.mouth_strip([inp[:0]])
