"""The phoneme vocabulary: ids, round trips, JSON, mismatch detection."""
import json

import pytest

from taem_jax.errors import UserError
from taem_jax.text import PhonemeVocab, text_to_phonemes
from taem_jax.text.phonemes import ARPABET, VOWELS, normalize_symbol


def test_sizes_and_special_ids():
  v = PhonemeVocab()
  assert len(v) == 4 + 39
  assert v.decode([0, 1, 2, 3], drop_pad=False) == ["<pad>", "<unk>", "sil", "sp"]
  s = PhonemeVocab(stress=True)
  assert len(s) == 4 + len(ARPABET) + 2 * len(VOWELS)
  assert "AH0" in s and "AH" not in s


def test_round_trip_of_g2p_output():
  for stress in (False, True):
    v = PhonemeVocab(stress=stress)
    ph = text_to_phonemes("Hello there, general Kenobi!", stress=stress)
    ids = v.encode(ph)
    assert all(2 <= i < len(v) for i in ids)
    assert v.decode(ids) == ph
    assert v.decode(ids + [v.pad_id] * 3) == ph


def test_stress_normalisation_on_encode():
  v = PhonemeVocab()
  assert v.encode(["AH0", "AH1", "ah"]) == v.encode(["AH", "AH", "AH"])
  assert normalize_symbol("UW", stress=True) == "UW0"
  assert normalize_symbol("SIL") == "sil"


def test_unknown_symbols():
  v = PhonemeVocab()
  with pytest.raises(UserError, match="not in the phoneme vocabulary"):
    v.encode(["K", "spn"])
  assert v.encode(["K", "spn"], strict=False)[1] == v.unk_id
  with pytest.raises(UserError, match="outside the vocabulary"):
    v.decode([999])


def test_json_round_trip_and_mismatch():
  v = PhonemeVocab()
  w = PhonemeVocab.from_json(v.to_json())
  assert w == v and w.matches(v)
  d = json.loads(v.to_json())
  assert d["version"] == 1 and d["stress"] is False and d["pad_id"] == 0 and d["unk_id"] == 1
  s = PhonemeVocab(stress=True)
  assert not v.matches(s)
  with pytest.raises(UserError, match="stress=True"):
    v.check_matches(s)
  d["symbols"] = d["symbols"][:-1]
  with pytest.raises(UserError, match="symbols differ"):
    v.check_matches(PhonemeVocab.from_dict(d))
  with pytest.raises(UserError, match="not a phoneme vocabulary"):
    PhonemeVocab.from_json('{"symbols": []}')
  with pytest.raises(UserError, match="version"):
    PhonemeVocab.from_dict({**json.loads(v.to_json()), "version": 99})
