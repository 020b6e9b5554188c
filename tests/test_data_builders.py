"""TCD-TIMIT and LRS2 builders on dummy corpora made by code; bad folders; corrupt clips."""
import dataclasses
import shutil

import numpy as np
import pytest

import corpus_trees
from taem_jax.data import corpus, prepare
from taem_jax.data.grid import grid_dataset_builder as grid
from taem_jax.data.lrs2 import lrs2_dataset_builder as lrs2
from taem_jax.data.sample import dummy, portraits
from taem_jax.data.tcd_timit import tcd_timit_dataset_builder as tcd
from taem_jax.errors import UserError
from taem_jax.face import FaceDetector
from taem_jax.text import alignments as A

SENTENCES = ["she had your dark suit", "greasy wash water", "don't ask me"]


@pytest.fixture(scope="module")
def portraits2():
  return portraits.make_portraits(2, 160, np.random.default_rng(0), FaceDetector())


def _ids(b, split):
  return set(corpus_trees.examples(b, split))


@pytest.fixture(scope="module")
def tcd_corpus(tmp_path_factory, portraits2):
  root = tmp_path_factory.mktemp("tcd")
  prompts = []
  for s, spk in enumerate(("01M", "02F")):
    cam = root / "volunteers" / spk / "Clips" / "straightcam"
    cam.mkdir(parents=True)
    for k, text in enumerate(SENTENCES):
      utt = f"sx{10 + k}"
      dummy.write_clip(cam / f"{utt}.mp4", text, portraits2[s], fps=29.97, seed=k, trail_s=0.1)
      if s == 0:
        prompts.append(f"{text} ({utt})")
  (root / "prompts.txt").write_text("\n".join(prompts) + "\n")
  return root


@pytest.fixture(scope="module")
def lrs2_corpus(tmp_path_factory, portraits2):
  root = tmp_path_factory.mktemp("lrs2")
  lists = {"train.txt": [], "val.txt": [], "test.txt": []}
  for s, show in enumerate(("6330311066473698535", "6331559613336179781")):
    d = root / "main" / show
    d.mkdir(parents=True)
    for k, text in enumerate(SENTENCES):
      clip = f"{k + 1:05d}"
      dummy.write_clip(d / f"{clip}.mp4", text, portraits2[s], seed=k, trail_s=0.1)
      (d / f"{clip}.txt").write_text(f"Text:  {text.upper()}\nConf:  4\n")
      name = ("train.txt", "val.txt", "test.txt")[k] if s == 0 else "train.txt"
      lists[name].append(f"{show}/{clip}" + (" NF" if name == "test.txt" else ""))
  lists["train.txt"].append("6331559613336179781/00099")  # listed, but not on disk
  for name, lines in lists.items():
    (root / name).write_text("\n".join(lines) + "\n")
  return root


def test_tcd_timit_builder(tcd_corpus, tmp_path):
  b = corpus_trees.build(tcd, tcd_corpus, tmp_path)
  train, test = _ids(b, "train"), _ids(b, "test")
  assert not train & test and len(train | test) == 6
  assert {i.split("/")[0] for i in test} == {"01M", "02F"}  # seen speakers
  src = b.as_data_source(split="train")
  ex = src[0]
  n = int(ex["n_frames"])
  # 29.97 fps clips come out at 25 fps: frames match the audio length at 25 fps.
  assert abs(len(ex["mel"]) - (1 + 3.2 * n)) <= 1
  assert int(ex["durations"].sum()) == 4 * n and len(ex["faces"]) == n
  assert ex["text"].decode() in SENTENCES


def test_lrs2_builder_official_lists_and_missing_clip(lrs2_corpus, tmp_path):
  b = corpus_trees.build(lrs2, lrs2_corpus, tmp_path)
  assert set(b.info.splits) == {"train", "val", "test"}
  assert _ids(b, "val") == {"6330311066473698535/00002"}
  assert _ids(b, "test") == {"6330311066473698535/00003"}
  assert len(_ids(b, "train")) == 4
  assert b.info.metadata["skipped"]["listing"] == {"listed_but_missing": 1}


def test_corrupt_video_is_skipped_and_counted(lrs2_corpus, tmp_path):
  root = tmp_path / "lrs2"
  src = lrs2_corpus / "main" / "6330311066473698535"
  (root / "main" / "a").mkdir(parents=True)
  for clip in ("00001", "00002"):
    for ext in (".mp4", ".txt"):
      shutil.copy(src / (clip + ext), root / "main" / "a" / (clip + ext))
  (root / "main" / "a" / "00002.mp4").write_bytes(b"\x00not a video" * 100)
  (root / "train.txt").write_text("a/00001\na/00002\n")
  (root / "val.txt").write_text("")
  (root / "test.txt").write_text("")
  b = corpus_trees.build(lrs2, root, tmp_path / "tfds")
  assert _ids(b, "train") == {"a/00001"}
  assert b.info.metadata["skipped"]["train"] == {"unreadable_video": 1}


def test_bad_manual_dirs(tmp_path):
  with pytest.raises(UserError, match="does not exist"):
    corpus_trees.build(grid, tmp_path / "nope", tmp_path / "d1")
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match=r"s1/\*\.mpg"):
    corpus_trees.build(grid, tmp_path / "empty", tmp_path / "d2")
  with pytest.raises(UserError, match="volunteers"):
    corpus_trees.build(tcd, tmp_path / "empty", tmp_path / "d3")
  with pytest.raises(UserError, match="main/"):
    corpus_trees.build(lrs2, tmp_path / "empty", tmp_path / "d4")
  (tmp_path / "lrs" / "main").mkdir(parents=True)
  with pytest.raises(UserError, match="train.txt"):
    corpus_trees.build(lrs2, tmp_path / "lrs", tmp_path / "d5")
  g = tmp_path / "g" / "s1"
  g.mkdir(parents=True)
  (g / "bbaf2n.mpg").write_bytes(b"x")
  with pytest.raises(UserError, match=r"alignments/s1/\*\.align"):
    corpus_trees.build(grid, tmp_path / "g", tmp_path / "d6")


@pytest.mark.parametrize("entry", ["01M/sx191", "01M_sx191", "01M_SX191.mp4",
                                   "volunteers/01M/Clips/straightcam/sx191.mp4",
                                   "/data/TCDTIMIT/volunteers/01M/straightcam/SX191.MP4"])
def test_tcd_timit_public_split_list_formats(entry):
  assert tcd.normalize_split_id(entry) == "01M/sx191"


def test_tcd_timit_split_lists_in_public_formats_select_the_clips(tmp_path):
  class _Clip:
    def __init__(self, uid):
      self.uid = uid
  clips = [_Clip("01M/sa1"), _Clip("01M/sx191"), _Clip("02F/sa1")]
  (tmp_path / "splits").mkdir()
  (tmp_path / "splits" / "test.txt").write_text("volunteers/01M/Clips/straightcam/sx191.mp4\n")
  (tmp_path / "splits" / "train.txt").write_text("01M_sa1\n02F/sa1\n")
  out = corpus.user_splits(tmp_path, clips, tcd.normalize_split_id)
  assert [c.uid for c in out["test"]] == ["01M/sx191"]
  assert [c.uid for c in out["train"]] == ["01M/sa1", "02F/sa1"]
  (tmp_path / "splits" / "test.txt").write_text("volunteers/09F/Clips/straightcam/sx1.mp4\n")
  with pytest.raises(UserError, match="not found"):
    corpus.user_splits(tmp_path, clips, tcd.normalize_split_id)


def test_cache_id_follows_the_label_sources(tmp_path):
  grid_align = tmp_path / "a.align"
  grid_align.write_text("0 1000 sil\n1000 5000 bin\n")
  base = prepare.Clip(uid="s1/x", speaker="s1", video=tmp_path / "x.mp4", word_align=grid_align)
  same = prepare.Clip(uid="s1/x", speaker="s1", video=tmp_path / "moved" / "x.mp4",
                      word_align=grid_align)
  before = base.cache_id
  assert before == same.cache_id and before.startswith("s1/x#")
  phones = (A.Interval("sil", 0.0, 0.1),)
  assert dataclasses.replace(base, phones=phones).cache_id != before
  grid_align.write_text("0 2000 sil\n2000 5000 bin\n")  # the labels changed
  assert base.cache_id != before
