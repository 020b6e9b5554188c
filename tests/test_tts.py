"""The Flite TTS of the evaluation's cascade baseline (taem_jax.text.flite): phones said at given
durations, one-line errors. Needs Debian's flite (`bash setup.sh --test` installs it)."""
import numpy as np
import pytest

from taem_jax.errors import UserError
from taem_jax.text import flite

needs_flite = pytest.mark.skipif(not flite.available(),
                                 reason="flite not installed (apt-get install flite)")

# "bin blue" with pauses: ARPAbet with stress digits as the datasets store them.
PHONES = ["sil", "B", "IH1", "N", "sp", "B", "L", "UW1", "sil"]
DURS = np.array([25, 7, 11, 8, 15, 6, 9, 17, 30])  # 100 fps frames


def _rms(x):
  return float(np.sqrt(np.mean(np.square(x)) + 1e-12))


@needs_flite
def test_speech_has_the_sum_of_the_durations():
  wav, sr = flite.speak_phonemes(PHONES, DURS)
  assert sr == 16000 and wav.dtype == np.float32
  assert abs(len(wav) - DURS.sum() / 100 * sr) <= sr / 100  # within one 10 ms frame
  # Other durations, other length: the stretch follows the given durations.
  wav2, _ = flite.speak_phonemes(PHONES, DURS * 2)
  assert abs(len(wav2) - 2 * DURS.sum() / 100 * sr) <= sr / 100


@needs_flite
def test_voiced_phones_are_louder_than_the_pauses():
  wav, sr = flite.speak_phonemes(PHONES, DURS)
  edges = np.concatenate([[0], np.cumsum(DURS)]) * sr // 100
  seg = {i: wav[edges[i]:edges[i + 1]] for i in range(len(PHONES))}
  vowels = [_rms(seg[i]) for i in (2, 7)]  # IH1, UW1
  pauses = [_rms(seg[i][sr // 100:-sr // 100]) for i in (0, 4, 8)]  # pause cores
  assert min(vowels) > 5 * max(pauses), (vowels, pauses)
  # Speech-like: a vowel has a periodic (pitched) waveform, autocorrelation peak at 2.5-10 ms.
  v = seg[2] - seg[2].mean()
  ac = np.correlate(v, v, "full")[len(v) - 1:]
  lag = 40 + int(np.argmax(ac[40:160]))
  assert ac[lag] > 0.3 * ac[0]


@needs_flite
def test_phone_timings_come_from_flite():
  wav, sr, bounds = flite.synthesize_phones(PHONES)
  assert len(bounds) == len(PHONES) + 1 and bounds[0] == 0
  assert np.all(np.diff(bounds) >= 0) and bounds[-1] == pytest.approx(len(wav) / sr, abs=0.02)


def test_one_line_errors(monkeypatch):
  with pytest.raises(UserError, match="3 durations for 9 phonemes"):
    flite.speak_phonemes(PHONES, [1, 2, 3])
  monkeypatch.setattr(flite.shutil, "which", lambda name: None)
  with pytest.raises(UserError, match="apt-get install flite"):
    flite.speak_phonemes(PHONES, DURS)
  assert not flite.available()


def test_symbols_map_to_flite_phones():
  assert [flite.to_flite(p) for p in ("sil", "sp", "AH0", "ng", "UW1")] == \
      ["pau", "pau", "ah", "ng", "uw"]
