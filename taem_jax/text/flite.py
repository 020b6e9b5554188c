"""Flite (CMU's statistical-parametric TTS, Debian package `flite`) for the TTS cascade baseline.

Why flite: it is the best English TTS that installs offline from the package registries with
its voice inside. Its `cmu_us_slt` voice is a clustergen (statistical-parametric) female US
voice built into libflite1, so nothing is downloaded at run time. It accepts ARPAbet phones
directly (`-p`) and prints each phone's end time (`-psdur`), so every phone of the rendering can
be stretched to a given duration without an aligner.

    wav, sr = speak_phonemes(["sil", "B", "IH1", "N", "sil"], [20, 8, 9, 7, 30])
"""
from __future__ import annotations

import pathlib
import shutil
import subprocess
import tempfile

import numpy as np

from taem_jax import audio
from taem_jax.errors import UserError
from taem_jax.rates import DURATION_FPS, SAMPLE_RATE
from taem_jax.text import espeak
from taem_jax.text import phonemes as P

VOICE = "slt"  # cmu_us_slt: the clustergen voice; kal/awb/rms are older diphone/clunit voices
LABEL = "Flite cmu_us_slt"
INSTALL_HINT = "install the Debian package flite (apt-get install flite, or bash setup.sh)"
PAUSE = "pau"  # flite's silence phone


def binary() -> str:
  """The flite executable, or UserError saying how to install it."""
  path = shutil.which("flite")
  if path is None:
    raise UserError(f"the Flite TTS is not installed: {INSTALL_HINT}")
  return path


def available() -> bool:
  """True when the flite executable is on PATH."""
  return shutil.which("flite") is not None


def to_flite(symbol: str) -> str:
  """ARPAbet (any case, stress digits) or a pause token -> flite's phone name."""
  if P.is_pause(symbol.lower()):
    return PAUSE
  return symbol.rstrip("012").lower()


def synthesize_phones(phones, voice: str = VOICE) -> tuple[np.ndarray, int, np.ndarray]:
  """flite says `phones` (ARPAbet, pauses allowed) at its own timing.

  Returns:
    (wav float32, its sample rate, K+1 phone boundaries in seconds starting at 0).

  Shapes:
    phones (K,) -> wav (n,), bounds (K + 1,).
  """
  names = [to_flite(p) for p in phones]
  if not names:
    raise UserError("nothing to say: the phoneme sequence is empty")
  with tempfile.TemporaryDirectory() as tmp:
    wav_path = pathlib.Path(tmp) / "tts.wav"
    proc = subprocess.run([binary(), "-voice", voice, "-psdur", "-p", " ".join(names),
                           "-o", str(wav_path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not wav_path.is_file():
      raise UserError(f"flite failed on {' '.join(names)!r}: {proc.stderr.strip()[:200]}")
    wav, sr = audio.load_audio(wav_path), SAMPLE_RATE  # slt is 16 kHz already
  ends = _parse_psdur(proc.stdout)
  if [n for n, _ in ends] != names:
    raise UserError(f"flite did not say the phones as given ({len(ends)} segments for "
                    f"{len(names)} phones): check the phoneme symbols")
  bounds = np.concatenate([[0.0], [t for _, t in ends]])
  bounds[-1] = max(bounds[-1], len(wav) / sr)  # the last segment runs to the end of the wav
  return wav, sr, np.maximum.accumulate(bounds)


def _parse_psdur(text: str) -> list[tuple[str, float]]:
  """'pau:0.227 b:0.290 ...' -> [('pau', 0.227), ('b', 0.29), ...]."""
  out = []
  for tok in text.split():
    name, sep, end = tok.rpartition(":")
    if sep:
      try:
        out.append((name, float(end)))
      except ValueError:
        continue
  return out


def speak_phonemes(phonemes, durations, voice: str = VOICE) -> tuple[np.ndarray, int]:
  """flite says `phonemes`, each stretched (WSOLA) to its duration.

  Args:
    phonemes: ARPAbet symbols (pauses included), flat or grouped by word.
    durations: one duration per phoneme in 100 fps mel frames (TAEM's unit).
    voice: a flite voice name (`flite -lv`).

  Shapes:
    durations (L,) -> (wav (N,) float32 at sr, sr), N = round(sum(durations) / 100 * sr).
  """
  flat = [p for w in phonemes for p in ([w] if isinstance(w, str) else w)]
  durations = np.asarray(durations, np.float64)
  if len(flat) != len(durations):
    raise UserError(f"{len(durations)} durations for {len(flat)} phonemes")
  wav, sr, bounds = synthesize_phones(flat, voice)
  return espeak.stretch_segments(wav, sr, bounds, durations / DURATION_FPS), sr
