"""GRID alignments matched to talkers by content (the Zenodo alignments.zip misfiles folders)."""
import numpy as np
import pytest

from taem_jax.data import corpus
from taem_jax.data.grid import grid_dataset_builder as grid
from taem_jax.errors import UserError

LETTERS = "abcdefghijklmnopqrstuvxyz"


def _utts(rng, n):
  """n distinct GRID utterance names."""
  out = set()
  while len(out) < n:
    out.add("".join([rng.choice(list("blps")), rng.choice(list("bgrw")), rng.choice(list("abiw")),
                     rng.choice(list(LETTERS)), rng.choice(list("z123456789")),
                     rng.choice(list("anps"))]))
  return sorted(out)


def _align_text(utt, talker_index):
  """A .align whose first word starts at a talker-specific time, so pairings can be checked."""
  words = grid.sentence_of(utt)
  t, lines = 1000 * talker_index, [f"0 {1000 * talker_index} sil"]
  for w in words:
    lines.append(f"{t} {t + 5000} {w}")
    t += 5000
  lines.append(f"{t} 75000 sil")
  return "\n".join(lines) + "\n"


def _zenodo_tree(root, talkers, clips, align_folder_of):
  """GRID layout with videos s<k>/<utt>.mpg and the alignments of talker k filed under
  alignments/<align_folder_of[k]>/."""
  rng = np.random.default_rng(0)
  names = {}
  for k in talkers:
    names[k] = _utts(rng, clips)
    (root / f"s{k}").mkdir(parents=True)
    adir = root / "alignments" / align_folder_of.get(k, f"s{k}")
    adir.mkdir(parents=True, exist_ok=True)
    for u in names[k]:
      (root / f"s{k}" / f"{u}.mpg").write_bytes(b"\x00")
      (adir / f"{u}.align").write_text(_align_text(u, k))
  return names


def test_sentence_of_spells_the_name():
  assert grid.sentence_of("bbaf2n") == ("bin", "blue", "at", "f", "two", "now")
  assert grid.sentence_of("LWIZ9A") == ("lay", "white", "in", "z", "nine", "again")
  assert grid.sentence_of("xxxxxx") is None and grid.sentence_of("bbaf2") is None


def test_misfiled_alignment_folders_are_recovered_and_never_mispaired(tmp_path):
  # Talkers 1 and 2 swapped; talker 3 filed under s21 (a talker with no video); 4 correct.
  folder_of = {1: "s2", 2: "s1", 3: "s21"}
  names = _zenodo_tree(tmp_path, (1, 2, 3, 4), 12, folder_of)
  report, skipped = {}, []
  clips = grid.list_clips(tmp_path, skipped.append, report)
  assert not skipped and len(clips) == 48
  for c in clips:
    k = int(c.speaker[1:])
    first_word = c.word_align.read_text().splitlines()[1].split()
    assert int(first_word[0]) == 1000 * k, f"{c.uid} paired with another talker's timings"
    assert c.text == " ".join(grid.sentence_of(c.uid.split("/")[1]))
  assert report["s1"]["recovered_from"] == ["alignments/s2"]
  assert report["s2"]["recovered_from"] == ["alignments/s1"]
  assert report["s3"]["recovered_from"] == ["alignments/s21"]
  assert report["s4"] == {"kept": 12, "skipped": {}, "alignments": ["alignments/s4"],
                          "recovered_from": []}
  lines = corpus.report_lines(report)
  assert lines[0] == "s1: kept 12, skipped none; alignments recovered from alignments/s2"
  assert sum(len(v) for v in names.values()) == 48


def test_an_alignment_of_another_sentence_is_skipped(tmp_path):
  names = _zenodo_tree(tmp_path, (1,), 4, {})
  bad = tmp_path / "alignments" / "s1" / f"{names[1][0]}.align"
  bad.write_text(_align_text("pwiq7s" if names[1][0] != "pwiq7s" else "bbaf2n", 1))
  report = {}
  clips = grid.list_clips(tmp_path, None, report)
  assert len(clips) == 3 and report["s1"]["skipped"] == {"alignment_mismatch": 1}


def test_missing_alignments_are_counted_per_talker(tmp_path):
  names = _zenodo_tree(tmp_path, (1, 2), 4, {})
  (tmp_path / "alignments" / "s2" / f"{names[2][1]}.align").unlink()
  report = {}
  clips = grid.list_clips(tmp_path, None, report)
  assert len(clips) == 7
  assert report["s2"]["skipped"] == {"missing_alignment": 1} and report["s1"]["skipped"] == {}


def test_merged_flat_align_folder_is_refused_with_the_unpack_command(tmp_path):
  (tmp_path / "s1").mkdir()
  (tmp_path / "s1" / "bbaf2n.mpg").write_bytes(b"\x00")
  (tmp_path / "align").mkdir()
  (tmp_path / "align" / "bbaf2n.align").write_text(_align_text("bbaf2n", 1))
  with pytest.raises(UserError, match=r"its own folder.*tar -xf s1.tar -C alignments/s1"):
    grid.list_clips(tmp_path)
