"""Text front end: normalisation, offline g2p, the phoneme vocabulary, alignments, espeak-ng.

Importing this package is cheap; g2p_en, spaCy and libespeak-ng load on first use.

Main entry points:
  text_to_phonemes(text) -> ['sil', 'HH', 'AH', ...]   (taem_jax.text.g2p)
  PhonemeVocab                                          (taem_jax.text.phonemes)
  taem_jax.text.alignments: MFA TextGrid / GRID .align readers, frame durations
  taem_jax.text.aligner: built-in DTW aligner against an espeak-ng rendering
  taem_jax.text.espeak: the espeak-ng binding
"""
from taem_jax.text.g2p import MAX_TEXT_CHARS, Word, g2p_words, tagger_name, text_to_phonemes
from taem_jax.text.normalize import normalize_text
from taem_jax.text.phonemes import ARPABET, PAUSES, SIL, SP, PhonemeVocab

__all__ = ["ARPABET", "MAX_TEXT_CHARS", "PAUSES", "SIL", "SP", "PhonemeVocab", "Word",
           "g2p_words", "normalize_text", "tagger_name", "text_to_phonemes"]
