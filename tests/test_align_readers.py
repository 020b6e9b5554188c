"""Alignment readers (MFA TextGrid long/short, GRID .align) and frame-duration conversion."""
import numpy as np
import pytest

from taem_jax.errors import UserError
from taem_jax.text import alignments as A

WORDS = [("", 0.0, 0.31), ("hello", 0.31, 0.72), ("", 0.72, 0.80), ("world", 0.80, 1.33),
         ("", 1.33, 1.5)]
PHONES = [("", 0.0, 0.31), ("HH", 0.31, 0.38), ("AH0", 0.38, 0.45), ("L", 0.45, 0.55),
          ("OW1", 0.55, 0.72), ("sp", 0.72, 0.76), ("", 0.76, 0.80), ("W", 0.80, 0.88),
          ("ER1", 0.88, 1.05), ("L", 1.05, 1.2), ("D", 1.2, 1.33), ("sil", 1.33, 1.5)]


def long_textgrid(tiers, xmax=1.5):
  out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0",
         f"xmax = {xmax}", "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
  for t, (name, items) in enumerate(tiers, 1):
    out += [f"    item [{t}]:", '        class = "IntervalTier"', f'        name = "{name}"',
            "        xmin = 0", f"        xmax = {xmax}", f"        intervals: size = {len(items)}"]
    for k, (lab, a, b) in enumerate(items, 1):
      out += [f"        intervals [{k}]:", f"            xmin = {a}", f"            xmax = {b}",
              f'            text = "{lab}"']
  return "\n".join(out) + "\n"


def short_textgrid(tiers, xmax=1.5):
  out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", str(xmax),
         "<exists>", str(len(tiers))]
  for name, items in tiers:
    out += ['"IntervalTier"', f'"{name}"', "0", str(xmax), str(len(items))]
    for lab, a, b in items:
      out += [str(a), str(b), f'"{lab}"']
  return "\n".join(out) + "\n"


@pytest.mark.parametrize("writer", [long_textgrid, short_textgrid])
def test_read_textgrid_both_formats(tmp_path, writer):
  path = tmp_path / "utt.TextGrid"
  path.write_text(writer([("words", WORDS), ("phones", PHONES)]))
  phones = A.read_textgrid(path)
  assert [(i.label, i.start, i.end) for i in phones] == PHONES
  words = A.read_textgrid(str(path), tier="words")
  assert [i.label for i in words] == ["", "hello", "", "world", ""]
  with pytest.raises(UserError, match="no tier 'syllables'"):
    A.read_textgrid(path, tier="syllables")


def test_mfa2_speaker_prefixed_tiers_and_utf16(tmp_path):
  path = tmp_path / "utt.TextGrid"
  path.write_text(long_textgrid([("spk - words", WORDS), ("spk - phones", PHONES)]),
                  encoding="utf-16")
  assert len(A.read_textgrid(path)) == len(PHONES)


def test_mfa_phone_mapping():
  ivs = A.mfa_phones([A.Interval(*p) for p in PHONES])
  assert [i.label for i in ivs] == ["sil", "HH", "AH0", "L", "OW1", "sp", "W", "ER1", "L", "D",
                                    "sil"]
  # The merged internal pause spans both source intervals.
  assert (ivs[5].start, ivs[5].end) == (0.72, 0.80)
  ivs = A.mfa_phones([A.Interval(*p) for p in PHONES], stress=False)
  assert ivs[2].label == "AH"
  assert A.mfa_phones([A.Interval("spn", 0, 1)])[0].label == "spn"
  with pytest.raises(UserError, match="not ARPAbet"):
    A.mfa_phones([A.Interval("ɹ", 0.0, 0.1)])


def test_malformed_textgrid(tmp_path):
  bad = tmp_path / "bad.TextGrid"
  bad.write_text("hello\n")
  with pytest.raises(UserError, match="not a Praat TextGrid|well-formed"):
    A.read_textgrid(bad)
  bad.write_text(short_textgrid([("phones", PHONES)])[:200])
  with pytest.raises(UserError, match="well-formed"):
    A.read_textgrid(bad)
  with pytest.raises(UserError, match="not found"):
    A.read_textgrid(tmp_path / "missing.TextGrid")


GRID_ALIGN = """0 23750 sil
23750 29500 bin
29500 34000 blue
34000 35500 sp
35500 41000 at
41000 47250 f
47250 53000 two
53000 61500 now
61500 74500 sil
"""


def test_read_grid_align(tmp_path):
  path = tmp_path / "bbaf2n.align"
  path.write_text(GRID_ALIGN)
  ivs = A.read_grid_align(path)
  assert [i.label for i in ivs] == ["sil", "bin", "blue", "sp", "at", "f", "two", "now", "sil"]
  assert ivs[1].start == pytest.approx(0.95) and ivs[-1].end == pytest.approx(2.98)
  path.write_text("0 10 sil\n10 x bin\n")
  with pytest.raises(UserError, match="line 2"):
    A.read_grid_align(path)


@pytest.mark.parametrize("split", ["espeak", "uniform"])
def test_grid_words_to_phones(split):
  words = A.read_grid_align(GRID_ALIGN)
  phones = A.grid_phone_intervals(words, split=split, stress=False)
  labels = [p.label for p in phones]
  assert labels == ["sil", "B", "IH", "N", "B", "L", "UW", "sp", "AE", "T", "EH", "F", "T", "UW",
                    "N", "AW", "sil"]
  # Phones tile each word's span exactly.
  assert phones[1].start == words[1].start and phones[3].end == pytest.approx(words[1].end)
  assert all(a.end == pytest.approx(b.start) for a, b in zip(phones, phones[1:]))
  if split == "uniform":
    assert phones[1].dur == pytest.approx(phones[2].dur)


def test_frame_durations_sum_exactly_and_use_frame_centres():
  ivs = A.mfa_phones([A.Interval(*p) for p in PHONES])
  n = A.n_mel_frames(int(1.5 * 16000))
  assert n == 151
  labels, d = A.to_frame_durations(ivs, n)
  assert d.sum() == n and d.min() >= 1 and len(labels) == len(d)
  # HH starts at 0.31 s: frames 0..30 have centres before it -> sil has 31 frames.
  assert d[0] == 31
  # A recording longer than the alignment: the last segment absorbs the difference.
  labels, d2 = A.to_frame_durations(ivs, n + 40)
  assert d2.sum() == n + 40 and d2[-1] == d[-1] + 40


def test_boundaries_to_durations_minimum_one_frame():
  # Five segments crammed into 2 frames of time, but 10 frames available in total.
  d = A.boundaries_to_durations([0, 0.1, 0.2, 0.3, 0.4, 10], 10)
  assert d.sum() == 10 and d.min() >= 1
  # Fewer frames than segments: the sum is still exact (some must be 0).
  d = A.boundaries_to_durations(np.linspace(0, 3, 6), 3)
  assert d.sum() == 3 and d.min() >= 0
  back = A.durations_to_intervals(["a", "b"], [3, 7])
  assert (back[1].start, back[1].end) == (0.03, 0.1)
