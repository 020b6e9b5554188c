"""The DTW aligner (`aligner.align_dtw`) against espeak renderings whose true boundaries are known."""
import numpy as np
import pytest

from taem_jax import audio
from taem_jax.errors import UserError
from taem_jax.text import aligner, alignments as A, espeak, g2p_words

SENTENCES = ["Place green by D two please.", "She sells sea shells by the sea shore.",
             "We will meet at the station at half past seven."]


def _truth(words, **voice):
  s = espeak.synthesize_phonemes([w.phonemes for w in words], **voice)
  wav = audio.load_audio(s.wav, orig_sr=s.sr)
  return wav, [A.Interval(e.name, e.start, e.end) for e in s.phonemes], s


def test_aligner_boundary_error_and_exact_frame_count():
  errs = []
  for k, text in enumerate(SENTENCES):
    words = g2p_words(text)
    voice = [dict(voice="en-us+f3", rate=150, pitch=70), dict(voice="en", rate=200),
             dict(voice="en-us+klatt", rate=140, pitch=30)][k]
    wav, truth, _ = _truth(words, **voice)
    al = aligner.align_dtw(wav, words)
    n = len(audio.duration_mel(wav))
    assert al.n_frames == n == A.n_mel_frames(len(wav))
    assert al.durations.min() >= 1
    assert al.labels == [p for w in words for p in w.phonemes]
    errs.append(A.frame_boundary_error_ms(truth, al.intervals))
  e = np.concatenate(errs)
  assert np.median(e) < 40.0, np.median(e)
  assert np.mean(e <= 40.0) > 0.8


def test_aligner_is_not_trivially_right():
  # A wrong transcript must align worse than the right one (the test can fail).
  words = g2p_words(SENTENCES[1])
  wav, truth, _ = _truth(words, voice="en-us+m3", rate=220)
  good = A.frame_boundary_error_ms(truth, aligner.align_dtw(wav, words).intervals)
  uniform = A.boundaries_to_durations(np.linspace(0, A.n_mel_frames(len(wav)), len(truth) + 1),
                                      A.n_mel_frames(len(wav)))
  base = A.frame_boundary_error_ms(truth, A.durations_to_intervals(
      [t.label for t in truth], uniform))
  assert np.median(good) < 0.5 * np.median(base)


def test_word_constrained_alignment_stays_in_spans():
  words = g2p_words("bin blue at F two now.")
  wav, truth, s = _truth(words, voice="en-us+f2", rate=160, pitch=60)
  # Word spans as a GRID .align would give them (pauses included as words).
  k = 0
  word_ivs = []
  for w in words:
    first, last = truth[k], truth[k + len(w.phonemes) - 1]
    label = w.phonemes[0] if w.is_pause else w.text.lower()
    word_ivs.append(A.Interval(label, first.start, last.end))
    k += len(w.phonemes)
  al = aligner.align_words(wav, word_ivs, method="dtw")
  assert al.n_frames == A.n_mel_frames(len(wav))
  e = A.frame_boundary_error_ms(truth, al.intervals)
  assert np.median(e) < 30.0
  # Each phoneme lies inside its word's span (+- slack and rounding).
  k = 0
  for w, wi in zip(words, word_ivs):
    for p in al.intervals[k:k + len(w.phonemes)]:
      assert p.start >= wi.start - 0.045 and p.end <= wi.end + 0.045
    k += len(w.phonemes)


def test_bad_inputs():
  with pytest.raises(UserError, match="too short"):
    aligner.align_dtw(np.zeros(100, np.float32), [["K", "AE1", "T"]])
  with pytest.raises(UserError, match="empty"):
    aligner.align_dtw(np.zeros(16000, np.float32), [])
  with pytest.raises(UserError, match="word spans"):
    aligner.align_dtw(np.zeros(16000, np.float32), [["K"], ["AE1"]], spans=[(0, 1)])
