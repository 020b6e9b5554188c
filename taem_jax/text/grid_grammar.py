"""GRID's sentence grammar and how its sentences are pronounced, for training and inference.

A GRID sentence is `command colour preposition letter digit adverb`, e.g. "bin blue at f two
now" (letters A-Z without W, digits spoken as words). The text front end
(`g2p.g2p_words`) recognises such a sentence however it is typed ("Bin blue at A 2 now.")
and pronounces it with `word_phonemes`, the same function the GRID builder's labels and the
sample corpus use, so a typed GRID sentence gets exactly its clip's training phonemes:

* the letter slot is the letter's name ("a" -> EY1, not the article AH0);
* the other words take their CMUdict pronunciation with the fallback tag (no POS tagging:
  none of GRID's words is a homograph);
* pauses: `sil` at the edges only; pauses inside come only from typed punctuation (the
  builder does not keep the `sp` of GRID's `.align` files, whose silence the aligner gives to
  the neighbouring phones, because a typed sentence cannot say where a speaker paused).
"""
COMMANDS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple(c for c in "abcdefghijklmnopqrstuvxyz")  # no 'w'
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")

SLOTS = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
LETTER_SLOT = 3

# English letter names in ARPAbet (what a GRID speaker says for the letter slot).
LETTER_NAMES = {
    "a": ("EY1",), "b": ("B", "IY1"), "c": ("S", "IY1"), "d": ("D", "IY1"), "e": ("IY1",),
    "f": ("EH1", "F"), "g": ("JH", "IY1"), "h": ("EY1", "CH"), "i": ("AY1",),
    "j": ("JH", "EY1"), "k": ("K", "EY1"), "l": ("EH1", "L"), "m": ("EH1", "M"),
    "n": ("EH1", "N"), "o": ("OW1",), "p": ("P", "IY1"), "q": ("K", "Y", "UW1"),
    "r": ("AA1", "R"), "s": ("EH1", "S"), "t": ("T", "IY1"), "u": ("Y", "UW1"),
    "v": ("V", "IY1"), "x": ("EH1", "K", "S"), "y": ("W", "AY1"), "z": ("Z", "IY1"),
}


def is_sentence(words) -> bool:
  """True when `words` (any case) are exactly one GRID sentence, slot by slot."""
  words = [w.lower() for w in words]
  return len(words) == len(SLOTS) and all(w in slot for w, slot in zip(words, SLOTS))


def word_phonemes(words, word_to_phonemes) -> list[tuple[str, ...]]:
  """ARPAbet (with stress digits) of each word of a GRID sentence, letters read as names.

  Args:
    words: the six words (any case).
    word_to_phonemes: the g2p for the other words (`g2p.word_to_phonemes`).
  """
  words = [w.lower() for w in words]
  return [LETTER_NAMES[w] if i == LETTER_SLOT and w in LETTER_NAMES
          else tuple(word_to_phonemes(w)) for i, w in enumerate(words)]
