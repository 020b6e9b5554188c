"""GRID's sentence grammar: six slots, fixed word lists, and GRID's six-letter utterance ids.

A GRID sentence is `command colour preposition letter digit adverb`, e.g. "bin blue at f two
now"; the corpus names the clip after the first character of each word ("bbaf2n"). Letters run
A-Z without W (its name has three syllables), digits are spoken as words.
"""
import numpy as np

from taem_jax.text import g2p

COMMANDS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple(c for c in "abcdefghijklmnopqrstuvxyz")  # no 'w'
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")

SLOTS = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
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

# English letter names in ARPAbet (what a GRID speaker says for the letter slot). The g2p would
# read a lone "a" as the article /AH0/, so the letter slot is looked up here instead.
LETTER_NAMES = {
    "a": ("EY1",), "b": ("B", "IY1"), "c": ("S", "IY1"), "d": ("D", "IY1"), "e": ("IY1",),
    "f": ("EH1", "F"), "g": ("JH", "IY1"), "h": ("EY1", "CH"), "i": ("AY1",),
    "j": ("JH", "EY1"), "k": ("K", "EY1"), "l": ("EH1", "L"), "m": ("EH1", "M"),
    "n": ("EH1", "N"), "o": ("OW1",), "p": ("P", "IY1"), "q": ("K", "Y", "UW1"),
    "r": ("AA1", "R"), "s": ("EH1", "S"), "t": ("T", "IY1"), "u": ("Y", "UW1"),
    "v": ("V", "IY1"), "x": ("EH1", "K", "S"), "y": ("W", "AY1"), "z": ("Z", "IY1"),
}


def word_phonemes(words) -> list[tuple[str, ...]]:
  """ARPAbet (with stress digits) of each word of a GRID sentence, letters read as names.

  The six-word grammar fixes the slot of every word, so a one-character word in the letter
  slot (index 3) is a letter name; other words go through the project's g2p.
  """
  words = list(words)
  out = []
  for i, w in enumerate(words):
    w = w.lower()
    if (len(words) == 6 and i == 3 or len(w) == 1) and w in LETTER_NAMES:
      out.append(LETTER_NAMES[w])
    else:
      out.append(tuple(g2p.word_to_phonemes(w)))
  return out
