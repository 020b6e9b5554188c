"""S3FD: official decode / NMS / thresholds on hand-made head outputs, Wav2Lip's pad and smoothing
rules, the converter on S3FD files (and its refusals), and the detector end to end.

Torch-free (numerical parity with PyTorch: test_porting_golden.py's s3fd golden here and
test_s3fd_porting.py). Random weights detect nothing meaningful, so the run on a real photo
checks shapes and types only.
"""
import math
import os

import numpy as np
import pytest
import skimage.data

import porting
from porting import converter, families, torchwrite
from taem_jax.errors import UserError
from taem_jax import face
from taem_jax.face import s3fd_detect
from taem_jax.face.detect import Face
from taem_jax.face.s3fd_detect import S3FDFaceDetector
from taem_jax.face.track import wav2lip_pad_box, wav2lip_smooth_boxes
from taem_jax.face.track_cache import TrackCache
from taem_jax.models import s3fd

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "s3fd.npz")
# Head map sizes for a 128x128 input (fc6's padding 3 widens the stride-32 map by 4).
SIZES_128 = (32, 16, 8, 8, 4, 2)


def _empty_heads(sizes=SIZES_128):
  """Heads where every cell is sure background (face prob 0) with zero offsets."""
  heads = []
  for n in sizes:
    p = np.zeros((n, n, 2), np.float32)
    p[..., 0] = 1.0
    heads.append([p, np.zeros((n, n, 4), np.float32)])
  return heads


def _put(heads, head, y, x, prob, offsets=(0, 0, 0, 0)):
  heads[head][0][y, x] = (1 - prob, prob)
  heads[head][1][y, x] = offsets


# ---- decoding, thresholds, NMS ----------------------------------------------------------------

def test_anchor_and_ssd_decode():
  heads = _empty_heads()
  # Stride 8 (head 1), cell x=3, y=2: anchor centre (4 + 24, 4 + 16) = (28, 20), side 32.
  _put(heads, 1, 2, 3, 0.9)
  box = s3fd.decode_head(*heads[1], stride=8)
  np.testing.assert_allclose(box, [[12, 4, 44, 36, 0.9]], atol=1e-5)
  # Offsets: centre moves by off * 0.1 * 32, sides scale by exp(off * 0.2).
  _put(heads, 1, 2, 3, 0.9, (1.0, -1.0, math.log(2) / 0.2, 0.0))
  (x1, y1, x2, y2, _), = s3fd.decode_head(*heads[1], stride=8)
  np.testing.assert_allclose([x1, y1, x2, y2], [31.2 - 32, 16.8 - 16, 31.2 + 32, 16.8 + 16],
                             atol=1e-4)
  # Negative corners clip to 0, the rest truncate (never round up).
  assert s3fd.best_box(s3fd.decode_image(heads)) == (0, 0, 63, 32)


def test_cell_and_score_thresholds():
  heads = _empty_heads()
  _put(heads, 2, 1, 1, 0.05)   # not > 0.05: no candidate at all
  _put(heads, 2, 5, 5, 0.06)   # a candidate, but not > 0.5
  assert len(s3fd.decode_head(*heads[2], stride=16)) == 1
  assert s3fd.best_box(s3fd.decode_image(heads)) is None
  _put(heads, 3, 0, 0, 0.5)    # exactly 0.5 is not kept
  assert len(s3fd.decode_image(heads)) == 0
  _put(heads, 3, 0, 0, 0.51)
  kept = s3fd.decode_image(heads)
  assert len(kept) == 1 and kept[0, 4] == pytest.approx(0.51)


def test_highest_score_wins_not_first_found():
  heads = _empty_heads()
  _put(heads, 0, 1, 1, 0.7)    # stride 4, decoded first
  _put(heads, 4, 3, 3, 0.95)   # stride 64, decoded later, far away: both survive NMS
  kept = s3fd.decode_image(heads)
  assert len(kept) == 2 and kept[0, 4] == pytest.approx(0.95)
  # stride 64 cell (3, 3): centre 32 + 192 = 224, side 256.
  assert s3fd.best_box(kept) == (96, 96, 352, 352)


def test_nms_iou_0_3_with_plus_one_areas():
  def dets(x):
    return np.array([[0, 0, 9, 9, 0.9], [x, 0, x + 9, 9, 0.8]], np.float32)
  # With "+1" areas (10x10 each), a shift of 5 overlaps 50/150 = 0.33 > 0.3: suppressed. Without
  # the +1 it would be 36/126 = 0.29 and kept, so this pins the convention.
  assert s3fd.nms(dets(5)) == [0]
  assert s3fd.nms(dets(6)) == [0, 1]   # 40/160 = 0.25
  # Greedy by score, not by position: the higher-scoring second box suppresses the first.
  d = dets(5)
  d[1, 4] = 0.95
  assert s3fd.nms(d) == [1]
  assert s3fd.nms(np.zeros((0, 5), np.float32)) == []


def test_overlapping_heads_collapse_to_one_face():
  heads = _empty_heads()
  _put(heads, 1, 2, 2, 0.8)   # stride 8 centre (20, 20) side 32
  # stride 4 cell (4, 4): anchor centre (18, 18) side 16, moved to (18.8, 18.8) and doubled:
  # IoU ("+1" areas) with the stride-8 box is 0.87 > 0.3.
  _put(heads, 0, 4, 4, 0.9, (0.5, 0.5, math.log(2) / 0.2, math.log(2) / 0.2))
  kept = s3fd.decode_image(heads)
  assert len(kept) == 1 and kept[0, 4] == pytest.approx(0.9)


# ---- Wav2Lip's pads and smoothing ---------------------------------------------------------------

def test_wav2lip_pads_clip_to_the_frame():
  assert wav2lip_pad_box((5, 3, 50, 95), (100, 60)) == (5, 3, 50, 100)  # default (0, 10, 0, 0)
  assert wav2lip_pad_box((5, 3, 50, 95), (100, 60), pads=(4, 2, 7, 20)) == (0, 0, 60, 97)
  assert wav2lip_pad_box((20, 30, 40, 50), (100, 60), pads=(4, 2, 7, 5)) == (13, 26, 45, 52)


def test_smoothing_forward_window_in_place_tail_and_truncation():
  x = [0, 10, 20, 30, 40, 50, 60]
  y = [1, 2, 2, 2, 2, 2, 2]
  boxes = np.stack([x, y, x, y], -1)
  before = boxes.copy()
  out = wav2lip_smooth_boxes(boxes)
  np.testing.assert_array_equal(boxes, before)  # the argument is left alone
  assert out.dtype == np.int64
  # Frames 0-2: mean of themselves and the next 4. Frames 3-6: the last 5 rows, which by then
  # hold the already-smoothed rows 2.. (e.g. frame 3: (40 + 30 + 40 + 50 + 60) / 5 = 44).
  np.testing.assert_array_equal(out[:, 0], [20, 30, 40, 44, 46, 48, 47])
  # 9/5 = 1.8 truncates to 1 (not rounded to 2); the rest average to exactly 2 or 1.8.
  assert out[0, 1] == 1
  np.testing.assert_array_equal(out[:, 0], out[:, 2])


def test_smoothing_short_videos_follow_the_official_slice():
  # 3 boxes, T=5: the official window boxes[3 - 5:] is the last 2 rows.
  out = wav2lip_smooth_boxes(np.array([[0] * 4, [10] * 4, [20] * 4]))
  np.testing.assert_array_equal(out[:, 0], [15, 15, 17])
  np.testing.assert_array_equal(wav2lip_smooth_boxes(np.array([[3, 4, 5, 6]])), [[3, 4, 5, 6]])


def test_wav2lip_boxes_pads_smooths_and_refuses_faceless_frames(monkeypatch):
  # The network is replaced by hand-made heads: frame i has one face at stride-16 cell (i, 2).
  def fake_heads(model, frames):
    out = []
    for f in frames:
      heads = _empty_heads()
      _put(heads, 2, int(f[0, 0, 0]), 2, 0.9)
      out.append(heads)
    return out

  monkeypatch.setattr(s3fd, "run_heads", fake_heads)
  det = S3FDFaceDetector(model=object(), batch_size=4)
  frames = np.zeros((6, 128, 128, 3), np.uint8)
  frames[:, 0, 0, 0] = [0, 1, 2, 3, 4, 5]
  raw = det.detect_batch(frames)
  # Cell (y, 2) of stride 16: centre (40, 8 + 16 y), side 64.
  assert raw == [(8, max(0, 16 * y - 24), 72, 16 * y + 40) for y in range(6)]
  got = det.wav2lip_boxes(frames)
  padded = [wav2lip_pad_box(b, (128, 128)) for b in raw]
  assert padded[5][3] == 128  # 120 + 10 clipped to the frame height
  np.testing.assert_array_equal(got, wav2lip_smooth_boxes(padded))
  np.testing.assert_array_equal(det.wav2lip_boxes(frames, smooth=False), padded)
  frames[3, 0, 0, 0] = 200  # no such cell: no face in frame 3
  monkeypatch.setattr(s3fd, "run_heads", lambda m, fr: [
      fake_heads(m, fr[i:i + 1])[0] if fr[i, 0, 0, 0] < 8 else _empty_heads()
      for i in range(len(fr))])
  with pytest.raises(UserError, match=r"no face in frame 3 \(1 of 6"):
    det.wav2lip_boxes(frames)
  with pytest.raises(UserError, match="uint8"):
    det.wav2lip_boxes(np.zeros((2, 8, 8), np.uint8))
  with pytest.raises(UserError, match="same-size"):
    det.wav2lip_boxes([frames[0], frames[0, :64]])


# ---- converter and the real network ----------------------------------------------------------

@pytest.fixture(scope="module")
def s3fd_file(tmp_path_factory):
  """A random-weight S3FD checkpoint in the released form (bare legacy state_dict)."""
  sd = families.random_state_dict("s3fd", seed=3)
  path = tmp_path_factory.mktemp("s3fd") / "s3fd-619a316812.pth"
  torchwrite.save(sd, path, "legacy")
  return path, sd


def test_s3fd_table():
  entries = families.official_entries("s3fd")
  assert len(entries) == 65 and families.num_params("s3fd") == 22_459_110
  assert [e.key for e in entries if e.kind == "l2norm"] == [
      "conv3_3_norm.weight", "conv4_3_norm.weight", "conv5_3_norm.weight"]
  kinds = {k: kind for k, _, _, kind in converter.mapping_table("s3fd")}
  assert kinds["conv3_3_norm_mbox_conf.weight"] == "conv"
  assert dict((k, p) for k, _, p, _ in converter.mapping_table("s3fd"))[
      "conv4_3_norm.weight"] == ("conv4_3_norm", "scale")


@pytest.mark.parametrize("kind", ["truncated", "wrong_family", "other_family_as_s3fd",
                                  "text_file"])
def test_refusals_leave_no_output(tmp_path, s3fd_file, kind):
  src, sd = s3fd_file
  family = "auto"
  if kind == "truncated":
    path = tmp_path / "s3fd.pth"
    path.write_bytes(src.read_bytes()[:-5000])
    msg = "truncated"
  elif kind == "wrong_family":
    path, family, msg = src, "wav2lip", r"is a s3fd checkpoint.*not wav2lip"
  elif kind == "other_family_as_s3fd":
    path = tmp_path / "visual_quality_disc.pth"
    torchwrite.save({"state_dict": families.random_state_dict("disc_qual")}, path, "zip")
    family, msg = "s3fd", r"is a disc_qual checkpoint.*not s3fd"
  else:
    path = tmp_path / "s3fd.pth"
    path.write_text("<html>404 Not Found</html>\n")
    family, msg = "s3fd", "not a PyTorch checkpoint"
  dst = tmp_path / "out"
  with pytest.raises(UserError, match=msg):
    porting.convert(path, dst, family=family)
  assert not dst.exists()


@pytest.fixture(scope="module")
def converted(s3fd_file, tmp_path_factory):
  src, _ = s3fd_file
  stats = {}
  dst = porting.convert(src, tmp_path_factory.mktemp("ckpt") / "s3fd", stats=stats)
  assert stats["family"] == "s3fd" and stats["format"] == "legacy"
  return dst


def test_jitted_pipeline_matches_the_torch_golden():
  """preprocess + jit-compiled network vs PyTorch outputs (golden written by make_golden)."""
  with np.load(GOLDEN) as z:
    image, want = z["in_image"], {k[4:]: z[k] for k in z.files if k.startswith("out_")}
    seed = int(z["seed"])
  # Undo the official pre-processing: a BGR uint8 frame that maps exactly onto the input.
  rgb = image[0].transpose(1, 2, 0) + np.array(s3fd.MEAN_RGB, np.float32)
  frame = rgb[..., ::-1].astype(np.uint8)
  np.testing.assert_array_equal(np.asarray(s3fd.preprocess(frame[None]))[0],
                                image[0].transpose(1, 2, 0))
  _, params = converter.convert_state_dict(families.random_state_dict("s3fd", seed), "s3fd")
  model = converter.build_model("s3fd", params)
  heads = s3fd.run_heads(model, frame[None])[0]
  assert [p.shape[:2] for p, _ in heads] == [(n, n) for n in SIZES_128]
  for i, (p, o) in enumerate(heads):
    np.testing.assert_allclose(p, want[f"cls{i}"][0].transpose(1, 2, 0), atol=1e-4)
    np.testing.assert_allclose(o, want[f"reg{i}"][0].transpose(1, 2, 0), atol=1e-4)


def test_random_weight_detector_on_a_real_photo(converted):
  """Converted file -> detector -> Faces on skimage's astronaut (shapes only: random weights)."""
  photo = np.ascontiguousarray(skimage.data.astronaut()[::4, ::4, ::-1])  # 128x128 BGR
  det = S3FDFaceDetector(converted)
  (kept,) = det.boxes_with_scores(photo[None])
  assert kept.dtype == np.float32 and kept.ndim == 2 and kept.shape[1] == 5
  assert np.all(kept[:, 4] > 0.5) and np.all(np.diff(kept[:, 4]) <= 0)
  faces = det.detect(photo)
  assert len(faces) == len(kept)
  for f in faces[:3]:
    assert f.landmarks.shape == (68, 2) and f.box.shape == (4,)
    assert np.all(f.box >= 0) and np.all(f.box[[2, 3]] <= 128) and 0.5 < f.score <= 1
  (box,) = det.detect_batch(photo[None])
  assert box is None or all(isinstance(v, int) for v in box)


def test_detector_needs_weights():
  with pytest.raises(UserError, match="porting.convert"):
    s3fd_detect.S3FDFaceDetector()


def _fake_heads(model, frames):
  """Hand-made heads: frame i has one face at stride-16 cell (f[0, 0, 0], 2); none past 7."""
  out = []
  for f in frames:
    heads = _empty_heads()
    if f[0, 0, 0] < 8:
      _put(heads, 2, int(f[0, 0, 0]), 2, 0.9)
    out.append(heads)
  return out


class _Points:
  """Landmark fitting stub (dlib's predictor is not what this test is about)."""

  def face_in_box(self, frame, box):
    return Face(box=np.asarray(box, np.float32), landmarks=np.zeros((68, 2), np.float32),
                score=float("inf"), det_box=np.asarray(box, np.float32))


def test_synthesis_track_crops_exactly_like_wav2lip_boxes(monkeypatch, tmp_path):
  monkeypatch.setattr(s3fd, "run_heads", _fake_heads)
  det = S3FDFaceDetector(model=object(), landmarks=_Points(), batch_size=3)
  frames = np.zeros((7, 128, 128, 3), np.uint8)
  frames[:, 0, 0, 0] = [0, 2, 1, 3, 5, 4, 6]
  # Stride and a pad that differs from the default: the official track detects every frame.
  track = face.track_faces(iter(frames[:, None]), det, stride=5, smooth=5)
  assert track.rule == "wav2lip" and track.detected.all() and track.valid.all()
  for pads in ((0, 10, 0, 0), (3, 7, 2, 9)):
    want = det.wav2lip_boxes(frames, pads=pads)
    np.testing.assert_array_equal(track.crop_boxes(pads), want)
  # Unsmoothed and smoothed differ here, so the comparison above can fail.
  assert not np.array_equal(det.wav2lip_boxes(frames, smooth=False), det.wav2lip_boxes(frames))
  np.testing.assert_array_equal(face.track_faces(frames, det, smooth=1).crop_boxes(),
                                det.wav2lip_boxes(frames, smooth=False))
  # The track cache keeps the rule (a reloaded track crops the same way).
  cache = TrackCache(tmp_path)
  cache.put("k", track)
  again = cache.get("k")
  assert again.rule == "wav2lip" and again.smooth == 5
  np.testing.assert_array_equal(again.crop_boxes(), track.crop_boxes())


def test_synthesis_track_keeps_faceless_frames_and_smooths_each_run(monkeypatch):
  monkeypatch.setattr(s3fd, "run_heads", _fake_heads)
  det = S3FDFaceDetector(model=object(), landmarks=_Points())
  frames = np.zeros((9, 128, 128, 3), np.uint8)
  frames[:, 0, 0, 0] = [0, 1, 2, 3, 200, 4, 5, 6, 7]
  track = face.track_faces(frames, det)
  np.testing.assert_array_equal(track.valid, [1, 1, 1, 1, 0, 1, 1, 1, 1])
  got = track.crop_boxes()
  np.testing.assert_array_equal(got[4], 0)
  np.testing.assert_array_equal(got[:4], det.wav2lip_boxes(frames[:4]))
  np.testing.assert_array_equal(got[5:], det.wav2lip_boxes(frames[5:]))
  with pytest.raises(UserError, match="highest-scoring"):
    face.track_faces(frames, det, face_index=0)
  frames[:, 0, 0, 0] = 200
  with pytest.raises(UserError, match="no face found in any of the 9"):
    face.track_faces(frames, det)
