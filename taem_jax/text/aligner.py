"""The phoneme aligner: one entry point (`align`) for every place that needs phone timings.

Used wherever a corpus gives no phone timings (LRS2, phones inside GRID's `.align` words,
TCD-TIMIT without labels: `taem_jax.data.prepare`) and by editing's word-span search
(`taem_jax.synthesis.editing`). MFA TextGrids, when present, are read instead (prepare.py).

Two methods, chosen by `align(..., method=...)`:

* `"sphinx"` (the default): forced alignment with PocketSphinx's en-us acoustic model, trained
  on real speech (`taem_jax.text.sphinx`). With word spans (GRID `.align`), the phone
  boundaries inside each word are mapped linearly from PocketSphinx's word span onto the given
  span, so the corpus's word timings are kept and only the phones inside come from the model.
* `"dtw"`: the older built-in aligner, DTW against an espeak-ng rendering (below). Its remaining
  jobs: the baseline that `evaluate_aligner` compares against on the same recordings, and an
  aligner for machines where pocketsphinx cannot be installed (it needs only espeak-ng). It is
  much less accurate on real speech (see `evaluate_aligner`) and never chosen silently.

DTW method. Idea: speak the transcript with espeak-ng phoneme by phoneme
(`espeak.synthesize_phonemes`,
whose events give the rendering's exact phoneme boundaries), compute the same features for the
rendering and for the real recording, align the two feature sequences with dynamic time warping
(DTW), and carry the rendering's phoneme boundaries through the warping path onto the recording.

Features: MFCCs made from the project's 100 fps mel (`taem_jax.audio.duration_mel`): an
orthonormal DCT-II over its 80 log-mel bands, coefficients 0..7 (`N_CEPS`), plus their time
derivatives, each normalised to zero mean and unit variance per utterance (removes most of the
speaker and channel difference between espeak and the recording). Only the first 8 cepstra are
kept because the 80-band mel resolves low pitch harmonics, which land in the higher cepstra and
differ between speakers: with 20 cepstra a female variant (en-us+f3) was aligned with a 28 ms
median / 71 ms mean boundary error, with 8 cepstra 7 / 9 ms (4 test sentences).

DTW: Euclidean frame distances, steps (1,1), (1,0), (0,1) with the diagonal step weighted 2
(the symmetric form, so a path is not rewarded for taking fewer steps), full begin/end anchoring.
With word spans (GRID `.align`), cells pairing frames of different words are forbidden (a small
slack of `SPAN_SLACK` frames either side absorbs the quantisation of the spans), so the search is
confined to each word's own time span.

Boundary mapping: each rendering frame i gets the mean recording frame f(i) of the path cells
paired with it; a rendering boundary at t seconds maps to f(100 t) / 100 seconds (linear
interpolation between frames). Durations then follow `alignments.boundaries_to_durations`: they
sum exactly to the recording's mel length and are >= 1 frame each whenever possible.

Accuracy of both methods, on real speech and on espeak renderings:
`python experiments/evaluate_aligner.py` (numbers in the module `evaluate_aligner`).
"""
import dataclasses
import functools

import numpy as np

from taem_jax import audio
from taem_jax.errors import UserError
from taem_jax.text import alignments as A
from taem_jax.text import espeak, g2p, sphinx
from taem_jax.text import phonemes as P

METHODS = ("sphinx", "dtw")
DEFAULT_METHOD = "sphinx"
N_CEPS = 8
SPAN_SLACK = 3  # frames
_FORBIDDEN = 1e6


@dataclasses.dataclass(frozen=True)
class Alignment:
  """Phoneme labels with integer durations in 100 fps frames (sum = the clip's mel length)."""
  labels: list
  durations: np.ndarray  # (K,) int32
  intervals: list  # list[alignments.Interval], from the integer durations

  @property
  def n_frames(self) -> int:
    return int(self.durations.sum())


@functools.lru_cache(maxsize=1)
def _dct_matrix(n_in: int = 80, n_out: int = N_CEPS) -> np.ndarray:
  k = np.arange(n_out)[:, None]
  i = np.arange(n_in)[None, :]
  m = np.cos(np.pi * k * (2 * i + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
  m[0] /= np.sqrt(2.0)
  return m.T.astype(np.float32)  # (80, n_out)


def features(wav16k: np.ndarray) -> np.ndarray:
  """Per-utterance normalised MFCC + delta features at 100 fps.

  Shapes:
    wav16k: (n,) float32 at 16 kHz -> (1 + n // 160, 2 * N_CEPS) float32.
  """
  mel = audio.duration_mel(wav16k)  # (T, 80), log-mel scaled to [-4, 4]
  c = mel @ _dct_matrix()
  # Central-difference delta; edges repeat the neighbour.
  d = np.gradient(c, axis=0) if len(c) > 1 else np.zeros_like(c)
  f = np.concatenate([c, d], axis=1)
  f = (f - f.mean(0)) / (f.std(0) + 1e-5)
  return f.astype(np.float32)


def _dtw_path(cost: np.ndarray) -> np.ndarray:
  """Symmetric DTW (diagonal weight 2); returns the path as (L, 2) pairs in increasing order."""
  import librosa  # lazy: librosa takes seconds to import (numba)
  _, wp = librosa.sequence.dtw(C=cost, step_sizes_sigma=np.array([[1, 1], [0, 1], [1, 0]]),
                               weights_mul=np.array([2.0, 1.0, 1.0]), subseq=False,
                               backtrack=True)
  return np.asarray(wp[::-1])


def _units_of(words) -> list[list[str]]:
  units = []
  for w in words:
    if hasattr(w, "phonemes"):
      w = w.phonemes
    if isinstance(w, str):
      w = [w]
    w = [p for p in w if p]
    if w:
      units.append(list(w))
  if not units:
    raise UserError("nothing to align: the phoneme sequence is empty")
  return units


def align(wav16k: np.ndarray, words, *, spans=None, method: str = DEFAULT_METHOD,
          **dtw_options) -> Alignment:
  """Aligns phonemes to a 16 kHz recording with `method` ("sphinx" or "dtw").

  Args:
    wav16k: the recording, float32 mono at 16 kHz.
    words: the utterance as words: `g2p.Word`s (e.g. `g2p_words(text)`), lists of ARPAbet
      symbols, or pause tokens; stress digits are kept in the labels.
    spans: optional (start_s, end_s) of every word in the recording (e.g. from a GRID .align).
    method: "sphinx" (forced aligner, the default) or "dtw" (see the module docstring).
    **dtw_options: `voice`, `rate` of the DTW method's espeak rendering.

  Returns:
    An `Alignment` whose durations sum to `alignments.n_mel_frames(len(wav16k))`.

  Shapes:
    wav16k: (n,) float32.
  """
  if method == "dtw":
    return align_dtw(wav16k, words, spans=spans, **dtw_options)
  if method != "sphinx":
    raise UserError(f"unknown aligner {method!r}: use one of {', '.join(METHODS)}")
  units, wav16k, n_frames = _check(wav16k, words, spans)
  if len(wav16k) < sphinx.MIN_SAMPLES:
    raise UserError(f"recording too short to align ({len(wav16k)} samples)")
  b = sphinx.align_boundaries(wav16k, units)
  if spans is not None:
    b = _onto_spans(b, units, spans)
  b[0], b[-1] = 0.0, n_frames
  b = np.maximum.accumulate(np.clip(b, 0.0, n_frames))
  d = A.boundaries_to_durations(b, n_frames)
  labels = [p for u in units for p in u]
  return Alignment(labels, d, A.durations_to_intervals(labels, d))


def _check(wav16k, words, spans):
  units = _units_of(words)
  wav16k = np.asarray(wav16k, np.float32)
  if wav16k.ndim != 1:
    raise UserError(f"aligner needs a mono waveform, got shape {wav16k.shape}")
  n_frames = A.n_mel_frames(len(wav16k))
  if spans is not None and len(spans) != len(units):
    raise UserError(f"{len(spans)} word spans for {len(units)} words")
  if n_frames < 2 or len(wav16k) <= 512:
    raise UserError(f"recording too short to align ({len(wav16k)} samples)")
  return units, wav16k, n_frames


def _onto_spans(b: np.ndarray, units, spans) -> np.ndarray:
  """Moves each word's boundaries linearly from the aligner's word span onto the given span."""
  out = b.copy()
  k = 0
  for u, (s, e) in zip(units, spans):
    lo, hi = b[k], b[k + len(u)]
    s, e = s * A.FPS, e * A.FPS
    x = b[k:k + len(u)]
    out[k:k + len(u)] = s + (x - lo) * ((e - s) / (hi - lo) if hi > lo else 0.0)
    k += len(u)
  out[-1] = spans[-1][1] * A.FPS
  return out


def align_dtw(wav16k: np.ndarray, words, *, spans=None, voice: str = "en-us",
              rate: int = 175) -> Alignment:
  """Aligns phonemes to a 16 kHz recording by DTW against an espeak-ng rendering.

  Args:
    wav16k: the recording, float32 mono at 16 kHz.
    words: the utterance as words: `g2p.Word`s (e.g. `g2p_words(text)`), lists of ARPAbet
      symbols, or pause tokens; stress digits help espeak's prosody and are kept in the labels.
    spans: optional (start_s, end_s) of every word in the recording (e.g. from a GRID .align);
      restricts the warping path to those spans.
    voice, rate: the espeak-ng voice and speaking rate of the reference rendering.

  Returns:
    An `Alignment` whose durations sum to `alignments.n_mel_frames(len(wav16k))`.

  Shapes:
    wav16k: (n,) float32.
  """
  units, wav16k, n_frames = _check(wav16k, words, spans)
  n_ph = sum(len(u) for u in units)
  ref = espeak.synthesize_phonemes(units, voice=voice, rate=rate)
  ref16 = audio.load_audio(ref.wav, sr=audio.SAMPLE_RATE, orig_sr=ref.sr)
  fa, fb = features(ref16), features(wav16k)
  cost = np.sqrt(np.maximum(((fa[:, None, :] - fb[None, :, :]) ** 2).sum(-1), 0.0))
  if spans is not None:
    cost = cost + _span_mask(units, ref.phonemes, spans, len(fa), len(fb))
  path = _dtw_path(cost.astype(np.float64))
  # f(i): mean recording frame paired with rendering frame i.
  sums = np.bincount(path[:, 0], weights=path[:, 1], minlength=len(fa))
  counts = np.bincount(path[:, 0], minlength=len(fa))
  f = sums / np.maximum(counts, 1)
  ref_bounds = np.array([0.0] + [e.start for e in ref.phonemes[1:]] + [ref.phonemes[-1].end])
  x = ref_bounds * A.FPS
  rec = np.interp(x, np.arange(len(fa)), f)
  rec[0], rec[-1] = 0.0, n_frames
  rec = np.maximum.accumulate(rec)
  d = A.boundaries_to_durations(rec, n_frames)
  labels = [p for u in units for p in u]
  assert len(labels) == n_ph == len(d)
  return Alignment(labels, d, A.durations_to_intervals(labels, d))


def _span_mask(units, ref_events, spans, n_ref, n_rec) -> np.ndarray:
  """Additive cost: 0 where rendering frame i and recording frame j are in the same word."""
  idx, starts = 0, []
  for u in units:
    starts.append(ref_events[idx].start)
    idx += len(u)
  ref_frames = np.arange(n_ref) / A.FPS
  ref_word = np.searchsorted(np.asarray(starts), ref_frames, side="right") - 1
  ref_word = np.clip(ref_word, 0, len(units) - 1)
  mask = np.full((n_ref, n_rec), _FORBIDDEN)
  for w, (s, e) in enumerate(spans):
    lo = max(0, int(np.floor(s * A.FPS)) - SPAN_SLACK)
    hi = min(n_rec, int(np.ceil(e * A.FPS)) + SPAN_SLACK)
    if w == 0:
      lo = 0
    if w == len(units) - 1:
      hi = n_rec
    rows = ref_word == w
    mask[np.ix_(rows, np.arange(lo, hi))] = 0.0
  return mask


def align_text(wav16k: np.ndarray, text: str, **kwargs) -> Alignment:
  """`align` with the words of `text` (g2p, pause tokens and edge `sil` included)."""
  return align(wav16k, g2p.g2p_words(text), **kwargs)


def align_words(wav16k: np.ndarray, word_intervals, **kwargs) -> Alignment:
  """Aligns phonemes inside known word spans (GRID `.align`, MFA words tier).

  Each non-pause word gets its g2p pronunciation; pauses stay pause tokens; each word's
  phonemes are confined to that word's span (DTW: plus `SPAN_SLACK` frames).
  """
  units, spans = [], []
  for iv in word_intervals:
    if P.is_pause(iv.label):
      units.append([iv.label])
    else:
      ph = list(g2p.word_to_phonemes(iv.label))
      if not ph:
        raise UserError(f"word {iv.label!r} has no pronunciation")
      units.append(ph)
    spans.append((iv.start, iv.end))
  return align(wav16k, units, spans=spans, **kwargs)
