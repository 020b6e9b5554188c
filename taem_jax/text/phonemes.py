"""The project's phoneme set (ARPAbet) and the tokenizer that turns phonemes into ids.

Symbols: the 39 ARPAbet phonemes of CMUdict (15 vowels, 24 consonants), two pause tokens and two
special ids:

* `sil`: silence at the edges of an utterance and after sentence-final punctuation (. ! ?);
* `sp`: a short pause for clause punctuation (, ; : dashes, brackets);
* `<pad>` (id 0) pads batches; `<unk>` (id 1) stands for a symbol outside the set (e.g. MFA's
  `spn`, spoken noise) when encoding with `strict=False`.

**Stress marks are dropped by default** (`stress=False`: `AH0`, `AH1`, `AH2` -> `AH`).
Reasons: (1) TAEM drives a lip-sync model, and lip and jaw shapes are set by the phoneme's
articulation, not by its lexical stress; the acoustic side effects of stress (longer, louder,
more open vowels) are already present in the Wav2Lip audio latent that TAEM is trained to match,
so the model learns them from context and duration. (2) Keeping stress turns 15 vowels into 45
classes (69 symbols instead of 39), and several (e.g. `UH2`, `OY0`) are rare in GRID's small
vocabulary, so their embeddings would be badly trained. (3) Stress labels are the least reliable
part of g2p and aligner output (homographs, neural OOV guesses, MFA dictionary variants), so
dropping them removes label noise. `stress=True` is available for experiments; the flag is part
of the vocabulary's JSON, so a checkpoint trained with one setting refuses the other.

A `PhonemeVocab` is saved with every checkpoint (`to_json`) so checkpoints are self-describing;
synthesis loads it back (`from_json`) and calls `check_matches` against the vocabulary the text
front end produces, which fails with a clear message on a mismatch.
"""
import json

from taem_jax.errors import UserError

VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH",
          "UW")
CONSONANTS = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R",
              "S", "SH", "T", "TH", "V", "W", "Y", "Z", "ZH")
ARPABET = VOWELS + CONSONANTS
SIL = "sil"
SP = "sp"
PAUSES = (SIL, SP)
PAD = "<pad>"
UNK = "<unk>"

_FORMAT = "taem_jax.phoneme_vocab"
_VERSION = 1


def is_pause(p: str) -> bool:
  return p in PAUSES


def strip_stress(p: str) -> str:
  """`AH0` -> `AH`; other symbols unchanged."""
  return p[:-1] if p[-1:].isdigit() and p[:-1] in VOWELS else p


def normalize_symbol(p: str, stress: bool = False) -> str:
  """Brings an ARPAbet symbol from any source (CMUdict, g2p_en, MFA) to the project's spelling.

  Upper-cases phonemes, lower-cases pause tokens, removes stress digits when `stress=False`
  and adds a `0` to a stress-free vowel when `stress=True`.
  """
  q = p.strip()
  if q.lower() in PAUSES:
    return q.lower()
  q = q.upper()
  if not stress:
    return strip_stress(q)
  if q in VOWELS:
    return q + "0"
  return q


class PhonemeVocab:
  """Maps phoneme symbols to integer ids and back.

  Ids: 0 = `<pad>`, 1 = `<unk>`, 2 = `sil`, 3 = `sp`, then ARPAbet in a fixed order (vowels
  expanded to stress 0/1/2 when `stress=True`).
  """

  def __init__(self, stress: bool = False, symbols: list[str] | None = None):
    self.stress = bool(stress)
    if symbols is None:
      symbols = [PAD, UNK, SIL, SP]
      for p in ARPABET:
        symbols += [p + s for s in "012"] if (stress and p in VOWELS) else [p]
    if len(set(symbols)) != len(symbols) or symbols[:2] != [PAD, UNK]:
      raise UserError("malformed phoneme vocabulary: symbols must be unique and start with "
                      f"{PAD!r}, {UNK!r}")
    self.symbols = list(symbols)
    self._ids = {s: i for i, s in enumerate(self.symbols)}

  pad_id = 0
  unk_id = 1

  def __len__(self) -> int:
    return len(self.symbols)

  def __contains__(self, p: str) -> bool:
    return p in self._ids

  def __eq__(self, other) -> bool:
    return (isinstance(other, PhonemeVocab) and self.stress == other.stress
            and self.symbols == other.symbols)

  def __hash__(self):
    return hash((self.stress, tuple(self.symbols)))

  def __repr__(self):
    return f"PhonemeVocab(stress={self.stress}, size={len(self)})"

  def normalize(self, phonemes) -> list[str]:
    """Brings symbols to this vocabulary's spelling (stress digits kept or dropped)."""
    return [normalize_symbol(p, self.stress) for p in phonemes]

  def encode(self, phonemes, *, strict: bool = True) -> list[int]:
    """Symbols -> ids (symbols are normalised first, so `AH0` works in a stress-free vocab).

    With strict=True an unknown symbol raises UserError; otherwise it becomes `<unk>`.
    """
    ids = []
    for p in phonemes:
      i = self._ids.get(normalize_symbol(p, self.stress))
      if i is None:
        if strict:
          raise UserError(f"phoneme {p!r} is not in the phoneme vocabulary ({self!r}); expected "
                          "ARPAbet symbols or sil/sp")
        i = self.unk_id
      ids.append(i)
    return ids

  def decode(self, ids, *, drop_pad: bool = True) -> list[str]:
    """Ids -> symbols (padding removed unless drop_pad=False)."""
    out = []
    for i in ids:
      i = int(i)
      if not 0 <= i < len(self.symbols):
        raise UserError(f"phoneme id {i} is outside the vocabulary (size {len(self)})")
      if drop_pad and i == self.pad_id:
        continue
      out.append(self.symbols[i])
    return out

  def to_dict(self) -> dict:
    return {"format": _FORMAT, "version": _VERSION, "stress": self.stress, "pad_id": self.pad_id,
            "unk_id": self.unk_id, "symbols": self.symbols}

  def to_json(self) -> str:
    return json.dumps(self.to_dict())

  @classmethod
  def from_dict(cls, d: dict) -> "PhonemeVocab":
    if not isinstance(d, dict) or d.get("format") != _FORMAT:
      raise UserError("not a phoneme vocabulary (missing format tag "
                      f"{_FORMAT!r}); was the checkpoint written by taem_jax?")
    if d.get("version") != _VERSION:
      raise UserError(f"phoneme vocabulary version {d.get('version')} is not supported "
                      f"(this taem_jax reads version {_VERSION}); upgrade taem_jax")
    if d.get("pad_id") != 0 or d.get("unk_id") != 1:
      raise UserError("phoneme vocabulary has unexpected pad/unk ids; expected 0 and 1")
    return cls(stress=d["stress"], symbols=list(d["symbols"]))

  @classmethod
  def from_json(cls, s: str) -> "PhonemeVocab":
    try:
      d = json.loads(s)
    except json.JSONDecodeError as e:
      raise UserError(f"phoneme vocabulary is not valid JSON: {e}") from None
    return cls.from_dict(d)

  def matches(self, other: "PhonemeVocab") -> bool:
    return self == other

  def check_matches(self, other: "PhonemeVocab", what: str = "checkpoint") -> None:
    """Raises UserError when `other` (e.g. the vocabulary stored in a checkpoint) differs."""
    if self.matches(other):
      return
    if self.stress != other.stress:
      detail = (f"the {what} was built with stress={other.stress}, the text front end uses "
                f"stress={self.stress}")
    else:
      diff = sorted(set(self.symbols) ^ set(other.symbols))
      detail = (f"symbols differ ({', '.join(diff[:6])}{'...' if len(diff) > 6 else ''})" if diff
                else "symbol order differs")
    raise UserError(f"phoneme vocabulary mismatch: {detail}; use the vocabulary saved with the "
                    f"{what}")
