"""Audio front end vs independent computations (librosa STFT / scipy / explicit loops)."""
import math
import subprocess

import librosa  # noqa: TID253 - the reference the project's mel is checked against
import numpy as np
import pytest
import scipy.fft
import scipy.signal
import soundfile as sf

from taem_jax import audio
from taem_jax.errors import UserError

SR = 16000


def _speechlike(seconds=1.0, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * SR)) / SR
  y = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
  y += 0.05 * rng.standard_normal(len(t))
  return y.astype(np.float32)


def _wav2lip_mel_reference(wav):
  """Wav2Lip's mel step by step with library calls (independent of our numpy STFT)."""
  y = scipy.signal.lfilter([1, -0.97], [1], wav.astype(np.float64))
  spec = np.abs(librosa.stft(y, n_fft=800, hop_length=200, win_length=800, window="hann",
                             center=True, pad_mode="reflect"))
  basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
  s = 20 * np.log10(np.maximum(1e-5, basis @ spec)) - 20
  return np.clip((2 * 4.0) * ((s + 100) / 100) - 4.0, -4.0, 4.0).T


def test_melspectrogram_matches_stepwise_reference():
  wav = _speechlike(1.3)
  mel = audio.melspectrogram(wav)
  ref = _wav2lip_mel_reference(wav)
  assert mel.dtype == np.float32 and mel.shape == ref.shape == (1 + len(wav) // 200, 80)
  np.testing.assert_allclose(mel, ref, atol=1e-5)
  # edges too (reflect padding, not librosa>=0.9's zero padding)
  np.testing.assert_allclose(mel[:3], ref[:3], atol=1e-5)
  np.testing.assert_allclose(mel[-3:], ref[-3:], atol=1e-5)


def test_mel_rate_range_and_silence():
  assert audio.melspectrogram(np.zeros(SR, np.float32)).shape == (81, 80)  # 80 fps
  np.testing.assert_array_equal(audio.melspectrogram(np.zeros(SR, np.float32)), -4.0)
  mel = audio.melspectrogram(_speechlike(2.0))
  assert mel.min() >= -4 and mel.max() <= 4 and mel.max() > 0
  # a pure tone lands in the mel band around its frequency
  t = np.arange(SR) / SR
  tone = audio.melspectrogram((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
  centres = librosa.mel_frequencies(n_mels=82, fmin=55, fmax=7600)[1:-1]
  assert abs(centres[int(np.argmax(tone[40]))] - 1000) < 100


def test_duration_mel_100fps_and_reference():
  wav = _speechlike(1.0, seed=1)
  dm = audio.duration_mel(wav)
  assert dm.shape == (1 + len(wav) // 160, 80) == (101, 80)
  y = scipy.signal.lfilter([1, -0.97], [1], wav.astype(np.float64))
  m = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, win_length=800, hop_length=160,
                                     n_mels=80, fmin=55, fmax=7600, power=1.0, center=True,
                                     pad_mode="reflect")
  ref = np.clip(0.08 * (20 * np.log10(np.maximum(1e-5, m)) - 20) + 4, -4, 4).T
  np.testing.assert_allclose(dm, ref, atol=1e-5)
  # 4 duration frames per 25 fps video frame
  assert audio.duration_mel(np.zeros(3 * SR, np.float32)).shape[0] - 1 == 4 * 75


def _official_chunks(n_mel, fps):
  """The inference.py loop, written out step by step."""
  chunks, i = [], 0
  mult = 80.0 / fps
  while True:
    start = int(i * mult)
    if start + 16 > n_mel:
      chunks.append(n_mel - 16)
      break
    chunks.append(start)
    i += 1
  return chunks


@pytest.mark.parametrize("n_mel,fps", [(16, 25.0), (81, 25.0), (243, 25.0), (200, 29.97),
                                       (130, 30.0), (97, 24.0)])
def test_mel_windows_follow_official_inference(n_mel, fps):
  mel = np.random.default_rng(0).uniform(-4, 4, (n_mel, 80)).astype(np.float32)
  starts = _official_chunks(n_mel, fps)
  n = audio.num_video_frames(n_mel, fps)
  assert n == len(starts)
  win = audio.mel_windows(mel, n, fps)
  assert win.shape == (n, 80, 16, 1) and win.dtype == np.float32
  for i, s in enumerate(starts):
    np.testing.assert_array_equal(win[i, :, :, 0], mel[s:s + 16].T)
  # frames beyond the official count keep the final window (documented edge rule)
  more = audio.mel_windows(mel, n + 3, fps)
  for i in range(n, n + 3):
    np.testing.assert_array_equal(more[i, :, :, 0], mel[-16:].T)


def test_mel_window_starts_25fps_is_int_3p2_i():
  starts = audio.mel_window_starts(200, 10_000, 25.0)
  np.testing.assert_array_equal(starts, [int(80 * i / 25) for i in range(200)])
  assert list(starts[:7]) == [0, 3, 6, 9, 12, 16, 19]


def test_mel_windows_short_mel_padded_with_silence():
  mel = np.zeros((10, 80), np.float32)
  win = audio.mel_windows(mel, 2, 25.0)
  assert win.shape == (2, 80, 16, 1)
  np.testing.assert_array_equal(win[0, :, :10, 0], 0.0)
  np.testing.assert_array_equal(win[0, :, 10:, 0], -4.0)


# --- SyncNet MFCC --------------------------------------------------------------------------

def _mfcc_reference(sig):
  """python_speech_features.mfcc defaults from their formulas, with explicit loops."""
  sig = np.asarray(sig, np.float64)
  sig = np.append(sig[0], sig[1:] - 0.97 * sig[:-1])
  n = len(sig)
  nf = 1 if n <= 400 else 1 + int(math.ceil((n - 400) / 160))
  sig = np.concatenate([sig, np.zeros((nf - 1) * 160 + 400 - n)])
  frames = np.stack([sig[i * 160:i * 160 + 400] for i in range(nf)])
  pspec = np.abs(np.fft.rfft(frames, 512)) ** 2 / 512
  energy = pspec.sum(1)
  energy[energy == 0] = np.finfo(float).eps
  hz2mel = lambda f: 2595 * np.log10(1 + f / 700.0)  # noqa: E731
  mel2hz = lambda m: 700 * (10 ** (m / 2595.0) - 1)  # noqa: E731
  pts = np.linspace(hz2mel(0), hz2mel(8000), 28)
  bins = np.floor((512 + 1) * mel2hz(pts) / 16000)
  fb = np.zeros((26, 257))
  for j in range(26):
    for i in range(int(bins[j]), int(bins[j + 1])):
      fb[j, i] = (i - bins[j]) / (bins[j + 1] - bins[j])
    for i in range(int(bins[j + 1]), int(bins[j + 2])):
      fb[j, i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1])
  feat = pspec @ fb.T
  feat[feat == 0] = np.finfo(float).eps
  c = scipy.fft.dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :13]
  c *= 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
  c[:, 0] = np.log(energy)
  return c


def test_syncnet_mfcc_matches_formula_reference():
  wav = _speechlike(0.77, seed=3)
  ints = np.round(wav * 32768).astype(np.int16)
  got = audio.syncnet_mfcc(ints)
  ref = _mfcc_reference(ints)
  assert got.shape == ref.shape == (1 + math.ceil((len(ints) - 400) / 160), 13)
  np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-3)
  # float input is taken on the int16 scale
  np.testing.assert_allclose(audio.syncnet_mfcc(wav), got, rtol=1e-5, atol=1e-3)


def test_syncnet_mfcc_frame_counts_and_silence():
  assert audio.syncnet_mfcc(np.ones(400, np.int16)).shape == (1, 13)
  assert audio.syncnet_mfcc(np.ones(401, np.int16)).shape == (2, 13)
  assert audio.syncnet_mfcc(np.ones(SR, np.int16)).shape == (1 + math.ceil(15600 / 160), 13)
  z = audio.syncnet_mfcc(np.zeros(1000, np.int16))  # log(eps) everywhere, no NaN/inf
  assert np.all(np.isfinite(z))


def test_syncnet_windows():
  mfcc = np.random.default_rng(0).standard_normal((120, 13)).astype(np.float32)
  n = audio.syncnet_num_windows(n_video_frames=30, n_samples=30 * 640)
  assert n == 25
  w = audio.syncnet_mfcc_windows(mfcc, n)
  assert w.shape == (25, 13, 20, 1)
  np.testing.assert_array_equal(w[7, :, :, 0], mfcc[28:48].T)
  assert audio.syncnet_num_windows(100, 10 * 640) == 5   # audio shorter than video
  assert audio.syncnet_num_windows(3, SR) == 0


# --- loading -------------------------------------------------------------------------------

@pytest.mark.parametrize("rate,channels", [(8000, 1), (44100, 1), (48000, 2), (16000, 2)])
def test_load_audio_resamples_and_downmixes_like_librosa(tmp_path, rate, channels):
  t = np.arange(int(0.5 * rate)) / rate
  y = 0.4 * np.sin(2 * np.pi * 300 * t)
  data = np.stack([y, 0.5 * y], axis=1) if channels == 2 else y
  path = tmp_path / f"a_{rate}_{channels}.wav"
  sf.write(path, data, rate, subtype="PCM_16")
  got = audio.load_audio(path)
  ref, _ = librosa.load(path, sr=16000)
  assert got.dtype == np.float32 and got.ndim == 1
  assert abs(len(got) - 8000) <= 1
  np.testing.assert_allclose(got, ref, atol=1e-5)


def test_load_audio_array_inputs():
  y = _speechlike(0.25)
  np.testing.assert_array_equal(audio.load_audio(y), y)
  stereo = np.stack([y, y], axis=0)  # (channels, samples)
  np.testing.assert_allclose(audio.load_audio(stereo), y, atol=1e-7)
  ints = (y * 32767).astype(np.int16)
  np.testing.assert_allclose(audio.load_audio(ints), ints / 32768.0, atol=1e-6)
  assert len(audio.load_audio(y, orig_sr=8000)) == 2 * len(y)


def test_load_audio_errors(tmp_path):
  with pytest.raises(UserError, match="not found"):
    audio.load_audio(tmp_path / "missing.wav")
  empty = tmp_path / "empty.wav"
  sf.write(empty, np.zeros(0), 16000)
  with pytest.raises(UserError, match="no audio samples"):
    audio.load_audio(empty)
  zero_bytes = tmp_path / "zero.wav"
  zero_bytes.write_bytes(b"")
  with pytest.raises(UserError, match="empty"):
    audio.load_audio(zero_bytes)
  junk = tmp_path / "junk.wav"
  junk.write_bytes(b"this is not audio" * 50)
  with pytest.raises(UserError, match="cannot decode"):
    audio.load_audio(junk)
  with pytest.raises(UserError):
    audio.load_audio(np.array([0.0, np.nan]))
  with pytest.raises(UserError):
    audio.load_audio(np.zeros(0))


def test_require_speech(tmp_path):
  path = tmp_path / "silent.wav"
  sf.write(path, np.zeros(SR), SR)
  silent = audio.load_audio(path)
  assert audio.is_silent(silent)
  with pytest.raises(UserError, match="silent"):
    audio.require_speech(silent)
  speech = _speechlike(0.5)
  assert audio.require_speech(speech) is speech
  quiet_noise = 1e-4 * np.random.default_rng(0).standard_normal(SR)  # -80 dBFS hiss
  assert audio.is_silent(quiet_noise)


def test_load_audio_via_ffmpeg(tmp_path):
  imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
  src = tmp_path / "src.wav"
  sf.write(src, _speechlike(0.5), SR)
  dst = tmp_path / "clip.m4a"
  subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(src),
                  "-c:a", "aac", str(dst)], check=True)
  y = audio.load_audio(dst)
  assert y.dtype == np.float32 and abs(len(y) - 8000) < 2000
  assert np.abs(y).max() > 0.1


@pytest.mark.parametrize("fps", [25, 29.97, 30])
@pytest.mark.parametrize("seconds", [0.04, 1.0, 3.1, 11.0])
def test_speech_frames_cover_the_speech(fps, seconds):
  n_samples = int(round(seconds * 16000))
  n = audio.speech_frames(n_samples, fps)
  assert (n - 1) / fps < n_samples / 16000 <= n / fps + 1e-9  # the fewest frames that cover it
  # Never fewer than the official inference's count, which drops the end.
  n_mel = len(audio.melspectrogram(np.zeros(n_samples, np.float32)))
  assert n >= audio.num_video_frames(n_mel, fps)


def test_speech_frames_exact_multiple_and_bad_fps():
  assert audio.speech_frames(32000, 25) == 50  # 2 s at 25 fps: no extra frame
  assert audio.speech_frames(0, 25) == 1
  with pytest.raises(ValueError):
    audio.speech_frames(16000, 0)
