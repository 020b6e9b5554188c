"""LSE-D / LSE-C: the offset search on synthetic embeddings, window building, adapters."""
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from taem_jax import audio, face, metrics
from taem_jax.errors import UserError
from taem_jax.metrics.sync import _box_fill
from taem_jax.models import SyncNetColor, SyncNetV2


def _official_calc(video, audio_emb, vshift):
  """Direct transcription of syncnet_python's calc_pdist + evaluate (loops, float64)."""
  win = 2 * vshift + 1
  padded = np.concatenate([np.zeros((vshift, audio_emb.shape[1])), audio_emb,
                           np.zeros((vshift, audio_emb.shape[1]))])
  dists = np.zeros((len(video), win))
  for i in range(len(video)):
    for j in range(win):
      dists[i, j] = np.sqrt(np.sum((video[i] - padded[i + j] + 1e-6) ** 2))
  mdist = dists.mean(axis=0)
  minidx = int(np.argmin(mdist))
  return mdist, mdist[minidx], sorted(mdist)[vshift] - mdist[minidx], vshift - minidx


def _shifted_pair(shift, n=70, d=64, noise=0.1, seed=0):
  """video[t] matches audio[t - shift] (the video lags the audio by `shift` frames)."""
  rng = np.random.default_rng(seed)
  base = rng.normal(size=(n + 40, d))
  video = base[20:20 + n] + noise * rng.normal(size=(n, d))
  audio_emb = base[20 + shift:20 + shift + n] + noise * rng.normal(size=(n, d))
  return video, audio_emb


@pytest.mark.parametrize("shift", [0, 3, -7, 15, -15])
def test_known_shift_is_found(shift):
  video, audio_emb = _shifted_pair(shift)
  res = metrics.sync_scores(video, audio_emb, vshift=15)
  assert res.offset == shift
  assert res.mean_dists.shape == (31,) and res.num_windows == 70
  mdist, lse_d, lse_c, offset = _official_calc(video, audio_emb, 15)
  np.testing.assert_allclose(res.mean_dists, mdist, rtol=1e-12)
  assert (res.lse_d, res.lse_c, res.offset) == (pytest.approx(lse_d), pytest.approx(lse_c),
                                                offset)
  assert res.lse_c > 5.0  # a clear minimum


def test_matches_official_loop_on_short_clip_and_small_vshift():
  rng = np.random.default_rng(5)
  video, audio_emb = rng.normal(size=(8, 16)), rng.normal(size=(8, 16))  # vshift > N: all padding
  for vshift in (2, 15):
    res = metrics.sync_scores(video, audio_emb, vshift=vshift)
    mdist, lse_d, lse_c, offset = _official_calc(video, audio_emb, vshift)
    np.testing.assert_allclose(res.mean_dists, mdist, rtol=1e-12)
    assert (res.lse_d, res.lse_c, res.offset) == (pytest.approx(lse_d), pytest.approx(lse_c),
                                                  offset)


def test_unrelated_embeddings_give_low_confidence():
  rng = np.random.default_rng(1)
  synced = metrics.sync_scores(*_shifted_pair(0, seed=1))
  unrelated = metrics.sync_scores(rng.normal(size=(70, 64)), rng.normal(size=(70, 64)))
  assert unrelated.lse_c < 0.1 * synced.lse_c
  assert unrelated.lse_d > 3 * synced.lse_d


def test_embedding_shape_errors():
  with pytest.raises(ValueError):
    metrics.sync_scores(np.zeros((5, 4)), np.zeros((6, 4)))


class _StubV2(nnx.Module):
  """Stands in for SyncNetV2: lip embedding = per-frame channel means; audio = the window."""
  family = "syncnet_v2"

  def embed_lips(self, frames):  # (B, 5, 224, 224, 3) -> (B, 260): 15 means, then zeros
    means = frames.mean(axis=(2, 3)).reshape(frames.shape[0], -1)
    return jnp.pad(means, ((0, 0), (0, 260 - 15)))

  def embed_audio(self, mfcc):  # (B, 13, 20, 1) -> (B, 260)
    return mfcc.reshape(mfcc.shape[0], -1)


class _StubExpert(nnx.Module):
  family = "syncnet_color"

  def embed_faces(self, faces):  # (B, 48, 96, 15) -> (B, 1280): 15 means, then zeros
    return jnp.pad(faces.mean(axis=(1, 2)), ((0, 0), (0, 1280 - 15)))

  def embed_audio(self, mel):  # (B, 80, 16, 1) -> (B, 1280)
    return mel.reshape(mel.shape[0], -1)


def _clip(t, size, seed=0):
  rng = np.random.default_rng(seed)
  crops = rng.integers(0, 256, (t, size, size, 3), dtype=np.uint8)
  wav = (0.1 * rng.normal(size=t * 640 + 100)).astype(np.float32)
  return crops, wav


def test_syncnet_v2_windows():
  crops, wav = _clip(12, 224)
  scorer = metrics.scorer_for(_StubV2(), batch_size=4)  # 7 windows: batches of 4 + padded 3
  video_emb, audio_emb = scorer.embed(crops, wav)
  n = audio.syncnet_num_windows(12, len(wav))
  assert n == 7 and video_emb.shape == (7, 260) and audio_emb.shape == (7, 260)
  mfcc = audio.syncnet_mfcc(wav)
  for v in (0, 3, 6):
    want_v = crops[v:v + 5].astype(np.float64).mean(axis=(1, 2)).reshape(-1)
    np.testing.assert_allclose(video_emb[v, :15], want_v, rtol=1e-5)
    np.testing.assert_allclose(audio_emb[v], mfcc[4 * v:4 * v + 20].T.reshape(-1), rtol=1e-6)
  res = metrics.lse(crops, wav, scorer)
  assert res.model == "syncnet_v2" and res.comparable_with_paper and res.num_windows == 7


def test_expert_windows_use_lower_halves_frame_major():
  crops, wav = _clip(10, 96, seed=1)
  crops[:, :48] = 255  # the upper half must not be seen
  scorer = metrics.scorer_for(_StubExpert(), name="my_expert")
  video_emb, audio_emb = scorer.embed(crops, wav)
  assert video_emb.shape == (5, 1280) and audio_emb.shape == (5, 1280)
  mel = audio.melspectrogram(wav)
  for v in (0, 4):
    lower = crops[v:v + 5, 48:].astype(np.float64).mean(axis=(1, 2)) / 255.0  # (5 frames, 3)
    np.testing.assert_allclose(video_emb[v, :15], lower.reshape(-1), rtol=1e-5)  # channel 3t + c
    start = int(v * 80 / 25)
    np.testing.assert_allclose(audio_emb[v], mel[start:start + 16].T.reshape(-1), rtol=1e-6)
  res = metrics.lse(crops, wav, scorer)
  assert res.model == "expert:my_expert" and not res.comparable_with_paper


def test_score_video_with_a_given_track_fills_faceless_frames():
  rng = np.random.default_rng(2)
  t = 10
  frames = rng.integers(0, 256, (t, 120, 160, 3), dtype=np.uint8)
  boxes = np.tile(np.array([40, 20, 110, 100], np.float32), (t, 1))
  valid = np.ones(t, bool)
  valid[3] = False
  boxes[3] = 0
  track = face.FaceTrack(boxes=boxes, landmarks=np.zeros((t, 68, 2), np.float32), valid=valid,
                         detected=valid.copy(), frame_size=(120, 160))
  _, wav = _clip(t, 8)
  scorer = metrics.scorer_for(_StubV2())
  crops = scorer.crops(frames, track)
  assert crops.shape == (t, 224, 224, 3)
  np.testing.assert_array_equal(crops[3], face.syncnet_crop(frames[3], boxes[2]))
  res = metrics.score_video(frames, wav, scorer, track=track)
  ref = metrics.lse(crops, wav, scorer)
  assert res.lse_d == pytest.approx(ref.lse_d) and res.offset == ref.offset
  expert = metrics.scorer_for(_StubExpert())
  assert expert.crops(frames, track).shape == (t, 96, 96, 3)


def test_refusals():
  scorer = metrics.scorer_for(_StubV2())
  crops, wav = _clip(5, 224)
  with pytest.raises(UserError, match="too short"):
    scorer.embed(crops, wav)
  with pytest.raises(UserError, match="224, 224"):
    scorer.embed(crops[:, :96, :96], wav)
  with pytest.raises(UserError, match="25 fps"):
    metrics.score_video(crops, wav, scorer, fps=29.97)
  with pytest.raises(UserError, match="syncnet_v2 or syncnet_color"):
    metrics.scorer_for(object())


@pytest.mark.slow
@pytest.mark.parametrize("which", ["syncnet_v2", "expert"])
def test_real_networks_run(which):
  if which == "syncnet_v2":
    model, size = SyncNetV2(rngs=nnx.Rngs(0)), 224
  else:
    model, size = SyncNetColor(width=0.125, rngs=nnx.Rngs(0)), 96
  crops, wav = _clip(12, size)
  res = metrics.lse(crops, wav, model, name="random")
  assert res.num_windows == 7 and np.isfinite(res.lse_d) and res.lse_c >= 0
  assert res.model == ("syncnet_v2" if which == "syncnet_v2" else "expert:random")


def test_box_fill_takes_the_nearest_face():
  boxes = np.arange(7, dtype=np.float32)[:, None].repeat(4, 1)
  valid = np.array([False, True, False, False, False, True, False])
  np.testing.assert_array_equal(_box_fill(boxes, valid)[:, 0], [1, 1, 1, 1, 5, 5, 5])
  with pytest.raises(UserError, match="no face"):
    _box_fill(boxes, np.zeros(7, bool))
