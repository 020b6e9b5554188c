"""The project's one binding to the espeak-ng speech synthesiser (ctypes over libespeak-ng).

Used by the built-in aligner (`taem_jax.text.aligner`), the sample-corpus generator and the TTS
baseline. Two ways in:

* `synthesize(text, ...)`: plain text; returns the waveform plus espeak's own PHONEME and WORD
  events (phoneme names are espeak mnemonics, e.g. `D`, `@2`, `aI`).
* `synthesize_phonemes(arpabet, ...)`: an ARPAbet sequence (the project's phoneme set, pause
  tokens `sil`/`sp` allowed) is mapped to espeak mnemonics and spoken with the `espeakPHONEMES`
  flag, so the PHONEME events come back one per input phoneme, labelled with the input ARPAbet.
  This gives exact phoneme durations for synthetic speech.

Timings come from espeak's PHONEME events (`audio_position`, ms): a phoneme lasts from its
onset to the next onset. Audio before the first onset is given to the first phoneme and
audio after the last input phoneme (espeak's own clause-final pause) to the last one, so the
events tile the waveform exactly: `events[0].start == 0` and `sum(dur) == len(wav) / sr`.

Output is always espeak's native rate (22050 Hz); resample with `taem_jax.audio.load_audio`.
espeak's output length varies by a few hundred samples from call to call (same input), so
do not expect bit-identical waveforms. espeak-ng 1.52 (espeakng_loader) prefixes stressed
phoneme names with ' or , in `synthesize`'s events; Debian's 1.51 does not.

The library is global state (one voice, one callback), so every call holds `_LOCK`.

Library lookup: `ctypes.util.find_library('espeak-ng')` (Debian `libespeak-ng1`), else the PyPI
`espeakng_loader` package; a UserError says how to install when neither is present.

Phoneme durations cannot be set per phoneme through the API; `stretch_segments` changes them
afterwards by WSOLA time-scaling of the waveform (see its docstring).
"""
import ctypes
import ctypes.util
import dataclasses
import functools
import os
import threading

import numpy as np

from taem_jax.errors import UserError

# espeak-ng API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PHONEMES = 0x100  # text inside [[ ]] is read as phoneme mnemonics
_EVENT_WORD = 1
_EVENT_END = 5
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_PARAM_WORDGAP = 7

_LOCK = threading.RLock()


class _EventId(ctypes.Union):
  _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
  _fields_ = [
      ("type", ctypes.c_int),
      ("unique_identifier", ctypes.c_uint),
      ("text_position", ctypes.c_int),
      ("length", ctypes.c_int),
      ("audio_position", ctypes.c_int),
      ("sample", ctypes.c_int),
      ("user_data", ctypes.c_void_p),
      ("id", _EventId),
  ]


class _Voice(ctypes.Structure):
  _fields_ = [
      ("name", ctypes.c_char_p),
      ("languages", ctypes.c_char_p),
      ("identifier", ctypes.c_char_p),
      ("gender", ctypes.c_ubyte),
      ("age", ctypes.c_ubyte),
      ("variant", ctypes.c_ubyte),
      ("xx1", ctypes.c_ubyte),
      ("score", ctypes.c_int),
      ("spare", ctypes.c_void_p),
  ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclasses.dataclass(frozen=True)
class Event:
  """One phoneme or word: `name` and its span in seconds from the start of the waveform."""
  name: str
  start: float
  dur: float

  @property
  def end(self) -> float:
    return self.start + self.dur


@dataclasses.dataclass(frozen=True)
class Synthesis:
  """The result of one synthesis call.

  Shapes:
    wav: (n,) float32 in [-1, 1] at `sr` Hz.
  """
  wav: np.ndarray
  sr: int
  phonemes: list  # list[Event]; tiles [0, len(wav)/sr)
  words: list  # list[Event]; word onsets from espeak, each ending at the next word's onset

  def __iter__(self):  # allows `wav, sr, phonemes, words = synthesize(...)`
    return iter((self.wav, self.sr, self.phonemes, self.words))


def _find_library():
  """Returns (path of libespeak-ng, data dir or None)."""
  path = ctypes.util.find_library("espeak-ng")
  if path:
    return path, None
  try:
    import espeakng_loader  # optional fallback package, only when Debian's library is missing
  except ImportError:
    raise UserError(  # pylint: disable=raise-missing-from
        "espeak-ng library not found: install the Debian package libespeak-ng1 "
        "(apt-get install libespeak-ng1) or the PyPI package espeakng-loader") from None
  return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class _Engine:
  """The loaded library plus the buffers its callback fills (used under `_LOCK` only)."""

  def __init__(self):
    path, data_dir = _find_library()
    try:
      lib = ctypes.CDLL(path)
    except OSError as e:
      raise UserError(f"cannot load espeak-ng library {path}: {e}") from None
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    sr = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                               data_dir.encode() if data_dir else None, _INIT_PHONEME_EVENTS)
    if sr <= 0:
      raise UserError(f"espeak-ng failed to initialise (library {path}); is espeak-ng-data "
                      "installed next to it?")
    self.lib, self.sr = lib, sr
    data_path = ctypes.c_char_p()
    self.version = lib.espeak_Info(ctypes.byref(data_path)).decode()
    self.data_dir = data_path.value.decode() if data_path.value else data_dir
    self._chunks, self._events = [], []
    self._callback = _CALLBACK(self._on_audio)  # keep a reference: ctypes does not
    lib.espeak_SetSynthCallback(self._callback)
    self._voice = None

  def _on_audio(self, wav, n, events):
    if n > 0:
      self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
    i = 0
    while events[i].type != 0:  # 0 = espeakEVENT_LIST_TERMINATED
      e = events[i]
      if e.type in (_EVENT_PHONEME, _EVENT_WORD, _EVENT_END):
        name = e.id.string.decode("utf-8", "replace") if e.type == _EVENT_PHONEME else ""
        self._events.append((e.type, name, e.audio_position, e.text_position, e.length,
                             e.sample))
      i += 1
    return 0

  def set_voice(self, voice, rate, pitch, pitch_range, word_gap, volume):
    if voice != self._voice:
      if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
        self._voice = None
        raise UserError(f"unknown espeak-ng voice {voice!r}: use e.g. 'en-us', 'en' (British), "
                        "'en-GB-x-rp', 'en-us+f3' (see taem_jax.text.espeak.list_voices())")
      self._voice = voice
    for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range),
                         (_PARAM_WORDGAP, word_gap), (_PARAM_VOLUME, volume)):
      self.lib.espeak_SetParameter(param, int(value), 0)

  def run(self, text: str, flags: int):
    self._chunks, self._events = [], []
    data = text.encode("utf-8") + b"\0"
    err = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | flags,
                                None, None)
    self.lib.espeak_Synchronize()
    if err != 0:
      raise RuntimeError(f"espeak_Synth failed with code {err}")
    wav = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
    return (wav.astype(np.float32) / 32768.0), self._events


@functools.cache
def _engine() -> _Engine:
  return _Engine()


def available() -> bool:
  """True when libespeak-ng can be loaded (for tests and optional features)."""
  try:
    with _LOCK:
      _engine()
    return True
  except UserError:
    return False


def info() -> dict:
  """Library version, data directory and native sample rate."""
  with _LOCK:
    e = _engine()
    return {"version": e.version, "data_dir": e.data_dir, "sample_rate": e.sr}


def list_voices(language: str | None = "en") -> list[str]:
  """espeak-ng voice names (optionally only those whose language starts with `language`)."""
  with _LOCK:
    e = _engine()
    arr = e.lib.espeak_ListVoices(None)
    names, i = [], 0
    while arr[i]:
      v = arr[i].contents
      ident = v.identifier.decode() if v.identifier else ""
      name = ident.split("/")[-1]
      if language is None or name.lower().startswith(language.lower()):
        names.append(name)
      i += 1
  return sorted(set(names))


def list_variants() -> list[str]:
  """Voice variant names usable as `voice + '+' + variant` (e.g. 'en-us+f3')."""
  d = info()["data_dir"]
  vdir = os.path.join(d, "voices", "!v") if d else ""
  return sorted(os.listdir(vdir)) if vdir and os.path.isdir(vdir) else []


def _tile(names, onsets, total):
  """Events from onsets: first starts at 0, last ends at `total`, each ends at the next onset."""
  out = []
  for k, name in enumerate(names):
    start = 0.0 if k == 0 else onsets[k]
    end = total if k + 1 == len(names) else onsets[k + 1]
    out.append(Event(name, start, max(0.0, end - start)))
  return out


def _phone_events(events, sr):
  """(name, onset s) of PHONEME events; `sample` is exact where `audio_position` is in ms."""
  return [(name, sample / sr) for typ, name, _, _, _, sample in events if typ == _EVENT_PHONEME]


def synthesize(text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, *,
               pitch_range: int = 50, word_gap: int = 0, volume: int = 100) -> Synthesis:
  """Speaks plain text.

  Args:
    text: what to say (UTF-8 text; espeak does its own normalisation).
    voice: espeak-ng voice name, optionally with a variant: 'en-us', 'en' (British),
      'en-GB-x-rp', 'en-us+f3', 'en-us+m2', ... (`list_voices()`, `list_variants()`).
    rate: words per minute (80..450).
    pitch: base pitch 0..100. pitch_range: intonation range 0..100.
    word_gap: extra pause between words, in units of 10 ms.
    volume: 0..200.

  Returns:
    A `Synthesis` (unpacks as `wav, sr, phonemes, words`): phoneme events named with espeak
    mnemonics, tiling the waveform; word events named with the text they came from.

  Shapes:
    wav: (n,) float32 at sr = 22050 Hz.
  """
  if not text or not text.strip():
    raise UserError("empty text: give espeak-ng something to say")
  with _LOCK:
    eng = _engine()
    eng.set_voice(voice, rate, pitch, pitch_range, word_gap, volume)
    wav, events = eng.run(text, 0)
    sr = eng.sr
  total = len(wav) / sr
  phones = _phone_events(events, sr)
  ph = _tile([n for n, _ in phones], [t for _, t in phones], total) if phones else []
  # A word starts at its first phoneme after its WORD event (the WORD event itself comes a
  # little earlier) and ends at the onset of whatever phoneme follows its last one.
  onsets = [t for _, t in phones]
  owner, spans, k = {}, [], -1  # phoneme index -> word index
  for typ, name, _, tpos, length, _ in events:
    if typ == _EVENT_WORD and length > 0:
      spans.append(text[tpos - 1:tpos - 1 + length])  # text_position counts from 1
    elif typ == _EVENT_PHONEME:
      k += 1
      if spans and not name.startswith("_"):
        owner[k] = len(spans) - 1
  words = []
  for w, name in enumerate(spans):
    mine = [k for k, o in owner.items() if o == w]
    if mine:
      t1 = onsets[mine[-1] + 1] if mine[-1] + 1 < len(onsets) else total
      words.append(Event(name, onsets[mine[0]], max(0.0, t1 - onsets[mine[0]])))
  return Synthesis(wav, sr, ph, words)


# ARPAbet (stress-free) -> espeak-ng mnemonic for the en-us phoneme table. Vowels whose
# quality depends on stress are resolved in `_mnemonics`.
ARPA_TO_ESPEAK = {
    "AA": "A:", "AE": "a", "AH": "V", "AO": "O:", "AW": "aU", "AY": "aI", "EH": "E", "ER": "3:",
    "EY": "eI", "IH": "I", "IY": "i:", "OW": "oU", "OY": "OI", "UH": "U", "UW": "u:",
    "B": "b", "CH": "tS", "D": "d", "DH": "D", "F": "f", "G": "g", "HH": "h", "JH": "dZ",
    "K": "k", "L": "l", "M": "m", "N": "n", "NG": "N", "P": "p", "R": "r", "S": "s", "SH": "S",
    "T": "t", "TH": "T", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "Z",
}
# Unstressed (or stress-unknown) AH and ER are schwas.
_UNSTRESSED = {"AH": "@", "ER": "3"}
# Pause tokens: espeak's `_` is about 30 ms and `_:` about 70 ms at rate 175.
_PAUSE_MNEMONICS = {"sp": ["_"], "sil": ["_:", "_:"]}
# Events espeak adds on its own (linking r, syllable marks, pauses); cheap to skip in matching.
_FILLER_EVENTS = {"r-", ";", "_", "_:", "_!", "||", "#"}


def _mnemonics(p: str) -> tuple[list[str], str]:
  """ARPAbet symbol (stress digit optional, or a pause token) -> (espeak mnemonics, mark)."""
  if p in _PAUSE_MNEMONICS:
    return list(_PAUSE_MNEMONICS[p]), ""
  base, digit = (p[:-1], p[-1]) if p[-1:].isdigit() else (p, "")
  base = base.upper()
  if base not in ARPA_TO_ESPEAK:
    raise UserError(f"cannot speak phoneme {p!r}: expected ARPAbet (optionally with a stress "
                    "digit) or sil/sp")
  if base in _UNSTRESSED and digit in ("", "0"):
    return [_UNSTRESSED[base]], ""
  return [ARPA_TO_ESPEAK[base]], {"1": "'", "2": ","}.get(digit, "")


def _match(expected: list[str], got: list[str]) -> list[int]:
  """Aligns espeak's event names to the expected mnemonics (edit distance).

  Returns, for each event, the index of the expected mnemonic it belongs to: its match, or the
  mnemonic before it when espeak inserted it (linking r, pauses, assimilated variants).
  """
  n, m = len(expected), len(got)
  inf = float("inf")
  cost = [[inf] * (m + 1) for _ in range(n + 1)]
  back = [[None] * (m + 1) for _ in range(n + 1)]
  cost[0][0] = 0.0
  for i in range(n + 1):
    for j in range(m + 1):
      c = cost[i][j]
      if c == inf:
        continue
      if i < n and j < m:  # match / substitution (e.g. n -> N, I -> i)
        sub = 0.0 if expected[i] == got[j] else 1.0
        if c + sub < cost[i + 1][j + 1]:
          cost[i + 1][j + 1], back[i + 1][j + 1] = c + sub, (i, j, "m")
      if j < m:  # an event espeak added
        ins = 0.3 if got[j] in _FILLER_EVENTS else 1.2
        if c + ins < cost[i][j + 1]:
          cost[i][j + 1], back[i][j + 1] = c + ins, (i, j, "i")
      if i < n and c + 2.0 < cost[i + 1][j]:  # a mnemonic espeak dropped
        cost[i + 1][j], back[i + 1][j] = c + 2.0, (i, j, "d")
  owner = [0] * m
  i, j = n, m
  while (i, j) != (0, 0):
    pi, pj, kind = back[i][j]
    if kind == "m":
      owner[pj] = pi
    elif kind == "i":
      owner[pj] = max(pi - 1, 0)
    i, j = pi, pj
  return owner


def _fill_gaps(onset, total, min_dur=1e-3, prev_weight=1.5):
  """Gives time to phonemes that espeak dropped (None) or spoke in zero time.

  espeak realises a post-vocalic /l/ or /r/ inside the vowel before it (its event has the same
  onset as the next one). Such a phoneme, and any run of them, shares the span of the phoneme
  before it: that one keeps weight 1.5, each zero-length one gets weight 1.
  """
  n = len(onset)
  on = list(onset)
  if on and on[0] is None:
    on[0] = 0.0
  nxt = total
  for k in range(n - 1, -1, -1):  # dropped -> zero-length at the next onset
    if on[k] is None:
      on[k] = nxt
    on[k] = min(max(on[k], 0.0), total)
    nxt = on[k]
  for k in range(1, n):  # monotone
    on[k] = max(on[k], on[k - 1])
  end = lambda k: on[k + 1] if k + 1 < n else total  # noqa: E731
  k = 1
  while k < n:
    if end(k) - on[k] >= min_dur:
      k += 1
      continue
    j = k
    while j < n and end(j) - on[j] < min_dur:
      j += 1
    a, b = on[k - 1], end(j - 1)
    w = np.concatenate([[prev_weight], np.ones(j - k)])
    cuts = a + (b - a) * np.cumsum(w)[:-1] / w.sum()
    for q, c in zip(range(k, j), cuts):
      on[q] = float(c)
    k = j
  return on


def _words_of(phonemes) -> list[list[str]]:
  if not phonemes:
    raise UserError("empty phoneme sequence: nothing to speak")
  if all(isinstance(p, str) for p in phonemes):
    return [list(phonemes)]
  return [list(w) for w in phonemes if len(w)]


def synthesize_phonemes(phonemes, voice: str = "en-us", rate: int = 175, pitch: int = 50, *,
                        pitch_range: int = 50, volume: int = 100) -> Synthesis:
  """Speaks an exact ARPAbet sequence and returns one event per input phoneme.

  Args:
    phonemes: ARPAbet symbols with or without stress digits, plus `sil`/`sp`; either a flat list
      or a list of words (lists of symbols), which gives espeak word boundaries (better prosody).
      Stress digits matter: `1` -> primary stress, `2` -> secondary; AH/ER without a digit or with
      `0` are schwas.
    voice, rate, pitch, pitch_range, volume: as in `synthesize`. Use an 'en-us' voice or one of
      its variants ('en-us+f3', 'en-us+m2', ...): the mnemonics are those of the en-us phoneme
      table; British voices also work but sometimes add linking-r events (merged into the phoneme
      they follow).

  Returns:
    A `Synthesis` whose `phonemes` are exactly the (flattened) input symbols in order, tiling
    the waveform; `words` has one event per input word (pause-only words excluded).

  Shapes:
    wav: (n,) float32 at sr = 22050 Hz.
  """
  words = _words_of(phonemes)
  flat, expected, group, parts = [], [], [], []
  for w in words:
    part = ""
    for p in w:
      mn, mark = _mnemonics(p)
      flat.append(p)
      for x in mn:
        expected.append(x)
        group.append(len(flat) - 1)
      # Pauses become their own "words" so espeak does not glue them to phonemes.
      part += (" " + " ".join(mn) + " ") if p in _PAUSE_MNEMONICS else mark + "".join(mn)
    parts.append(part.strip())
  text = "[[" + " ".join(x for x in parts if x) + "]]"
  with _LOCK:
    eng = _engine()
    eng.set_voice(voice, rate, pitch, pitch_range, 0, volume)
    wav, events = eng.run(text, _PHONEMES)
    sr = eng.sr
  total = len(wav) / sr
  got = _phone_events(events, sr)
  names = [n.replace("'", "").replace(",", "") for n, _ in got]  # 1.52 adds stress marks
  owner = _match(expected, names) if got else []
  # Onset of each input phoneme = onset of the first event attributed to it.
  onset = [None] * len(flat)
  for e, o in enumerate(owner):
    g = group[o]
    if onset[g] is None:
      onset[g] = got[e][1]
  onset = _fill_gaps(onset, total)
  ph = _tile(flat, onset, total)
  out_words, q = [], 0
  for w in words:
    idx = [q + i for i, p in enumerate(w) if p not in _PAUSE_MNEMONICS]
    if idx:
      t0, t1 = ph[idx[0]].start, ph[idx[-1]].end
      out_words.append(Event(" ".join(w[i - q] for i in idx), t0, t1 - t0))
    q += len(w)
  return Synthesis(wav, sr, ph, out_words)


def stretch_segments(wav: np.ndarray, sr: int, src_bounds, dst_durations, *,
                     frame_s: float = 0.025) -> np.ndarray:
  """Time-scales each segment of `wav` to a target duration (WSOLA, pitch unchanged).

  espeak-ng cannot be told a duration per phoneme, so the TTS baseline with ground-truth
  durations synthesises at a normal rate and then warps time: segment k = [src_bounds[k],
  src_bounds[k+1]) becomes dst_durations[k] seconds long. One WSOLA pass follows the piecewise
  linear map from output time to input time: for every output frame (Hann window of `frame_s`,
  50% overlap) it reads the input near the mapped position, shifted within +-frame/4 to the
  offset that best continues the previous frame (cross-correlation), so waveform periods line
  up and there is no phasiness. Segments may shrink or grow by any factor; very short targets
  (< one frame) keep only a frame's worth of the segment's sound.

  Args:
    wav: mono waveform.
    sr: its sample rate.
    src_bounds: K+1 increasing times in seconds (segment boundaries in `wav`).
    dst_durations: K target durations in seconds (>= 0).
    frame_s: analysis frame length in seconds.

  Returns:
    The stretched waveform, round(sum(dst_durations) * sr) samples long.

  Shapes:
    wav: (n,) float32 -> (round(sum(dst_durations) * sr),) float32.
  """
  wav = np.asarray(wav, np.float32)
  src = np.asarray(src_bounds, np.float64) * sr
  dst_d = np.asarray(dst_durations, np.float64)
  if src.ndim != 1 or len(src) != len(dst_d) + 1 or np.any(np.diff(src) < 0) or np.any(dst_d < 0):
    raise UserError("stretch_segments needs K+1 increasing source boundaries and K non-negative "
                    "target durations")
  dst = np.concatenate([[0.0], np.cumsum(dst_d)]) * sr
  n_out = int(round(dst[-1]))
  win = max(int(frame_s * sr) // 2 * 2, 16)
  hop = win // 2
  tol = win // 4
  window = np.hanning(win).astype(np.float32)
  pad = win + tol
  x = np.concatenate([np.zeros(pad, np.float32), wav, np.zeros(2 * pad, np.float32)])
  out = np.zeros(n_out + 2 * win, np.float32)
  norm = np.zeros_like(out)
  # Output time -> input time through the boundary map (np.interp needs increasing xp; equal
  # dst boundaries for zero-length targets are fine because interp takes the last match).
  prev_end = None  # where the previous frame's natural continuation starts in x
  for t_out in range(-hop, n_out + hop, hop):
    centre = t_out + win // 2
    t_in = float(np.interp(centre, dst, src)) - win // 2 + pad
    nominal = int(round(t_in))
    nominal = min(max(nominal, tol), len(x) - win - tol)
    if prev_end is None:
      start = nominal
    else:
      target = x[prev_end:prev_end + win]
      region = x[nominal - tol:nominal + tol + win]
      if len(target) == win and np.any(target):
        corr = np.correlate(region, target, mode="valid")
        start = nominal - tol + int(np.argmax(corr))
      else:
        start = nominal
    frame = x[start:start + win] * window
    o = t_out + win // 2  # output buffer is offset by win//2 so t_out = -hop fits
    lo = max(o, 0)
    out[lo:o + win] += frame[lo - o:]
    norm[lo:o + win] += window[lo - o:]
    prev_end = start + hop
  out = out[win // 2:win // 2 + n_out]
  norm = norm[win // 2:win // 2 + n_out]
  return (out / np.maximum(norm, 1e-3)).astype(np.float32)
