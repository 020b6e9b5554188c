"""One text->phoneme path: a typed GRID sentence gives its clip's training phonemes exactly."""
import numpy as np
import pytest

from taem_jax.data import prepare
from taem_jax.data.sample import grammar
from taem_jax.text import alignments as A, g2p, grid_grammar
from taem_jax.text import phonemes as P

N_SAMPLE = 2000  # of the 64000 sentences; every letter, digit and slot word is drawn many times


def _align_text(words, rng) -> str:
  """A GRID-style .align for `words` (1/25000 s), with `sp` pauses where a speaker paused."""
  t, lines = 0, []
  lines.append(f"0 {(t := int(rng.integers(5000, 20000)))} sil")
  for w in words:
    if rng.random() < 0.3:
      d = int(rng.integers(500, 4000))
      lines.append(f"{t} {t + d} sp")
      t += d
    d = int(rng.integers(5000, 15000))
    lines.append(f"{t} {t + d} {w}")
    t += d
  lines.append(f"{t} {t + 10000} sil")
  return "\n".join(lines) + "\n"


def _training_phonemes(align_text: str, stress: bool) -> list[str]:
  """The label sequence the GRID builder makes from a clip's .align (prepare's own steps)."""
  ivs = A.read_grid_align(align_text)
  spoken = [iv.label for iv in ivs if not P.is_pause(iv.label)]
  units = prepare.pronounce_transcript(spoken, grid_grammar=True)
  assert A.spans_for_units(ivs, units) is not None
  return [P.normalize_symbol(p, stress) for u in units for p in u.phonemes]


def _typed(words, rng) -> str:
  """How a user might type the sentence: case, digits as numerals, final punctuation."""
  w = list(words)
  if rng.random() < 0.5:
    w[4] = str(grammar.DIGITS.index(w[4]))
  if rng.random() < 0.5:
    w[3] = w[3].upper()
  s = " ".join(w)
  s = s[0].upper() + s[1:] if rng.random() < 0.5 else s
  return s + str(rng.choice(["", ".", "!", "?"]))


def test_typed_grid_sentences_get_the_training_phonemes():
  rng = np.random.default_rng(0)
  sentences = grammar.sample_sentences(rng, N_SAMPLE)
  letters = {s[3] for s in sentences}
  assert letters == set(grammar.LETTERS)  # the sample covers every letter name
  for stress in (False, True):
    for words in sentences[:N_SAMPLE if stress is False else 200]:
      train = _training_phonemes(_align_text(words, rng), stress)
      typed = _typed(words, rng)
      infer = g2p.text_to_phonemes(typed, stress=stress)
      assert infer == train, (typed, infer, train)
      assert train[0] == train[-1] == P.SIL and P.SP not in train


@pytest.mark.slow
def test_every_grid_sentence_gets_the_training_phonemes():
  rng = np.random.default_rng(1)
  for i in range(grammar.N_SENTENCES):
    words = grammar.sentence(i)
    train = _training_phonemes(_align_text(words, rng), False)
    assert g2p.text_to_phonemes(_typed(words, rng)) == train, words


def test_letter_slot_is_the_letter_name_and_plain_text_is_unchanged():
  words = g2p.g2p_words("Bin blue at A 2 now.")
  assert [w.phonemes for w in words][4] == ("EY1",)
  assert grid_grammar.is_sentence("bin blue at a two now".split())
  assert not grid_grammar.is_sentence("bin blue at a two".split())
  # Outside the grammar "a" is the article, and typed commas still give pauses.
  assert g2p.text_to_phonemes("I saw a cat")[4] == "AH"
  assert "sp" in g2p.text_to_phonemes("Bin blue, at A 2 now.")


def test_sample_corpus_uses_the_same_pronunciations():
  rng = np.random.default_rng(1)
  for words in grammar.sample_sentences(rng, 200):
    via_text = [w.phonemes for w in g2p.g2p_words(" ".join(words), edges=False)]
    assert grammar.word_phonemes(words) == via_text
