"""The project's one audio front end: loading, Wav2Lip's mel, the 100 fps mel, SyncNet MFCCs.

* `load_audio`: any common file (or an array) -> float32 mono at 16 kHz, the same numbers as
  Wav2Lip's `librosa.load(path, sr=16000)` for files soundfile can read.
* `melspectrogram`: Wav2Lip's exact 80 fps normalised log-mel (official `audio.py` + `hparams.py`),
  time-major (T, 80); `mel_windows` cuts one (80, 16, 1) window per video frame (official inference rule).
* `duration_mel`: a 100 fps mel (hop 160) for durations / the aligner (4 frames per 25 fps frame).
* `syncnet_mfcc`: python_speech_features.mfcc(signal, 16000) with its defaults, as used by
  the LSE-D / LSE-C SyncNet; `syncnet_mfcc_windows` cuts its 20-frame windows.
* `pcavs_melspectrogram`: PC-AVS's 100 fps log-mel in [0, 1] (lws STFT); `pcavs_windows` cuts
  its per-video-frame (80, 20, 1) windows and `pcavs_num_frames` is its frame-count rule;
  `pcavs_video_windows` gives one window for every video frame (the backbone's input).
"""
from __future__ import annotations

import functools
import math
import os
import pathlib
import subprocess
import tempfile

import imageio_ffmpeg
import numpy as np
import soundfile as sf

from taem_jax.errors import UserError
from taem_jax.rates import DURATION_HOP as DUR_HOP
from taem_jax.rates import MEL_FPS, SAMPLE_RATE, VIDEO_FPS
from taem_jax.rates import MEL_HOP as HOP  # 12.5 ms -> 80 mel frames per second

# Wav2Lip hparams.py (only the fields audio.py actually uses).
N_FFT = 800
WIN = 800
N_MELS = 80
FMIN, FMAX = 55.0, 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0
MEL_WINDOW = 16               # mel frames per generator window (0.2 s)

# 100 fps mel for durations (hop DUR_HOP = 160 samples).
DUR_N_FFT = 1024
DUR_WIN = 800

# Below this RMS (-60 dBFS) in every 25 ms frame, audio counts as silence.
SILENCE_RMS = 1e-3


# ---------------------------------------------------------------------------------------------
# Loading

def _to_mono(y: np.ndarray) -> np.ndarray:
  """Averages channels; a 2-D array's shorter axis is taken as the channel axis."""
  if y.ndim == 1:
    return y
  if y.ndim != 2:
    raise UserError(f"audio array must be 1-D (samples) or 2-D (samples x channels), got shape "
                    f"{y.shape}")
  ch_axis = 0 if y.shape[0] < y.shape[1] else 1
  return y.mean(axis=ch_axis)


def _as_float(y: np.ndarray) -> np.ndarray:
  if np.issubdtype(y.dtype, np.integer):
    info = np.iinfo(y.dtype)
    scale = float(-info.min) if info.min < 0 else float(info.max + 1) / 2
    offset = 0.0 if info.min < 0 else scale
    return ((y.astype(np.float64) - offset) / scale).astype(np.float32)
  if not np.issubdtype(y.dtype, np.floating):
    raise UserError(f"audio array must be float or integer PCM, got dtype {y.dtype}")
  return y.astype(np.float32)


def _read_file(path: pathlib.Path) -> tuple[np.ndarray, int]:
  """(samples[, channels]) float32 at the file's own rate."""
  try:
    y, sr = sf.read(str(path), dtype="float32", always_2d=False)
    return y, int(sr)
  except Exception:  # not a format libsndfile knows (mp3 on old libsndfile, mp4, m4a, ...)
    pass
  # ffmpeg (bundled by imageio-ffmpeg) decodes everything else to a float wav at the native rate
  # and channel count, so resampling and down-mixing stay the same as for wav input.
  try:
    exe = imageio_ffmpeg.get_ffmpeg_exe()
  except Exception as e:
    raise UserError(f"cannot decode audio file {path}: not readable by soundfile and no ffmpeg "
                    f"available ({e}); convert it to .wav") from None
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "audio.wav")
    proc = subprocess.run([exe, "-nostdin", "-v", "error", "-y", "-i", str(path), "-vn",
                           "-c:a", "pcm_f32le", out], capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
      msg = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
      raise UserError(f"cannot decode audio file {path}: {msg}")
    y, sr = sf.read(out, dtype="float32", always_2d=False)
  return y, int(sr)


def load_audio(path_or_array, sr: int = SAMPLE_RATE, *, orig_sr: int | None = None) -> np.ndarray:
  """Loads audio as float32 mono in [-1, 1] at `sr` Hz.

  Files: anything soundfile reads (wav, flac, ogg, mp3 with recent libsndfile), else anything
  ffmpeg reads (mp4, m4a, ...). Channels are averaged, then the signal is resampled with
  librosa's default resampler (soxr), the same steps as `librosa.load(path, sr=sr)`.
  Arrays: (samples,) or (samples, channels) / (channels, samples); integer PCM is scaled to
  [-1, 1]; the array is taken to be at `orig_sr` Hz (default: already at `sr`).

  Shapes:
    returns (n_samples,) float32.
  Raises:
    UserError: missing / unreadable file, no samples, non-finite samples.
  """
  if isinstance(path_or_array, (str, os.PathLike)):
    path = pathlib.Path(path_or_array).expanduser()
    if not path.exists():
      raise UserError(f"audio file not found: {path}")
    if path.is_dir():
      raise UserError(f"expected an audio file, got a directory: {path}")
    if path.stat().st_size == 0:
      raise UserError(f"audio file is empty (0 bytes): {path}")
    y, file_sr = _read_file(path)
    src = str(path)
  else:
    y, file_sr, src = np.asarray(path_or_array), orig_sr or sr, "audio array"
  y = _to_mono(_as_float(np.asarray(y)))
  if y.size == 0:
    raise UserError(f"{src} contains no audio samples")
  if not np.all(np.isfinite(y)):
    raise UserError(f"{src} contains NaN or infinite samples")
  if file_sr != sr:
    import librosa  # lazy: librosa takes seconds to import (numba)
    y = librosa.resample(y, orig_sr=file_sr, target_sr=sr).astype(np.float32)
  return np.ascontiguousarray(y, dtype=np.float32)


def is_silent(wav: np.ndarray, sr: int = SAMPLE_RATE) -> bool:
  """True if no 25 ms frame of `wav` reaches -60 dBFS RMS."""
  wav = np.asarray(wav, np.float64)
  n = max(1, int(0.025 * sr))
  pad = (-len(wav)) % n
  frames = np.pad(wav, (0, pad)).reshape(-1, n)
  return bool(np.sqrt((frames ** 2).mean(axis=1)).max(initial=0.0) < SILENCE_RMS)


def require_speech(wav: np.ndarray, sr: int = SAMPLE_RATE, what: str = "audio") -> np.ndarray:
  """Returns `wav` unchanged, or raises UserError if it is silence only (nothing to lip-sync)."""
  if len(wav) == 0 or is_silent(wav, sr):
    raise UserError(f"{what} is silent (no 25 ms frame above -60 dBFS); give a recording with "
                    "speech")
  return wav


# ---------------------------------------------------------------------------------------------
# Wav2Lip's mel (80 fps) and the 100 fps duration mel

@functools.lru_cache(maxsize=4)
def _mel_basis(n_fft: int, fmin: float = FMIN) -> np.ndarray:
  import librosa  # lazy: see resample above
  # Keyword-only since librosa 0.10; Slaney scale + area ('slaney') norm = librosa 0.7 defaults.
  return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=n_fft, n_mels=N_MELS, fmin=fmin, fmax=FMAX,
                             htk=False, norm="slaney").astype(np.float64)


def _preemphasis(wav: np.ndarray, k: float) -> np.ndarray:
  """y[0] = x[0], y[n] = x[n] - k x[n-1] (scipy.signal.lfilter([1, -k], [1], x))."""
  x = np.asarray(wav, np.float64)
  y = x.copy()
  y[1:] -= k * x[:-1]
  return y


# Frames per block of the STFT: the spectrogram of a long recording is computed block by block,
# so its transient memory (float64 frames + complex spectrum, ~50 MB per block) does not grow with
# the recording's length. A clip of up to ~51 s (Wav2Lip's mel) is one block.
_STFT_BLOCK = 4096


def _window(n_fft: int, win: int) -> np.ndarray:
  """Periodic Hann of length `win`, zero-padded to n_fft and centred (librosa's pad_center)."""
  n = np.arange(win)
  window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win)
  lpad = (n_fft - win) // 2
  return np.pad(window, (lpad, n_fft - win - lpad))


def _preemphasised_padded(x: np.ndarray, start: int, stop: int, k: float, half: int
                          ) -> np.ndarray:
  """Samples start..stop-1 of reflect_pad(preemphasis(x), half), indexed from -half.

  Equals `np.pad(_preemphasis(x, k), half, mode="reflect")[start + half: stop + half]` value
  for value, without building the whole padded signal.
  """
  n = len(x)
  i = np.arange(start, stop)
  idx = np.where(i < 0, -i, np.where(i >= n, 2 * (n - 1) - i, i))
  xi = x[idx].astype(np.float64)
  prev = x[np.maximum(idx - 1, 0)].astype(np.float64)
  return np.where(idx == 0, xi, xi - k * prev)


def _stft_magnitude_blocks(wav: np.ndarray, n_fft: int, hop: int, win: int, k: float):
  """Yields |STFT| of the pre-emphasised signal in blocks of frames, like
  librosa.stft(center=True, pad_mode='reflect', window='hann'): (frames, n_fft//2+1) each.

  The reflect padding is done here explicitly: librosa >= 0.9 pads with zeros by default,
  which changes the first and last frames relative to the models' training data.
  """
  x = np.asarray(wav)
  if len(x) <= n_fft // 2:
    raise UserError(f"audio too short: {len(x)} samples, need more than {n_fft // 2} "
                    f"({1000 * (n_fft // 2 + 1) / SAMPLE_RATE:.0f} ms)")
  window = _window(n_fft, win)
  half = n_fft // 2
  n_frames = 1 + len(x) // hop
  for f0 in range(0, n_frames, _STFT_BLOCK):
    f1 = min(n_frames, f0 + _STFT_BLOCK)
    seg = _preemphasised_padded(x, f0 * hop - half, (f1 - 1) * hop - half + n_fft, k, half)
    frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft)[::hop][:f1 - f0]
    yield np.abs(np.fft.rfft(frames * window, axis=-1))


def _normalised_log_mel(wav: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
  basis = _mel_basis(n_fft).T
  min_level = 10.0 ** (MIN_LEVEL_DB / 20.0)
  out = []
  for mag in _stft_magnitude_blocks(wav, n_fft, hop, win, PREEMPHASIS):
    db = 20.0 * np.log10(np.maximum(min_level, mag @ basis)) - REF_LEVEL_DB
    # Symmetric normalisation to [-4, 4]: -100 dB -> -4, 0 dB -> +4, clipped.
    s = 2.0 * MAX_ABS_VALUE * (db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB) - MAX_ABS_VALUE
    out.append(np.clip(s, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32))
  return out[0] if len(out) == 1 else np.concatenate(out)


def melspectrogram(wav: np.ndarray) -> np.ndarray:
  """Wav2Lip's normalised log-mel of 16 kHz audio, 80 frames per second.

  Pre-emphasis 0.97; |STFT| (n_fft 800, hop 200, periodic Hann 800, centred, reflect-padded);
  80 Slaney mels 55-7600 Hz (area-normalised); 20 log10(max(1e-5, .)) - 20 dB;
  clip(0.08 S + 4, -4, 4). Frame k is centred on sample 200 k.

  Shapes:
    wav: (n_samples,) float at 16 kHz -> (1 + n_samples // 200, 80) float32 in [-4, 4].
  """
  return _normalised_log_mel(np.asarray(wav), N_FFT, HOP, WIN)


def duration_mel(wav: np.ndarray) -> np.ndarray:
  """The 100 fps mel used for phoneme durations (4 frames per 25 fps video frame).

  Same pipeline and normalisation as `melspectrogram` (so values are in [-4, 4]) but n_fft 1024,
  hop 160 (10 ms), window 800 (zero-padded to 1024), 80 Slaney mels 55-7600 Hz.

  Shapes:
    wav: (n_samples,) float at 16 kHz -> (1 + n_samples // 160, 80) float32.
  """
  return _normalised_log_mel(np.asarray(wav), DUR_N_FFT, DUR_HOP, DUR_WIN)


def num_video_frames(n_mel: int, fps: float = VIDEO_FPS) -> int:
  """How many video frames Wav2Lip's inference makes from `n_mel` mel frames.

  The official loop takes windows at start = int(i * 80 / fps) while start + 16 <= n_mel and
  then one last window (the final 16 frames), so the count is (first i that overruns) + 1.
  """
  step = MEL_FPS / fps
  i = 0
  while int(i * step) + MEL_WINDOW <= n_mel:
    i += 1
  return i + 1


def speech_frames(n_samples: int, fps: float = VIDEO_FPS, sr: int = SAMPLE_RATE) -> int:
  """Video frames that cover `n_samples` of speech: ceil(duration * fps), at least 1.

  This is the synthesis outputs' length, so no speech is lost. The official inference's count
  (`num_video_frames`) stops at the last full mel window, 0.1-0.2 s before the audio ends; the
  frames past it get the clamped last window (`mel_window_starts`), as in training.
  """
  if fps <= 0:
    raise ValueError(f"fps must be positive, got {fps}")
  # The small tolerance keeps an exact multiple (e.g. 2 s at 25 fps) from gaining a frame.
  return max(1, math.ceil(int(n_samples) * float(fps) / sr - 1e-6))


def mel_window_starts(n_frames: int, n_mel: int, fps: float = VIDEO_FPS, first: int = 0) -> np.ndarray:
  """Start row of the 16-frame mel window of each video frame (Wav2Lip inference rule).

  start_i = int(i * (80 / fps)) (computed as the official code does). Edge rule: a window that
  would run past the end is moved back to the last 16 frames, start = n_mel - 16, which is what
  the official inference does for its final frame; we apply it to every frame past the end so
  any `n_frames` works (e.g. a video longer than its audio keeps the final mouth shape).
  If n_mel < 16 the start is 0 (see `mel_windows` for the padding). `first` > 0 gives the
  starts of frames first .. first + n_frames - 1 (streaming a long clip in chunks).

  Shapes:
    returns (n_frames,) int64.
  """
  step = MEL_FPS / float(fps)
  starts = np.array([int(i * step) for i in range(first, first + n_frames)], dtype=np.int64)
  return np.minimum(starts, max(0, n_mel - MEL_WINDOW))


def mel_windows(mel: np.ndarray, n_frames: int, fps: float = VIDEO_FPS, first: int = 0) -> np.ndarray:
  """One generator window per video frame (frames first .. first + n_frames - 1).

  Window i = mel[s_i : s_i + 16] transposed to (80, 16), s_i from `mel_window_starts`.
  A mel shorter than 16 frames (< 0.19 s of audio; the official code cannot handle it) is
  padded at the end with -4, the normalised value of digital silence, i.e. as if the audio
  went on in silence.

  Shapes:
    mel: (T, 80) -> (n_frames, 80, 16, 1) float32.
  """
  mel = np.asarray(mel, np.float32)
  if mel.ndim != 2 or mel.shape[1] != N_MELS:
    raise ValueError(f"mel must be (T, {N_MELS}), got {mel.shape}")
  if len(mel) < MEL_WINDOW:
    mel = np.pad(mel, ((0, MEL_WINDOW - len(mel)), (0, 0)), constant_values=-MAX_ABS_VALUE)
  starts = mel_window_starts(n_frames, len(mel), fps, first)
  idx = starts[:, None] + np.arange(MEL_WINDOW)[None, :]
  return np.ascontiguousarray(mel[idx].transpose(0, 2, 1)[..., None])


# ---------------------------------------------------------------------------------------------
# PC-AVS (Zhou et al. 2021) audio features: its AudioConfig with the official inference options
# (--hop_size 160 --num_frames_per_clip 5 --frame_rate 25).

PCAVS_N_FFT = 1280            # lws frame size = FFT size (80 ms)
PCAVS_HOP = DUR_HOP           # 160 samples: 100 spectrogram frames per second
PCAVS_FMIN = 125.0            # fmax is FMAX (7600 Hz), 80 Slaney mels like Wav2Lip
PCAVS_RMS = 0.1               # every recording is scaled to this RMS first (eps 1e-4)
PCAVS_BINS_PER_FRAME = 4      # int(16000 / 160 / 25) spectrogram frames per video frame
PCAVS_CLIP_FRAMES = 5         # video frames one window spans (centred on its frame)
PCAVS_WINDOW = PCAVS_BINS_PER_FRAME * PCAVS_CLIP_FRAMES  # 20 spectrogram frames (0.2 s)
PCAVS_FIRST_FRAME = PCAVS_CLIP_FRAMES // 2  # official inference skips video frames 0 and 1


def _pcavs_window() -> np.ndarray:
  """lws's default analysis window: the square root of its half-sample-offset Hann, scaled for
  perfect reconstruction by sqrt(hop / sum(Hann)) (= 0.5 here; checked against lws 1.2.8)."""
  k = np.arange(PCAVS_N_FFT)
  hann = 0.5 - 0.5 * np.cos(np.pi * (2 * k + 1) / PCAVS_N_FFT)
  return np.sqrt(hann * PCAVS_HOP / hann.sum())


def pcavs_num_spec_frames(n_samples: int) -> int:
  """Spectrogram frames lws makes from `n_samples`: ceil(n / 160) + 7.

  lws pads (n_fft - hop) = 1120 zeros on each side, then more zeros on the right up to a whole
  number of hops, and frames every 160 samples; frame m covers samples 160 m - 1120 ..
  160 m + 159, so frame m + 7 is centred on sample 160 m + 80.
  """
  if n_samples < 1:
    raise ValueError(f"need at least one sample, got {n_samples}")
  return -(-int(n_samples) // PCAVS_HOP) + (PCAVS_N_FFT // PCAVS_HOP) - 1


def pcavs_melspectrogram(wav: np.ndarray) -> np.ndarray:
  """PC-AVS's spectrogram of 16 kHz audio, exactly as its test loader computes it.

  RMS-normalise to 0.1 (max(rms, 1e-4)); lws STFT magnitude (frame and FFT 1280, hop 160,
  0.5 x sqrt-Hann window, zero padding, no pre-emphasis); 80 Slaney mels 125-7600 Hz (area norm);
  20 log10(max(1e-5, .)) - 20 dB; clip((S + 100) / 100, 0, 1).

  Shapes:
    wav: (n_samples,) float at 16 kHz -> (pcavs_num_spec_frames(n), 80) float32 in [0, 1].
  """
  x = np.asarray(wav, np.float64).reshape(-1)
  n_frames = pcavs_num_spec_frames(len(x))
  rms = max(1e-4, float(np.sqrt(np.mean(x ** 2))))
  x = x * (PCAVS_RMS / rms)
  pad = PCAVS_N_FFT - PCAVS_HOP
  right = (n_frames - 1) * PCAVS_HOP + PCAVS_N_FFT - len(x) - pad
  x = np.concatenate([np.zeros(pad), x, np.zeros(right)])
  window = _pcavs_window()
  basis = _mel_basis(PCAVS_N_FFT, PCAVS_FMIN).T
  min_level = 10.0 ** (MIN_LEVEL_DB / 20.0)
  frames = np.lib.stride_tricks.sliding_window_view(x, PCAVS_N_FFT)[::PCAVS_HOP]
  out = []
  for f0 in range(0, n_frames, _STFT_BLOCK):  # bounded memory on long recordings
    mag = np.abs(np.fft.rfft(frames[f0:f0 + _STFT_BLOCK] * window, axis=-1))
    db = 20.0 * np.log10(np.maximum(min_level, mag @ basis)) - REF_LEVEL_DB
    out.append(np.clip((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB, 0.0, 1.0).astype(np.float32))
  return np.concatenate(out)


def pcavs_num_frames(n_spec: int) -> int:
  """Video frames PC-AVS's inference generates from `n_spec` spectrogram frames.

  It drives video frames 2 .. n_spec // 4 - 3 (each needs its full centred window), so the
  count is n_spec // 4 - 4 (0 if negative); with `pcavs_num_spec_frames` that is
  (ceil(n_samples / 160) + 7) // 4 - 4, about 3 frames short of duration x 25.
  """
  return max(0, int(n_spec) // PCAVS_BINS_PER_FRAME - 2 * PCAVS_FIRST_FRAME)


def pcavs_windows(spec: np.ndarray) -> np.ndarray:
  """The official per-frame audio inputs of netA_sync.

  Generated frame j (video frame j + 2) gets spec[4 j : 4 j + 20]: the 5 video frames centred
  on it. All windows lie inside the spectrogram, so no padding rule is needed.

  Shapes:
    spec: (T, 80) from `pcavs_melspectrogram` -> (pcavs_num_frames(T), 80, 20, 1) float32
      (mel bins x spectrogram frames x 1: NHWC for `PCAVSAudioSync`).
  """
  spec = np.asarray(spec, np.float32)
  if spec.ndim != 2 or spec.shape[1] != N_MELS:
    raise ValueError(f"spectrogram must be (T, {N_MELS}), got {spec.shape}")
  n = pcavs_num_frames(len(spec))
  idx = (PCAVS_BINS_PER_FRAME * np.arange(n))[:, None] + np.arange(PCAVS_WINDOW)[None, :]
  return np.ascontiguousarray(spec[idx].transpose(0, 2, 1)[..., None])


def pcavs_video_windows(spec: np.ndarray, n_frames: int, first: int = 0) -> np.ndarray:
  """netA_sync windows for video frames first .. first + n_frames - 1 (the backbone's input).

  Video frame i gets spec[4 (i - 2) : 4 (i - 2) + 20], so frames 2 .. equal `pcavs_windows`
  (official inference); where that reaches before the first or past the last spectrogram
  frame (frames 0 and 1, and the last few of a clip) the spectrogram is extended with 0,
  its normalised value of digital silence, so every video frame has a window.

  Shapes:
    spec: (T, 80) from `pcavs_melspectrogram` -> (n_frames, 80, 20, 1) float32.
  """
  spec = np.asarray(spec, np.float32)
  if spec.ndim != 2 or spec.shape[1] != N_MELS:
    raise ValueError(f"spectrogram must be (T, {N_MELS}), got {spec.shape}")
  lead = PCAVS_FIRST_FRAME * PCAVS_BINS_PER_FRAME
  last = int(first) + int(n_frames)
  need = PCAVS_BINS_PER_FRAME * max(last - 1, 0) + PCAVS_WINDOW
  spec = np.pad(spec, ((lead, max(0, need - lead - len(spec))), (0, 0)))
  idx = (PCAVS_BINS_PER_FRAME * np.arange(int(first), last))[:, None] + np.arange(PCAVS_WINDOW)
  return np.ascontiguousarray(spec[idx].transpose(0, 2, 1)[..., None])


# ---------------------------------------------------------------------------------------------
# SyncNet (joonson/syncnet_python) MFCCs: python_speech_features.mfcc defaults

MFCC_FRAME = 400      # 25 ms
MFCC_STEP = 160       # 10 ms -> 100 MFCC frames per second, 4 per 25 fps video frame
MFCC_NFFT = 512
MFCC_FILTERS = 26
MFCC_CEPS = 13
MFCC_LIFTER = 22
SYNCNET_WINDOW = 20   # MFCC frames per 5-video-frame window


def _hz_to_mel_htk(hz):
  return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def _mel_to_hz_htk(mel):
  return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=1)
def _mfcc_filterbank() -> np.ndarray:
  """26 triangular HTK-mel filters, 0-8000 Hz, unit peak, on the 257 rfft bins -> (26, 257)."""
  mels = np.linspace(_hz_to_mel_htk(0.0), _hz_to_mel_htk(SAMPLE_RATE / 2), MFCC_FILTERS + 2)
  bins = np.floor((MFCC_NFFT + 1) * _mel_to_hz_htk(mels) / SAMPLE_RATE)
  fb = np.zeros((MFCC_FILTERS, MFCC_NFFT // 2 + 1))
  k = np.arange(MFCC_NFFT // 2 + 1, dtype=np.float64)
  for j in range(MFCC_FILTERS):
    lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
    rising = (k >= lo) & (k < mid)
    falling = (k >= mid) & (k < hi)
    fb[j, rising] = (k[rising] - lo) / (mid - lo)
    fb[j, falling] = (hi - k[falling]) / (hi - mid)
  return fb


@functools.lru_cache(maxsize=1)
def _dct_ortho() -> np.ndarray:
  """Orthonormal DCT-II matrix, first 13 rows of 26 -> (13, 26)."""
  n = MFCC_FILTERS
  k = np.arange(MFCC_CEPS)[:, None]
  i = np.arange(n)[None, :]
  m = np.cos(np.pi * k * (2 * i + 1) / (2 * n)) * np.sqrt(2.0 / n)
  m[0] /= np.sqrt(2.0)
  return m


def to_int16_scale(wav: np.ndarray) -> np.ndarray:
  """Samples on SyncNet's int16 scale as float64: int input as is, float [-1, 1] x 32768."""
  wav = np.asarray(wav)
  if np.issubdtype(wav.dtype, np.integer):
    return wav.astype(np.float64)
  # SyncNet reads an int16 wav written by ffmpeg: round and saturate like that conversion.
  return np.clip(np.round(wav.astype(np.float64) * 32768.0), -32768, 32767)


def syncnet_mfcc(wav) -> np.ndarray:
  """MFCCs exactly as python_speech_features.mfcc(signal, 16000) with its defaults.

  Pre-emphasis 0.97 (first sample kept); 400-sample frames every 160 samples, rectangular
  window, 1 + ceil((N - 400) / 160) frames (1 if N <= 400) with zero padding at the end;
  power spectrum |rfft_512|^2 / 512; 26 HTK-mel filters 0-8000 Hz; log (zeros -> float eps);
  orthonormal DCT-II, first 13; lifter 1 + 11 sin(pi n / 22); c0 := log(frame energy).

  Shapes:
    wav: (n_samples,) at 16 kHz, int16 values or float in [-1, 1] (scaled by 32768, see
      `to_int16_scale`) -> (n_frames, 13) float32, 100 frames per second.
  """
  x = to_int16_scale(wav)
  if x.ndim != 1 or x.size == 0:
    raise UserError(f"syncnet_mfcc needs a non-empty 1-D signal, got shape {x.shape}")
  x = _preemphasis(x, PREEMPHASIS)
  n = len(x)
  n_frames = 1 if n <= MFCC_FRAME else 1 + int(math.ceil((n - MFCC_FRAME) / MFCC_STEP))
  padded = np.zeros((n_frames - 1) * MFCC_STEP + MFCC_FRAME)
  padded[:n] = x
  frames = np.lib.stride_tricks.sliding_window_view(padded, MFCC_FRAME)[::MFCC_STEP][:n_frames]
  power = np.abs(np.fft.rfft(frames, MFCC_NFFT, axis=-1)) ** 2 / MFCC_NFFT
  eps = np.finfo(np.float64).eps
  energy = power.sum(axis=1)
  energy = np.where(energy == 0, eps, energy)
  feat = power @ _mfcc_filterbank().T
  feat = np.log(np.where(feat == 0, eps, feat))
  ceps = feat @ _dct_ortho().T
  ceps *= 1.0 + (MFCC_LIFTER / 2.0) * np.sin(np.pi * np.arange(MFCC_CEPS) / MFCC_LIFTER)
  ceps[:, 0] = np.log(energy)
  return ceps.astype(np.float32)


def syncnet_num_windows(n_video_frames: int, n_samples: int) -> int:
  """Number of 5-frame windows SyncNet's evaluation scores (syncnet_python's rule).

  min_length = min(n_video_frames, n_samples // 640); windows v = 0 .. min_length - 6
  (the official loop leaves out the last possible window).
  """
  return max(0, min(n_video_frames, n_samples // 640) - 5)


def syncnet_mfcc_windows(mfcc: np.ndarray, n_windows: int) -> np.ndarray:
  """SyncNet audio inputs: window v = MFCC frames 4v .. 4v+19 (video frames v .. v+4).

  Shapes:
    mfcc: (T, 13) -> (n_windows, 13, 20, 1) float32.
  """
  mfcc = np.asarray(mfcc, np.float32)
  need = 4 * (n_windows - 1) + SYNCNET_WINDOW if n_windows > 0 else 0
  if len(mfcc) < need:
    raise ValueError(f"{n_windows} windows need {need} MFCC frames, got {len(mfcc)}")
  idx = 4 * np.arange(n_windows)[:, None] + np.arange(SYNCNET_WINDOW)[None, :]
  return np.ascontiguousarray(mfcc[idx].transpose(0, 2, 1)[..., None])
