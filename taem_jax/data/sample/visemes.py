"""Phoneme-driven mouth: ARPAbet -> (jaw opening, lip width, lip rounding) over time.

Each phoneme has a target mouth shape (a coarse viseme table written for this project from
general phonetics: bilabials close the lips, open vowels drop the jaw, rounded vowels and /w/
purse the lips, /iy/ spreads them). The targets form a step function in time (silence = closed,
relaxed), which a Gaussian kernel smooths; the kernel is what makes neighbouring sounds blend
(co-articulation) and keeps the mouth from snapping between shapes within one frame. Bilabial
closures are re-imposed after smoothing because the lips really do meet for /p b m/.
"""
import numpy as np

# phoneme (no stress digit) -> (open, width, round), each in [0, 1].
_TABLE = {
    # closures and near-closures
    "P": (0.0, 0.0, 0.0), "B": (0.0, 0.0, 0.0), "M": (0.0, 0.0, 0.0),
    "F": (0.12, 0.15, 0.0), "V": (0.12, 0.15, 0.0),
    "TH": (0.25, 0.2, 0.0), "DH": (0.25, 0.2, 0.0),
    # alveolars / palatals / velars: jaw partly open, shape mostly from neighbours
    "T": (0.25, 0.3, 0.0), "D": (0.25, 0.3, 0.0), "N": (0.25, 0.3, 0.0),
    "L": (0.3, 0.3, 0.0), "S": (0.15, 0.45, 0.0), "Z": (0.15, 0.45, 0.0),
    "SH": (0.25, 0.0, 0.6), "ZH": (0.25, 0.0, 0.6), "CH": (0.25, 0.0, 0.6),
    "JH": (0.25, 0.0, 0.6), "K": (0.35, 0.2, 0.0), "G": (0.35, 0.2, 0.0),
    "NG": (0.3, 0.2, 0.0), "HH": (0.45, 0.2, 0.0), "Y": (0.25, 0.6, 0.0),
    "R": (0.25, 0.0, 0.5), "W": (0.15, 0.0, 0.95),
    # vowels
    "AA": (1.0, 0.3, 0.0), "AE": (0.85, 0.55, 0.0), "AH": (0.7, 0.3, 0.0),
    "AO": (0.8, 0.0, 0.5), "AW": (0.85, 0.1, 0.4), "AY": (0.85, 0.4, 0.0),
    "EH": (0.6, 0.5, 0.0), "ER": (0.4, 0.0, 0.45), "EY": (0.5, 0.6, 0.0),
    "IH": (0.4, 0.6, 0.0), "IY": (0.3, 0.9, 0.0), "OW": (0.6, 0.0, 0.8),
    "OY": (0.6, 0.1, 0.6), "UH": (0.4, 0.0, 0.7), "UW": (0.3, 0.0, 1.0),
}
_CLOSED = (0.0, 0.0, 0.0)
_BILABIAL = frozenset({"P", "B", "M"})
SILENCES = frozenset({"", "sil", "sp", "spn", "SIL", "SP", "<eps>"})


def _strip(ph: str) -> str:
  return ph.rstrip("012").upper()


def target(ph: str) -> tuple[float, float, float]:
  """Mouth target of one phoneme (closed for silence and anything unknown)."""
  if ph in SILENCES:
    return _CLOSED
  return _TABLE.get(_strip(ph), (0.3, 0.3, 0.0))


def mouth_track(phones, n_frames: int, fps: float = 25.0, *, smooth_s: float = 0.035,
                rate: int = 200) -> np.ndarray:
  """Mouth parameters at the centre of every video frame.

  Args:
    phones: sequence of (phoneme, start_s, end_s) intervals; silences use '', 'sil' or 'sp'.
    n_frames: number of video frames.
    fps: video frame rate.
    smooth_s: standard deviation of the co-articulation kernel, seconds.
    rate: internal sampling rate of the target step function, Hz.

  Returns:
    (n_frames, 3) float32 `(open, width, round)` in [0, 1].
  """
  total = max(n_frames / fps, max((e for _, _, e in phones), default=0.0))
  n = int(np.ceil(total * rate)) + 1
  steps = np.zeros((n, 3), np.float32)
  speech = np.zeros(n, bool)
  closure = np.zeros(n, bool)
  for ph, s, e in phones:
    a, b = int(round(s * rate)), max(int(round(e * rate)), int(round(s * rate)) + 1)
    steps[a:b] = target(ph)
    speech[a:b] = ph not in SILENCES
    closure[a:b] = _strip(ph) in _BILABIAL
  sigma = smooth_s * rate
  half = int(np.ceil(3 * sigma))
  k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
  k /= k.sum()
  padded = np.pad(steps, ((half, half), (0, 0)), mode="edge")
  smooth = np.stack([np.convolve(padded[:, c], k, mode="valid") for c in range(3)], -1)
  # Lips meet during bilabials even though the kernel blurs neighbours in; elsewhere in silence
  # the kernel's tails are cut so the mouth is still whenever nothing is heard.
  smooth[closure, 0] = 0.0
  near_speech = np.convolve(speech.astype(np.float32), np.ones(2 * half + 1), "same") > 0
  smooth[~near_speech] = 0.0
  t = (np.arange(n_frames) + 0.5) / fps
  idx = np.clip(np.round(t * rate).astype(int), 0, n - 1)
  return smooth[idx].astype(np.float32)
