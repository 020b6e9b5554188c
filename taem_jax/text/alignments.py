"""Phoneme alignments: readers for aligner output and conversion to 100 fps frame durations.

Durations in this project are counted in the 10 ms frames of `taem_jax.audio.duration_mel`
(hop 160 at 16 kHz, centred STFT): frame k is centred at k / 100 s and a clip of n samples has
`n_mel_frames(n) = 1 + n // 160` frames. A segment [t0, t1) owns the frames whose centres fall
inside it, so a boundary at t seconds becomes frame index ceil(t * 100).

`to_frame_durations` turns time intervals into integer durations that

* sum **exactly** to the clip's mel length (the first boundary is pinned to 0 and the last to
  the mel length, so a recording longer or shorter than the alignment grows or shrinks the
  last segment, which is the trailing silence in practice);
* give every segment at least one frame whenever there are at least as many frames as
  segments: boundaries are rounded once (cumulative rounding, so errors never accumulate), then
  pushed forward where a segment would be empty and pulled back where the end is overrun.

Readers:
* `read_textgrid`: Praat TextGrid, long ("ooTextFile" with `xmin = ...` lines) and short
  formats, as written by the Montreal Forced Aligner (MFA). `mfa_phones` maps MFA's ARPAbet
  phone tier to the project's symbols: stress digits kept (drop them with the vocabulary),
  silences (`sil`, `sp`, empty labels, `<eps>`) become `sil` at the utterance edges and `sp`
  inside, `spn` (spoken noise / unknown word) stays `spn` (encode with `strict=False` to get
  `<unk>`), and adjacent silences merge. A phone tier in IPA (MFA's `english_mfa` model) is
  refused with a clear message: use the `english_us_arpa` acoustic model and dictionary.
* `read_grid_align`: GRID corpus word alignments (`start end word` per line, times in
  1/25000 s; `sil`/`sp` for silence). `grid_phone_intervals` turns them into phone intervals by
  g2p of each word and a split of the word span (see there; the built-in aligner in
  `taem_jax.text.aligner.align_words` is the better option when the audio is at hand).
"""
import dataclasses
import os
import pathlib
import re

import numpy as np

from taem_jax.errors import UserError
from taem_jax.rates import DURATION_FPS, DURATION_HOP
from taem_jax.text import espeak, g2p
from taem_jax.text import phonemes as P

FPS = int(DURATION_FPS)  # duration frames per second, as an int for frame arithmetic
HOP = DURATION_HOP  # samples at 16 kHz
GRID_TIME_UNIT = 25000.0
_SILENCES = {"", "sil", "sp", "<eps>", "silence", "pau", "h#"}


@dataclasses.dataclass(frozen=True)
class Interval:
  label: str
  start: float  # seconds
  end: float

  @property
  def dur(self) -> float:
    return self.end - self.start


def n_mel_frames(n_samples: int) -> int:
  """Frames of `taem_jax.audio.duration_mel` for a 16 kHz clip of n_samples."""
  return 1 + int(n_samples) // HOP


def _read_text(path_or_text) -> tuple[str, str]:
  if isinstance(path_or_text, os.PathLike) or (isinstance(path_or_text, str)
                                                and "\n" not in path_or_text):
    path = pathlib.Path(path_or_text).expanduser()
    if not path.is_file():
      raise UserError(f"alignment file not found: {path}")
    raw = path.read_bytes()
    for enc in ("utf-8-sig", "utf-16"):
      try:
        return raw.decode(enc), str(path)
      except UnicodeDecodeError:
        continue
    raise UserError(f"cannot decode {path} as UTF-8 or UTF-16")
  return str(path_or_text), "TextGrid text"


_TG_TOKEN = re.compile(r'"((?:[^"]|"")*)"|(<exists>|<absent>)|(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)')


def read_textgrid(path_or_text, tier: str | None = "phones") -> list[Interval]:
  """Reads one interval tier of a Praat TextGrid (long or short text format).

  Args:
    path_or_text: a file path, or the file's contents.
    tier: tier name; MFA writes 'words' and 'phones' (MFA 2.x prefixes them with the speaker,
      e.g. 'spk1 - phones', which also matches). None takes the last interval tier.

  Returns:
    The tier's intervals in time order, labels as written (empty labels kept as '').
  """
  text, src = _read_text(path_or_text)
  # Drop "[n]" indices so that only values remain; in both formats the values then come in the
  # same order: file type, object class, xmin, xmax, <exists>, n_tiers, then per tier ...
  body = re.sub(r"\[\s*\d+\s*\]", " ", text)
  toks = []
  for m in _TG_TOKEN.finditer(body):
    if m.group(1) is not None:
      toks.append(("s", m.group(1).replace('""', '"')))
    elif m.group(2) is not None:
      toks.append(("x", m.group(2)))
    else:
      toks.append(("n", float(m.group(3))))
  try:
    if toks[0][1] != "ooTextFile" or toks[1][1] != "TextGrid":
      raise UserError(f"{src} is not a Praat TextGrid (no 'ooTextFile' / 'TextGrid' header)")
    if toks[4][1] != "<exists>":
      raise UserError(f"{src} has no tiers")
    n_tiers, i = int(toks[5][1]), 6
    tiers = []
    for _ in range(n_tiers):
      cls, name = toks[i][1], toks[i + 1][1]
      n = int(toks[i + 4][1])
      i += 5
      if cls == "IntervalTier":
        items = [Interval(toks[i + 3 * k + 2][1].strip(), float(toks[i + 3 * k][1]),
                          float(toks[i + 3 * k + 1][1])) for k in range(n)]
        i += 3 * n
        tiers.append((name, items))
      else:  # TextTier: n points of (time, mark)
        i += 2 * n
  except (IndexError, ValueError, TypeError):
    raise UserError(f"{src} is not a well-formed TextGrid (truncated or malformed)") from None
  if not tiers:
    raise UserError(f"{src} has no interval tier")
  if tier is None:
    return tiers[-1][1]
  for name, items in tiers:
    if name == tier or name.endswith(" - " + tier):
      return sorted(items, key=lambda x: x.start)
  raise UserError(f"{src} has no tier {tier!r} (tiers: {', '.join(n for n, _ in tiers)})")


def mfa_phones(intervals: list[Interval], *, stress: bool = True) -> list[Interval]:
  """Maps an MFA ARPAbet phone tier to project symbols (see the module docstring)."""
  out = []
  for k, iv in enumerate(intervals):
    lab = iv.label.strip()
    if lab.lower() in _SILENCES:
      lab = P.SIL if k in (0, len(intervals) - 1) else P.SP
    elif lab.lower() == "spn":
      lab = "spn"
    else:
      lab = P.normalize_symbol(lab, stress)
      if lab.rstrip("012") not in P.ARPABET:
        raise UserError(f"phone {iv.label!r} at {iv.start:.2f}s is not ARPAbet; align with MFA's "
                        "english_us_arpa model (the english_mfa model writes IPA)")
    out.append(Interval(lab, iv.start, iv.end))
  return merge_pauses(out)


def merge_pauses(intervals: list[Interval]) -> list[Interval]:
  """Merges adjacent pause intervals (sil wins over sp) and fixes edge pauses to `sil`."""
  out = []
  for iv in intervals:
    if out and P.is_pause(iv.label) and P.is_pause(out[-1].label):
      lab = P.SIL if P.SIL in (iv.label, out[-1].label) else P.SP
      out[-1] = Interval(lab, out[-1].start, iv.end)
    else:
      out.append(iv)
  for k in (0, len(out) - 1):
    if out and P.is_pause(out[k].label):
      out[k] = Interval(P.SIL, out[k].start, out[k].end)
  return out


def read_grid_align(path_or_text) -> list[Interval]:
  """Reads a GRID `.align` file: `start end word` per line, times in 1/25000 s."""
  text, src = _read_text(path_or_text)
  out = []
  for ln, line in enumerate(text.splitlines(), 1):
    parts = line.split()
    if not parts:
      continue
    if len(parts) != 3:
      raise UserError(f"{src} line {ln}: expected 'start end word', got {line.strip()!r}")
    try:
      t0, t1 = float(parts[0]) / GRID_TIME_UNIT, float(parts[1]) / GRID_TIME_UNIT
    except ValueError:
      raise UserError(f"{src} line {ln}: times must be numbers, got {line.strip()!r}") from None
    if t1 < t0:
      raise UserError(f"{src} line {ln}: end {parts[1]} is before start {parts[0]}")
    word = parts[2].lower()
    out.append(Interval(P.SP if word in ("sp",) else P.SIL if word == "sil" else word, t0, t1))
  if not out:
    raise UserError(f"{src} contains no alignment lines")
  return merge_pauses(out)


def grid_phone_intervals(word_intervals: list[Interval], *, split: str = "espeak",
                         stress: bool = True) -> list[Interval]:
  """Word intervals (GRID .align) -> phone intervals, without looking at the audio.

  Each word gets its g2p pronunciation (CMUdict / neural model, POS tag 'NN'); its span is then
  split among its phonemes in proportion to their durations in an espeak-ng rendering of the
  word (split='espeak': a phoneme-aware prior, e.g. vowels longer than stops) or equally
  (split='uniform', also used when espeak-ng is missing). Pauses stay as they are.
  """
  use_espeak = split == "espeak" and espeak.available()
  if split not in ("espeak", "uniform"):
    raise UserError(f"unknown split {split!r}: use 'espeak' or 'uniform'")
  out = []
  for iv in word_intervals:
    if P.is_pause(iv.label):
      out.append(iv)
      continue
    ph = list(g2p.word_to_phonemes(iv.label))
    if not ph:
      raise UserError(f"word {iv.label!r} has no pronunciation")
    if use_espeak:
      w = np.array([e.dur for e in espeak.synthesize_phonemes([ph]).phonemes])
      w = np.maximum(w, 1e-3)
    else:
      w = np.ones(len(ph))
    cuts = iv.start + iv.dur * np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    out += [Interval(P.normalize_symbol(p, stress), float(cuts[k]), float(cuts[k + 1]))
            for k, p in enumerate(ph)]
  return out


def spans_for_units(word_intervals: list[Interval], units) -> list[tuple[float, float]] | None:
  """Time spans (s) for aligner units from a corpus's word intervals whose pauses are not units.

  `word_intervals` (e.g. a GRID .align: words and `sil`/`sp`) give the timing; `units` (e.g.
  `g2p_words` of the transcript: words plus the pauses the text gives) give the sequence. A
  silence between two words is shared out at its midpoint; edge pause units take the time
  before the first / after the last word; a pause unit between two words gets a zero-width
  span at their boundary. Returns None when the units' words do not match the intervals'
  words one to one (the aligner then aligns without spans).
  """
  words = [iv for iv in word_intervals if not P.is_pause(iv.label)]
  is_pause = [len(u) == 1 and P.is_pause(u[0]) for u in
              (getattr(u, "phonemes", u) for u in units)]
  if not words or sum(not p for p in is_pause) != len(words):
    return None
  cuts = [0.5 * (a.end + b.start) if b.start > a.end else b.start
          for a, b in zip(words[:-1], words[1:])]
  starts = [words[0].start] + cuts
  ends = cuts + [words[-1].end]
  end_all = max(word_intervals[-1].end, words[-1].end)
  spans, k = [], 0
  for p in is_pause:
    if not p:
      spans.append((starts[k], ends[k]))
      k += 1
    elif k == 0:
      spans.append((0.0, starts[0]))
    elif k == len(words):
      spans.append((ends[-1], end_all))
    else:
      spans.append((starts[k], starts[k]))
  return spans


def boundaries_to_durations(bounds_frames, n_frames: int) -> np.ndarray:
  """Real-valued boundaries (in frames, K+1 of them) -> K integer durations summing to n_frames.

  First and last boundaries are pinned to 0 and n_frames; the inner ones are rounded up
  (frame-centre rule, see the module docstring), clipped, and moved just enough that every
  segment gets >= 1 frame when n_frames >= K.

  Shapes:
    bounds_frames: (K+1,) -> (K,) int32.
  """
  b = np.asarray(bounds_frames, np.float64)
  k = len(b) - 1
  if k < 1:
    raise UserError("need at least one segment")
  if n_frames < 0:
    raise UserError(f"n_frames must be >= 0, got {n_frames}")
  r = np.ceil(b - 1e-6).astype(np.int64)
  r[0], r[-1] = 0, n_frames
  r = np.clip(r, 0, n_frames)
  r = np.maximum.accumulate(r)
  if n_frames >= k:  # room for one frame each: push forward, then pull back from the end
    for i in range(1, k):
      r[i] = max(r[i], r[i - 1] + 1)
    for i in range(k - 1, 0, -1):
      r[i] = min(r[i], r[i + 1] - 1)
  return np.diff(r).astype(np.int32)


def to_frame_durations(intervals: list[Interval], n_frames: int, *,
                       fps: float = FPS) -> tuple[list[str], np.ndarray]:
  """Intervals (seconds) -> (labels, integer durations in frames summing to n_frames).

  Use `n_frames = n_mel_frames(len(wav_16k))` (the clip's `duration_mel` length).

  Shapes:
    returns labels (K,), durations (K,) int32.
  """
  if not intervals:
    raise UserError("empty alignment")
  # Inner boundaries are the starts of the following intervals (they equal the previous ends in
  # a well-formed alignment; using the starts keeps gaps inside the preceding segment).
  bounds = [0.0] + [iv.start for iv in intervals[1:]] + [intervals[-1].end]
  d = boundaries_to_durations(np.asarray(bounds) * fps, n_frames)
  return [iv.label for iv in intervals], d


def durations_to_intervals(labels, durations, *, fps: float = FPS) -> list[Interval]:
  """Frame durations -> time intervals (inverse of `to_frame_durations` up to rounding)."""
  ends = np.cumsum(np.asarray(durations, np.int64))
  starts = ends - np.asarray(durations, np.int64)
  return [Interval(l, s / fps, e / fps) for l, s, e in zip(labels, starts, ends)]


def frame_boundary_error_ms(ref: list[Interval], hyp: list[Interval]) -> np.ndarray:
  """|hyp - ref| in ms for the inner boundaries of two segmentations of the same labels."""
  if len(ref) != len(hyp):
    raise ValueError(f"different number of segments: {len(ref)} vs {len(hyp)}")
  a = np.array([iv.start for iv in ref[1:]])
  b = np.array([iv.start for iv in hyp[1:]])
  return 1000.0 * np.abs(a - b)



# -- HTK master label files (TCD-TIMIT's volunteer_labelfiles.mlf) --------------------------------

HTK_TIME_UNIT = 1e7  # HTK label times count 100 ns units
# TIMIT-only phone labels that a TIMIT-trained labeller may write, as the CMUdict phoneme with the
# same lip shape (a flap dx is voiced, like D; the syllabic consonants are schwa + consonant, cut
# to the consonant's lip shape; a glottal stop q has no lip shape and is dropped).
TIMIT_PHONES = {"ax": "AH", "axh": "AH", "ix": "IH", "ux": "UW", "axr": "ER", "dx": "D",
                "nx": "N", "en": "N", "em": "M", "el": "L", "eng": "NG", "hv": "HH"}
TIMIT_DROPPED = ("q",)
_HTK_SILENCES = _SILENCES | {"epi", "<s>", "</s>"}


def read_htk_mlf(path_or_text) -> dict[str, list[Interval]]:
  """Reads an HTK master label file: {quoted label-file name: its intervals, in file order}.

  Format: a `#!MLF!#` header, then per utterance a quoted file name (`"*/01M/sa1.lab"`, or a full
  path such as `".../volunteers/01M/Clips/straightcam/sa1.rec"`), lines `start end label [score
  ...]` with times in 100 ns units, and a line `.` ending the utterance. Labels are returned as
  written; a name line of the form `"pattern" -> dir` (a redirection, no labels inside) is skipped.
  """
  text, src = _read_text(path_or_text)
  lines = text.splitlines()
  if not lines or lines[0].strip() != "#!MLF!#":
    raise UserError(f"{src} is not an HTK master label file (first line must be #!MLF!#)")
  out, name, items = {}, None, []
  for ln, raw in enumerate(lines[1:], 2):
    line = raw.strip()
    if not line:
      continue
    if name is None:
      if not line.startswith('"'):
        raise UserError(f"{src} line {ln}: expected a quoted label-file name, got {line!r}")
      if "->" in line or "=>" in line:
        continue
      name, items = line.strip('"'), []
      continue
    if line == ".":
      out[name] = items
      name = None
      continue
    parts = line.split()
    if len(parts) < 3:
      raise UserError(f"{src} line {ln}: expected 'start end label' (times are needed for "
                      f"durations), got {line!r}")
    try:
      t0, t1 = int(parts[0]) / HTK_TIME_UNIT, int(parts[1]) / HTK_TIME_UNIT
    except ValueError:
      raise UserError(f"{src} line {ln}: times must be integers (100 ns units), got "
                      f"{line!r}") from None
    if t1 < t0:
      raise UserError(f"{src} line {ln}: end {parts[1]} is before start {parts[0]}")
    items.append(Interval(parts[2], t0, t1))
  if name is not None:
    raise UserError(f"{src} ends inside the labels of {name!r} (no closing '.' line): the file "
                    "is truncated")
  return out


def htk_phones(intervals: list[Interval], *, stress: bool = False) -> list[Interval]:
  """Maps an HTK phone label sequence (TCD-TIMIT: lower-case CMUdict / TIMIT phones, `sil`) to
  project symbols: silences become `sil` at the edges and `sp` inside (merged when adjacent),
  TIMIT-only phones go through `TIMIT_PHONES`, a glottal stop is dropped (its span goes to the
  phone before it). Unknown labels raise UserError."""
  out = []
  for iv in intervals:
    lab = iv.label.strip().lower()
    if lab in TIMIT_DROPPED:
      if out:
        out[-1] = Interval(out[-1].label, out[-1].start, iv.end)
      continue
    if lab in _HTK_SILENCES:
      sym = P.SP
    else:
      sym = P.normalize_symbol(TIMIT_PHONES.get(lab, lab), stress)
      if sym.rstrip("012") not in P.ARPABET:
        raise UserError(f"phone label {iv.label!r} at {iv.start:.2f}s is neither ARPAbet nor a "
                        "TIMIT phone")
    out.append(Interval(sym, iv.start, iv.end))
  if not out:
    raise UserError("the label sequence has no phones")
  return merge_pauses(out)
