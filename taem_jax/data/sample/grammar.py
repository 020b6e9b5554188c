"""GRID's sentence grammar: six slots, fixed word lists, and GRID's six-letter utterance ids.

A GRID sentence is `command colour preposition letter digit adverb`, e.g. "bin blue at f two
now"; the corpus names the clip after the first character of each word ("bbaf2n"). Letters run
A-Z without W (its name has three syllables), digits are spoken as words. The word lists and
the pronunciation rule live in `taem_jax.text.grid_grammar` (the text front end uses them too).
"""
import numpy as np

from taem_jax.text import g2p, grid_grammar
from taem_jax.text.grid_grammar import (ADVERBS, COLOURS, COMMANDS, DIGITS, LETTER_NAMES,
                                        LETTERS, PREPOSITIONS, SLOTS)

__all__ = ["ADVERBS", "COLOURS", "COMMANDS", "DIGITS", "LETTERS", "LETTER_NAMES", "N_SENTENCES",
           "PREPOSITIONS", "SLOTS", "sample_sentences", "sentence", "utterance_id",
           "word_phonemes"]
N_SENTENCES = int(np.prod([len(s) for s in SLOTS]))  # 64000


def utterance_id(words) -> str:
  """GRID's clip name: first character of each word, digits as numerals ("bbaf2n")."""
  words = list(words)
  if len(words) != 6:
    raise ValueError(f"a GRID sentence has 6 words, got {words}")
  return "".join(str(DIGITS.index(w)) if i == 4 else w[0] for i, w in enumerate(words))


def sentence(index: int) -> tuple[str, ...]:
  """The `index`-th of the 64000 grammatical sentences (mixed-radix decoding)."""
  if not 0 <= index < N_SENTENCES:
    raise ValueError(f"sentence index must be in [0, {N_SENTENCES}), got {index}")
  words = []
  for slot in reversed(SLOTS):
    index, k = divmod(index, len(slot))
    words.append(slot[k])
  return tuple(reversed(words))


def sample_sentences(rng: np.random.Generator, n: int) -> list[tuple[str, ...]]:
  """`n` distinct sentences drawn uniformly without replacement (distinct utterance ids)."""
  if n > N_SENTENCES:
    raise ValueError(f"at most {N_SENTENCES} distinct GRID sentences, asked for {n}")
  picks = rng.choice(N_SENTENCES, size=n, replace=False)
  return [sentence(int(i)) for i in picks]


def word_phonemes(words) -> list[tuple[str, ...]]:
  """ARPAbet (with stress digits) of each word of a GRID sentence, letters read as names.

  The pronunciations of `g2p.g2p_words` for the same sentence (both use
  `text.grid_grammar.word_phonemes`); words outside the grammar go through the g2p.
  """
  words = list(words)
  if len(words) == len(SLOTS):
    return grid_grammar.word_phonemes(words, g2p.word_to_phonemes)
  return [LETTER_NAMES[w.lower()] if len(w) == 1 and w.lower() in LETTER_NAMES
          else tuple(g2p.word_to_phonemes(w)) for w in words]
