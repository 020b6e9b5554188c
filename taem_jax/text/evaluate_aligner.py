"""Measures the built-in aligner where the truth is known, and the text front end's speed.

    python experiments/evaluate_aligner.py [--n 20]

The "recording" is an espeak-ng rendering of a sentence with another voice, rate and pitch
(true boundaries from its phoneme events); the aligner's reference rendering uses the default
voice. This is an optimistic test (same synthesiser family, no noise or reverberation), so read
it as an upper bound on accuracy and a regression check, not as accuracy on real speech.

Measured 2026-11-25 on the project's 2-core CPU (shared): 20 sentences, 625 boundaries: mean
10.1 ms, median 5.9 ms, 92% within 20 ms, 97% within 40 ms (frame quantisation alone accounts
for up to 5 ms). Per sentence: g2p 6-27 ms, espeak 8-32 ms, aligner 40-130 ms (depending on
load from other processes).
"""
import time

import numpy as np

from taem_jax import audio
from taem_jax.text import aligner, alignments, espeak, g2p

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Place green by D two please.",
    "Bin blue at F nine again.",
    "Set white with P four soon.",
    "Lay red in Q seven now.",
    "She sells sea shells by the sea shore.",
    "I refuse to collect the refuse around here.",
    "Doctor Smith paid $250 for the 3rd ticket in 1999.",
    "We will meet at the station at half past seven.",
    "Could you please pass me the salt and the pepper?",
    "The weather today is cloudy, with a chance of rain.",
    "Reading books before sleeping helps many people relax.",
    "My favourite colour is a deep shade of purple.",
    "They walked along the river until the sun went down.",
    "Please remember to lock the door when you leave.",
    "A journey of a thousand miles begins with a single step.",
    "The children laughed loudly at the clown's funny tricks.",
    "Fresh bread smells wonderful early in the morning.",
    "Thirty two people attended the meeting on Tuesday.",
    "Music can change the way we feel about the world.",
)
# (voice, rate, pitch) of the "recordings": female and male variants, British, Klatt, whisper.
TRUTH_VOICES = (("en-us+f3", 150, 70), ("en-us+m3", 200, 40), ("en", 175, 50),
                ("en-us+klatt", 160, 30), ("en-us+f2", 130, 60))


def evaluate(sentences=SENTENCES, voices=TRUTH_VOICES) -> dict:
  """Boundary errors (ms) of `aligner.align` against espeak truth, plus timings."""
  errs, t_g2p, t_tts, t_align = [], [], [], []
  g2p.g2p_words("warm up.")
  for k, s in enumerate(sentences):
    t0 = time.perf_counter()
    words = g2p.g2p_words(s)
    t_g2p.append(time.perf_counter() - t0)
    voice, rate, pitch = voices[k % len(voices)]
    t0 = time.perf_counter()
    truth = espeak.synthesize_phonemes([w.phonemes for w in words], voice=voice, rate=rate,
                                       pitch=pitch)
    t_tts.append(time.perf_counter() - t0)
    wav = audio.load_audio(truth.wav, orig_sr=truth.sr)
    t0 = time.perf_counter()
    al = aligner.align(wav, words)
    t_align.append(time.perf_counter() - t0)
    ref = [alignments.Interval(e.name, e.start, e.end) for e in truth.phonemes]
    errs.append(alignments.frame_boundary_error_ms(ref, al.intervals))
  e = np.concatenate(errs)
  ms = lambda t: 1000.0 * float(np.median(t))  # pylint: disable=unnecessary-lambda-assignment
  return {"n_sentences": len(sentences), "n_boundaries": int(e.size),
          "mean_ms": float(e.mean()), "median_ms": float(np.median(e)),
          "within_20ms": float((e <= 20).mean()), "within_40ms": float((e <= 40).mean()),
          "g2p_ms": ms(t_g2p), "espeak_ms": ms(t_tts), "align_ms": ms(t_align)}
