"""Phone-level forced alignment with PocketSphinx's English acoustic model.

`pocketsphinx` (5.x, PyPI) ships a continuous-density HMM acoustic model of US English
(`en-us`, trained on real read and spontaneous speech) and the CMU dictionary inside its wheel,
so it aligns offline. This module only uses its acoustic model: the pronunciations are the
project's own (the caller's ARPAbet units), written to a private dictionary, so the phones it
times are exactly the phones the training labels use.

How one recording is aligned (`align_boundaries`):

1. every non-pause unit becomes a dictionary word whose pronunciation is the unit's phonemes
   with the stress digits removed (PocketSphinx's phone set is CMUdict's 39 phonemes + `SIL`);
   a pause unit between words becomes the filler word `<sil>` (at least 3 frames of silence);
   pauses at the edges are PocketSphinx's own utterance-edge silences;
2. seeded noise at -60 dBFS is added (`DITHER_RMS`: digital silence breaks the search);
   a word-level alignment pass, then a second pass for phone and state timings
   (`Decoder.set_alignment`), both over the whole utterance with batch cepstral mean
   normalisation; a fresh decoder per call, so no state carries from one clip to the next and a
   clip's result does not depend on what was aligned before it;
3. the phone starts (10 ms frames, the project's duration frame rate) become the boundaries of
   the caller's segments; silence that PocketSphinx puts where the caller has no pause unit is
   split evenly between the neighbouring phones.

Accuracy on real speech: see `taem_jax.text.evaluate_aligner`.
"""
import functools
import importlib.util
import os
import tempfile
from importlib import metadata

import numpy as np

from taem_jax.errors import UserError
from taem_jax.text import phonemes as P

# PocketSphinx frames: 100 per second (its default `frate`), the same as the duration frames.
FRAME_RATE = 100
MIN_SAMPLES = 1600  # 0.1 s: shorter clips leave the HMMs too few frames
# Gaussian noise (RMS, full scale 1) added before aligning, from a fixed seed so a clip always
# gets the same noise. Digital silence (exact zeros, e.g. espeak-ng's pauses) has no defined
# log spectrum; without it 6 of 20 espeak test sentences found no alignment at all. At 1e-3
# (-60 dBFS, below the 2.5e-3 noise floor of the ARCTIC recording) it also lowered the mean
# real-speech error from 12.6 to 11.5 ms.
DITHER_RMS = 1e-3


@functools.lru_cache(maxsize=1)
def available() -> bool:
  """True when the pocketsphinx package (and its bundled en-us model) can be imported."""
  return importlib.util.find_spec("pocketsphinx") is not None


def version() -> str:
  """The installed pocketsphinx version ('' when it is missing)."""
  try:
    return metadata.version("pocketsphinx")
  except metadata.PackageNotFoundError:
    return ""


def _sphinx_phone(p: str) -> str:
  q = P.strip_stress(P.normalize_symbol(p, stress=True))
  if q not in P.ARPABET:
    raise UserError(f"phoneme {p!r} is not ARPAbet: the aligner knows only CMUdict's 39 phonemes")
  return q


def _pcm16(wav16k: np.ndarray) -> bytes:
  """16-bit PCM of the clip plus `DITHER_RMS` of seeded noise."""
  noise = np.random.default_rng(0).standard_normal(len(wav16k)) * DITHER_RMS
  return (np.clip(wav16k + noise, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def align_boundaries(wav16k: np.ndarray, units: list[list[str]]) -> np.ndarray:
  """Segment boundaries (in 100 fps frames) of `units`' phonemes and pauses in a recording.

  Args:
    wav16k: the recording, float32 mono at 16 kHz.
    units: words as lists of ARPAbet symbols (stress digits allowed), or `[pause]` with a pause
      token (`sil`/`sp`).

  Returns:
    K+1 non-decreasing boundaries for the K symbols of `units` (first 0, last the frame count
    PocketSphinx saw); `alignments.boundaries_to_durations` turns them into durations.

  Raises:
    UserError: pocketsphinx is missing, the recording is too short, or it cannot be aligned to
      the units.

  Shapes:
    wav16k: (n,) float32 -> (K + 1,) float64.
  """
  if not available():
    raise UserError("the forced aligner needs pocketsphinx: run `.venv/bin/pip install "
                    "pocketsphinx` (it is in requirements.txt)")
  from pocketsphinx import Decoder  # lazy: loads a compiled library and its model on use
  wav16k = np.asarray(wav16k, np.float32)
  if wav16k.ndim != 1 or len(wav16k) < MIN_SAMPLES:
    raise UserError(f"forced aligner needs a mono clip of >= {MIN_SAMPLES} samples, "
                    f"got shape {wav16k.shape}")
  names, lines, text = [], [], []
  for k, u in enumerate(units):
    if len(u) == 1 and P.is_pause(u[0]):
      names.append(None)
      continue
    name = f"taem{k}"
    names.append(name)
    lines.append(f"{name} {' '.join(_sphinx_phone(p) for p in u)}\n")
  if not lines:
    raise UserError("nothing to align: the utterance has no phonemes")
  # Pause units between words become explicit silences; edge silences are the decoder's own.
  first = next(i for i, n in enumerate(names) if n)
  last = max(i for i, n in enumerate(names) if n)
  for i in range(first, last + 1):
    if names[i]:
      text.append(names[i])
    elif names[i - 1] is not None:  # one <sil> for a run of pause units
      text.append("<sil>")
  pcm = _pcm16(wav16k)
  with tempfile.TemporaryDirectory(prefix="taem_sphinx_") as td:
    dict_path = os.path.join(td, "units.dict")
    with open(dict_path, "w", encoding="utf-8") as f:
      f.writelines(lines)
    try:
      # bestpath=False: the lattice best-path rescoring returned partial hypotheses that dropped
      # the last words of some utterances; the Viterbi result always covers the whole text.
      dec = Decoder(lm=None, dict=dict_path, cmn="batch", bestpath=False, loglevel="FATAL")
      dec.set_align_text(" ".join(text))
      for second in (False, True):
        if second:
          dec.set_alignment()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
      al = dec.get_alignment()
    except RuntimeError as e:
      raise UserError(f"the forced aligner could not align the recording to its text ({e}): "
                      "check that the transcript is what is said in the audio") from None
  if al is None:
    raise UserError("the forced aligner found no alignment: check that the transcript is what "
                    "is said in the audio")
  words = [(w.name, w.start, w.start + w.duration, [(p.start, p.duration) for p in w])
           for w in al.words()]
  return _boundaries(names, units, words)


def _boundaries(names, units, words) -> np.ndarray:
  """Maps PocketSphinx's word/phone timings onto the caller's K segments."""
  n_total = words[-1][2]
  by_name = {w[0]: w for w in words if w[0].startswith("taem")}
  if len(by_name) != sum(1 for n in names if n):
    raise UserError("the forced aligner dropped words of the transcript")
  starts = []  # start frame of each of the K segments
  prev_end = 0
  for k, (n, u) in enumerate(zip(names, units)):
    if n is None:
      starts.append(float(prev_end) if k else 0.0)
      continue
    _, ws, we, phones = by_name[n]
    if len(phones) != len(u):
      raise UserError(f"the forced aligner returned {len(phones)} phones for {len(u)}")
    s0 = float(ws)
    if k > 0 and names[k - 1] is not None and ws > prev_end:
      # Silence the decoder placed between two words with no pause unit: split it evenly.
      s0 = 0.5 * (prev_end + ws)
    starts += [s0] + [float(ps) for ps, _ in phones[1:]]
    prev_end = we
  starts[0] = 0.0
  b = np.asarray(starts + [float(n_total)], np.float64)
  return np.maximum.accumulate(b)
