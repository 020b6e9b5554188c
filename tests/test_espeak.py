"""The espeak-ng binding: synthesis, event timing, phoneme-exact mode, WSOLA stretch, threads."""
import threading

import numpy as np
import pytest

from taem_jax.errors import UserError
from taem_jax.text import espeak, g2p_words

if not espeak.available():
  pytest.fail("libespeak-ng is expected in this environment (setup.sh installs it)")


def test_text_synthesis_events_tile_the_audio():
  s = espeak.synthesize("The quick brown fox jumps over the lazy dog.")
  assert s.sr == 22050 and s.wav.dtype == np.float32
  assert 1.5 < len(s.wav) / s.sr < 4.0
  assert np.abs(s.wav).max() > 0.05
  total = sum(e.dur for e in s.phonemes)
  assert total == pytest.approx(len(s.wav) / s.sr, abs=1e-6)
  assert s.phonemes[0].start == 0.0
  assert all(a.end == pytest.approx(b.start) for a, b in zip(s.phonemes, s.phonemes[1:]))
  assert [w.name for w in s.words] == "The quick brown fox jumps over the lazy dog".split()
  # Word spans are ordered and inside the audio.
  assert all(a.start < b.start for a, b in zip(s.words, s.words[1:]))
  assert s.words[-1].end <= len(s.wav) / s.sr + 1e-6
  wav, sr, ph, words = s  # unpacks
  assert sr == 22050 and len(ph) > 25


def test_rate_and_voice_change_the_output():
  slow = espeak.synthesize("hello there", rate=100)
  fast = espeak.synthesize("hello there", rate=300)
  assert len(slow.wav) > 1.8 * len(fast.wav)
  male = espeak.synthesize("hello there", voice="en-us")
  female = espeak.synthesize("hello there", voice="en-us+f3", pitch=70)
  assert not np.array_equal(male.wav[:1000], female.wav[:1000])
  assert "en-US" in espeak.list_voices()
  assert "f3" in espeak.list_variants()


def test_bad_voice_and_empty_text():
  with pytest.raises(UserError, match="unknown espeak-ng voice"):
    espeak.synthesize("hi", voice="xx-nonexistent")
  with pytest.raises(UserError, match="empty text"):
    espeak.synthesize("  ")
  with pytest.raises(UserError, match="cannot speak phoneme"):
    espeak.synthesize_phonemes(["K", "QQ"])


@pytest.mark.parametrize("voice", ["en-us", "en-us+f3", "en", "en-us+klatt"])
def test_phoneme_exact_mode_is_one_to_one(voice):
  words = g2p_words("She sells sea shells, by the sea shore. I refuse!")
  units = [w.phonemes for w in words]
  flat = [p for u in units for p in u]
  s = espeak.synthesize_phonemes(units, voice=voice)
  assert [e.name for e in s.phonemes] == flat
  assert sum(e.dur for e in s.phonemes) == pytest.approx(len(s.wav) / s.sr, abs=1e-6)
  # Every phoneme got real time (espeak spoke all of them).
  assert min(e.dur for e in s.phonemes) > 0.005
  assert [w.name for w in s.words][:2] == ["SH IY1", "S EH1 L Z"]


def test_phoneme_exact_flat_input_and_pause_lengths():
  s = espeak.synthesize_phonemes(["sil", "HH", "AH0", "L", "OW1", "sp", "W", "ER1", "L", "D",
                                  "sil"])
  assert len(s.phonemes) == 11
  d = {e.name: e.dur for e in s.phonemes}
  assert d["sp"] > 0.01


def test_stretch_segments_hits_target_lengths():
  s = espeak.synthesize_phonemes([["sil"], ["HH", "AH0", "L", "OW1"], ["sil"]])
  src = [0.0] + [e.end for e in s.phonemes]
  target = [0.2, 0.05, 0.3, 0.02, 0.4, 0.1]
  y = espeak.stretch_segments(s.wav, s.sr, src, target)
  assert len(y) == round(sum(target) * s.sr)
  assert np.all(np.isfinite(y)) and np.abs(y).max() < 1.5
  # The long vowel segment (OW, 0.4 s) carries energy; the silences stay near silent.
  seg = lambda a, b: y[int(a * s.sr):int(b * s.sr)]  # noqa: E731
  b = np.cumsum([0] + target)
  rms = [float(np.sqrt(np.mean(seg(b[k], b[k + 1]) ** 2))) for k in range(len(target))]
  assert rms[4] > 10 * max(rms[0], 1e-4)
  # Identity warp reproduces the input closely.
  same = espeak.stretch_segments(s.wav, s.sr, src, np.diff(src))
  err = np.abs(same[2000:-2000] - s.wav[2000:len(same) - 2000]).max()
  assert err < 0.05 * np.abs(s.wav).max()


def test_threads_get_their_own_results():
  texts = ["one two three", "a much longer sentence spoken by another thread right now"]
  expected = {t: len(espeak.synthesize(t).wav) for t in texts}
  got, errors = [], []

  def worker(t):
    try:
      for _ in range(3):
        got.append((t, len(espeak.synthesize(t).wav)))
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=worker, args=(t,)) for t in texts * 2]
  for th in threads:
    th.start()
  for th in threads:
    th.join()
  assert not errors
  # espeak's output length varies by a few hundred samples from call to call; a mix-up between
  # the two texts would change it by a factor of ~3.
  assert len(got) == 12 and all(abs(n - expected[t]) < 0.05 * expected[t] for t, n in got)
