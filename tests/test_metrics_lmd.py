"""LMD on synthetic landmark sets with known offsets, masks, refusals, and on a real face."""
import numpy as np
import pytest
import skimage.data

from taem_jax import metrics
from taem_jax.errors import UserError


def _mouths(t=6, seed=0):
  rng = np.random.default_rng(seed)
  return rng.uniform(100, 200, (t, 20, 2))


def test_known_offset_in_pixels_and_in_crop_units():
  gt = _mouths()
  gen = gt + np.array([3.0, 4.0])  # every point 5 px away
  np.testing.assert_allclose(metrics.lmd_frames(gen, gt), 5.0)
  # Boxes 192 px wide and 96 px high: x errors halve, y errors stay -> |(1.5, 4)|.
  boxes = np.tile([50.0, 80.0, 242.0, 176.0], (len(gt), 1))
  np.testing.assert_allclose(metrics.lmd_frames(gen, gt, boxes, size=96), np.hypot(1.5, 4.0))
  assert metrics.lmd(gen, gt, boxes).lmd == pytest.approx(np.hypot(1.5, 4.0))


def test_per_point_mean_and_full_68_point_input():
  gt = _mouths(t=2)
  gen = gt.copy()
  gen[0, 0] += [10.0, 0.0]  # one point of one frame off by 10 px
  np.testing.assert_allclose(metrics.lmd_frames(gen, gt), [0.5, 0.0])
  full_gt = np.zeros((2, 68, 2))
  full_gen = np.zeros((2, 68, 2))
  full_gt[:, 48:68], full_gen[:, 48:68] = gt, gen
  full_gen[:, :48] += 50.0  # points outside the mouth do not count
  np.testing.assert_allclose(metrics.lmd_frames(full_gen, full_gt), [0.5, 0.0])


def test_frames_without_a_face_are_left_out():
  gt = _mouths(t=4)
  gen = gt.copy()
  gen[1] += [0.0, 7.0]
  gen[3] += [0.0, 1.0]
  res = metrics.lmd(gen, gt, gen_valid=[True, False, True, True])
  assert res.lmd == pytest.approx(1.0 / 3.0)
  assert (res.num_frames, res.num_missing) == (3, 1)
  assert np.isnan(res.per_frame[1])
  with pytest.raises(UserError, match="no frame has a face"):
    metrics.lmd(gen, gt, gen_valid=[True, False, True, True], gt_valid=[False, True, False, False])


def test_refusals():
  gt = _mouths(t=3)
  with pytest.raises(UserError, match="different numbers of frames"):
    metrics.lmd_frames(gt[:2], gt)
  with pytest.raises(UserError, match="mouth points"):
    metrics.lmd_frames(gt[:, :10], gt[:, :10])
  with pytest.raises(UserError, match="one .* box per frame"):
    metrics.lmd_frames(gt, gt, boxes=np.zeros((2, 4)))


def test_mouth_landmarks_of_real_frames():
  img = np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])
  shifted = np.roll(img, 6, axis=0)  # the whole picture 6 px lower
  gt = metrics.mouth_landmarks(np.stack([img, img]))
  gen = metrics.mouth_landmarks(np.stack([img, shifted]))
  assert gt.mouth.shape == (2, 20, 2) and gt.valid.all()
  res = metrics.lmd_of_tracks(gen, gt)
  assert res.per_frame[0] == pytest.approx(0.0, abs=1e-6)
  height = gt.boxes[1, 3] - gt.boxes[1, 1]
  # dlib refits the points on the moved face: about 6 px in frame units, scaled to 96 px.
  assert res.per_frame[1] == pytest.approx(6 * 96 / height, rel=0.15)
