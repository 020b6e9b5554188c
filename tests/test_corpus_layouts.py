"""TCD-TIMIT and LRS2 as their users download them: the HTK label file, LRS2's pretrain/ with
its word tables and the official lists; trees made by code (tests/corpus_trees.py)."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import corpus_trees
from corpus_trees import LEAD_S, lrs2_tree, mlf_entry, speech_phones, tcd_timit_tree
from taem_jax import models, video
from taem_jax.data.lrs2 import lrs2_dataset_builder as lrs2
from taem_jax.data.sample import portraits
from taem_jax.data.tcd_timit import tcd_timit_dataset_builder as tcd
from taem_jax.errors import UserError
from taem_jax.face import FaceDetector
from taem_jax.models import pretrained
from taem_jax.text import PhonemeVocab, g2p
from taem_jax.text import alignments as A

SENTENCES = ["she had your dark suit", "greasy wash water"]
REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")


@pytest.fixture(scope="module")
def faces2():
  return portraits.make_portraits(2, 160, np.random.default_rng(3), FaceDetector())




# -- the HTK master label file ----------------------------------------------------------------

MLF = """#!MLF!#
"Q:\\TCDTIMIT\\volunteers\\01M\\Clips\\straightcam\\sa1.rec"
0 10700001 sil
10700000 11800000 sh -51.2
11800000 12300000 iy
12300000 13000000 dx
13000000 13400000 q
13400000 14000000 sil
14000000 15000000 ax
15000000 16000000 sil
.
"*/02F/sx10.lab"
0 5000000 sil
5000000 6000000 b
6000000 9000000 sil
.
"""


def test_read_htk_mlf_keeps_names_times_and_labels():
  mlf = A.read_htk_mlf(MLF)
  assert list(mlf) == ["Q:\\TCDTIMIT\\volunteers\\01M\\Clips\\straightcam\\sa1.rec",
                       "*/02F/sx10.lab"]
  first = mlf[next(iter(mlf))]
  assert [iv.label for iv in first][:3] == ["sil", "sh", "iy"]
  assert first[0].end == pytest.approx(1.0700001) and first[1].start == pytest.approx(1.07)
  assert [tcd.label_key(n) for n in mlf] == [("01M", "sa1"), ("02F", "sx10")]


@pytest.mark.parametrize("text, msg", [
    ("0 1 sil\n.\n", "first line must be #!MLF!#"),
    ('#!MLF!#\n"*/a/b.lab"\n0 100 sil\n', "no closing '.'"),
    ('#!MLF!#\n"*/a/b.lab"\nsil\n.\n', "times are needed"),
    ('#!MLF!#\n"*/a/b.lab"\n0 x sil\n.\n', "100 ns units"),
    ('#!MLF!#\n0 100 sil\n.\n', "quoted label-file name"),
])
def test_read_htk_mlf_refuses_malformed_files(text, msg):
  with pytest.raises(UserError, match=msg):
    A.read_htk_mlf(text)


def test_htk_phones_maps_to_the_project_symbols():
  ivs = A.htk_phones(A.read_htk_mlf(MLF)["Q:\\TCDTIMIT\\volunteers\\01M\\Clips\\straightcam\\"
                                        "sa1.rec"])
  # Edges sil, inner silence sp, TIMIT's flap dx -> D, glottal stop q merged into the phone
  # before it, schwa ax -> AH.
  assert [iv.label for iv in ivs] == ["sil", "SH", "IY", "D", "sp", "AH", "sil"]
  assert ivs[3].end == pytest.approx(1.34)
  vocab = PhonemeVocab()
  assert vocab.unk_id not in vocab.encode([iv.label for iv in ivs])
  with pytest.raises(UserError, match="neither ARPAbet nor a TIMIT phone"):
    A.htk_phones([A.Interval("xx", 0.0, 1.0)])


@pytest.mark.parametrize("name, key", [
    ("*/01M/sa1.lab", ("01M", "sa1")),
    ("/media/x/TCDTIMIT/volunteers/59F/Clips/straightcam/SX191.mp4", ("59F", "sx191")),
    ("D:\\data\\volunteers\\03F\\Clips\\straightcam\\si1001.rec", ("03F", "si1001")),
    ("x/lipspeakers/Lipspkr1/Clips/straightcam/sa2.mp4", ("Lipspkr1", "sa2")),
    ("*/sa1.lab", None),
])
def test_label_key(name, key):
  assert tcd.label_key(name) == key


def test_label_differences_counts_what_g2p_says_otherwise():
  # TCD-TIMIT-style labels of "she had your dark suit": 'your' said Y UH R (g2p: Y AO R),
  # a pause after 'had' that the text has no punctuation for, 'dark' without its R.
  labels = ["sil", "SH", "IY", "HH", "AE", "D", "sp", "Y", "UH", "R", "D", "AA", "K", "S",
            "UW", "T", "sil"]
  ivs = [A.Interval(l, k * 0.1, (k + 1) * 0.1) for k, l in enumerate(labels)]
  d = tcd.label_differences(ivs, "she had your dark suit")
  assert (d["substituted"], d["deleted"], d["inserted"]) == (1, 1, 0)
  assert d["pairs"] == [("AO", "UH")] and d["pauses_labels"] == 1 and d["pauses_g2p"] == 0
  assert d["phonemes"] == 14


# -- TCD-TIMIT builds from its own labels -------------------------------------------------------

@pytest.fixture(scope="module")
def tcd_tree(tmp_path_factory, faces2):
  root = tmp_path_factory.mktemp("tcd_mlf")
  # Two volunteers, one sentence each (every clip in train); no prompts: the label file alone.
  texts = tcd_timit_tree(root, faces2, SENTENCES[:1])
  return root, texts


def test_tcd_timit_builds_from_the_label_file_alone(tcd_tree, tmp_path):
  root, texts = tcd_tree
  b = corpus_trees.build(tcd, root, tmp_path)
  exs = corpus_trees.examples(b, "train")
  assert set(exs) == set(texts)
  vocab = PhonemeVocab.from_json(b.info.metadata["vocab"])
  for uid, ex in exs.items():
    n = int(ex["n_frames"])
    d = np.asarray(ex["durations"])
    assert int(d.sum()) == 4 * n and len(ex["faces"]) == n
    want = ["sil"] + [p for p, _, _ in speech_phones(texts[uid])] + ["sil"]
    assert vocab.decode(ex["phonemes"]) == want
    # Each boundary is the label file's own (100 fps frames, the frame-centre rule).
    bounds = np.cumsum(d)[:-1]
    ref = np.ceil(np.array([LEAD_S] + [s for _, s, _ in speech_phones(texts[uid])[1:]]
                           + [speech_phones(texts[uid])[-1][2]]) * 100 - 1e-6)
    assert np.abs(bounds - ref).max() <= 1, (bounds, ref)


def test_tcd_timit_label_file_that_misses_clips(tcd_tree, tmp_path):
  root, texts = tcd_tree
  other = tmp_path / "other"
  for p in root.rglob("*.mp4"):
    dst = other / p.relative_to(root)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(p)
  # A label file for other clips: a clear error, not an empty dataset.
  (other / "volunteer_labelfiles.mlf").write_text(
      "\n".join(["#!MLF!#"] + mlf_entry("*/40F/sa1.lab", SENTENCES[0], 80, 29.97)) + "\n")
  with pytest.raises(UserError, match="labels none of the clips"):
    tcd.list_clips(other)
  # One clip labelled: it is kept, the others are counted as missing labels.
  (other / "volunteer_labelfiles.mlf").write_text(
      "\n".join(["#!MLF!#"] + mlf_entry("*/01M/sx10.lab", SENTENCES[0], 80, 29.97)) + "\n")
  skips = {}
  clips = tcd.list_clips(other, lambda r: skips.__setitem__(r, skips.get(r, 0) + 1))
  assert [c.uid for c in clips] == ["01M/sx10"] and skips == {"missing_labels": 1}


# -- LRS2: main/ and pretrain/ ---------------------------------------------------------------------

PRETRAIN_TXT = """Text:  WE NEED TO LOOK AT FISH
Conf:  3

WORD START END ASDSCORE
WE 0.10 0.30 5.1
NEED 0.32 0.60 6.0
TO 0.90 1.00 4.2
LOOK 1.05 1.40 7.3
AT 1.42 1.50 6.6
FISH 2.60 3.10 8.0
"""


def test_lrs2_word_table_pieces_and_intervals(tmp_path, monkeypatch):
  txt = tmp_path / "00001.txt"
  txt.write_text(PRETRAIN_TXT)
  words = lrs2.read_word_table(txt)
  assert [w.word for w in words] == ["we", "need", "to", "look", "at", "fish"]
  assert words[-1].end == pytest.approx(3.1)
  assert [[w.word for w in g] for g in lrs2.cut_pieces(words, 1.35)] == [
      ["we", "need", "to", "look"], ["at"], ["fish"]]
  ivs = lrs2.word_intervals(words[:3], 0.0, 1.2)
  # Edge silences, a pause where the speaker paused (0.30 s gap), a short gap split in two.
  assert [(iv.label, round(iv.start, 2), round(iv.end, 2)) for iv in ivs] == [
      ("sil", 0.0, 0.1), ("we", 0.1, 0.31), ("need", 0.31, 0.6), ("sp", 0.6, 0.9),
      ("to", 0.9, 1.0), ("sil", 1.0, 1.2)]
  monkeypatch.setattr(lrs2, "MAX_PIECE_S", 1.35)
  video = tmp_path / "00001.mp4"
  clips = lrs2.pretrain_clips("123/00001", video, txt)
  assert [c.uid for c in clips] == [f"pretrain/123/00001_{k:02d}" for k in range(3)]
  assert [c.text for c in clips] == ["we need to look", "at", "fish"]
  spans = [c.span for c in clips]
  assert spans[0][0] == 0 and all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
  # Each piece's intervals cover it exactly, in seconds from its first frame.
  for c in clips:
    assert c.words[0].start == 0.0
    assert c.words[-1].end == pytest.approx((c.span[1] - c.span[0]) / 25)
  monkeypatch.setattr(lrs2, "MAX_PIECE_S", 6.0)
  (whole,) = lrs2.pretrain_clips("123/00001", video, txt)
  assert whole.uid == "pretrain/123/00001" and whole.span is None
  txt.write_text("Text:  WE NEED\nConf:  3\n\nWORD START END ASDSCORE\nWE 0.5 0.2 1.0\n")
  with pytest.raises(UserError, match="line 5: word times go backwards"):
    lrs2.read_word_table(txt)


@pytest.fixture(scope="module")
def lrs2_tree_root(tmp_path_factory, faces2):
  root = tmp_path_factory.mktemp("lrs2_full")
  lrs2_tree(root, faces2[:1], ["greasy wash water"],
            ["she had your dark suit in greasy wash water"], shows=("6330311066473698535",))
  return root


def test_lrs2_lists_and_missing_parts(lrs2_tree_root, tmp_path):
  splits = lrs2.list_splits(lrs2_tree_root)
  assert {k: len(v) for k, v in splits.items()} == {"train": 1, "val": 0, "test": 0,
                                                    "pretrain": 1}
  assert splits["pretrain"][0].uid == "pretrain/6330311066473698535/00001"
  # pretrain/ unpacked without its list: one clear line.
  bad = tmp_path / "bad"
  bad.mkdir()
  for name in ("main", "pretrain", "train.txt", "val.txt", "test.txt"):
    (bad / name).symlink_to(lrs2_tree_root / name)
  with pytest.raises(UserError, match="pretrain.txt is missing"):
    lrs2.list_splits(bad)
  # The list without the folder (a main-only download): no pretrain split.
  (bad / "pretrain").unlink()
  (bad / "pretrain.txt").symlink_to(lrs2_tree_root / "pretrain.txt")
  assert set(lrs2.list_splits(bad)) == {"train", "val", "test"}


def test_lrs2_builds_main_and_pretrain_pieces(lrs2_tree_root, tmp_path, monkeypatch):
  monkeypatch.setattr(lrs2, "MAX_PIECE_S", 1.2)  # cut the one pretrain clip into pieces
  b = corpus_trees.build(lrs2, lrs2_tree_root, tmp_path)
  assert set(b.info.splits) == {"train", "pretrain"}  # val/test listed empty: left out
  pieces = corpus_trees.examples(b, "pretrain")
  assert len(pieces) >= 2 and all("_" in u for u in pieces)
  ordered = [pieces[u] for u in sorted(pieces)]
  assert " ".join(ex["text"].decode() for ex in ordered) == \
      "she had your dark suit in greasy wash water"
  vocab = PhonemeVocab.from_json(b.info.metadata["vocab"])
  spans = [c.span for c in lrs2.list_splits(lrs2_tree_root)["pretrain"]]
  for k, (ex, (f0, f1)) in enumerate(zip(ordered, spans)):
    n = int(ex["n_frames"])
    # The last piece's context may reach past the end of the video: it stops there.
    assert n == f1 - f0 if k + 1 < len(spans) else 0 < n <= f1 - f0
    assert int(np.asarray(ex["durations"]).sum()) == 4 * n
    assert len(ex["faces"]) == n and abs(len(ex["mel"]) - (1 + 3.2 * n)) <= 1
    ph = vocab.decode(ex["phonemes"])
    # The piece's phonemes are g2p of its words (what synthesis says for that text); pauses
    # come from the word timings. A piece cut between two close words ends without silence.
    spoken = [p for p in g2p.text_to_phonemes(ex["text"].decode()) if p not in ("sil", "sp")]
    assert [p for p in ph if p not in ("sil", "sp")] == spoken
  assert vocab.decode(ordered[0]["phonemes"])[0] == "sil"
  assert vocab.decode(ordered[-1]["phonemes"])[-1] == "sil"


# -- a real-layout tree through the whole product ----------------------------------------------

def _run(*args, cwd=REPO):
  proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=ENV, capture_output=True,
                        text=True, timeout=900, stdin=subprocess.DEVNULL)
  assert proc.returncode == 0, f"{args[0]}\n{proc.stdout[-1500:]}{proc.stderr[-3000:]}"
  return proc


@pytest.mark.slow
def test_tcd_timit_tree_build_train_export_synthesize_evaluate(tcd_tree, tmp_path):
  """TCD-TIMIT as downloaded (29.97 fps, HTK labels) through build -> 2 training steps ->
  export -> synthesis -> evaluation, all by the command-line tools, at the smallest sizes."""
  root, texts = tcd_tree
  w2l = models.create("wav2lip", seed=0, width=1 / 16)
  pretrained.save_pretrained(w2l, tmp_path / "wav2lip", family="wav2lip", config=w2l.get_config())
  expert = models.create("syncnet_color", seed=1, width=1 / 16)
  pretrained.save_pretrained(expert, tmp_path / "expert", family="syncnet_color",
                             config=expert.get_config())
  data = tmp_path / "tfds"
  _run("experiments/build_dataset.py", "--dataset=tcd_timit", f"--manual_dir={root}",
       f"--data_dir={data}")
  export = tmp_path / "run" / "export"
  _run("experiments/train.py", f"--config={REPO / 'experiments/configs/tcd_timit.py'}:tiny",
       f"--manual_dir={root}", f"--data_dir={data}", f"--init_from={tmp_path / 'wav2lip'}",
       f"--workdir={tmp_path / 'run'}", f"--export={export}", "--steps=2", "--batch_size=2",
       "--noprogress", "--notensorboard", "--config.data.eval_split=train",
       "--config.train.eval_every=0", "--config.train.checkpoint_every=2")
  uid = sorted(texts)[0]
  face_clip = root / "volunteers" / uid.split("/")[0] / "Clips" / "straightcam" / \
      (uid.split("/")[1] + ".mp4")
  _run("experiments/synthesize.py", f"--face={face_clip}", f"--text={texts[uid]}",
       f"--wav2lip={tmp_path / 'wav2lip'}", f"--taem={export}", f"--out={tmp_path / 'o.mp4'}",
       "--no_progress")
  assert video.probe(tmp_path / "o.mp4").n_frames > 10
  out = tmp_path / "eval"
  _run("experiments/evaluate.py", "--dataset=tcd_timit", f"--manual_dir={root}",
       f"--data_dir={data}", f"--wav2lip={tmp_path / 'wav2lip'}", f"--sync={tmp_path / 'expert'}",
       f"--taem={export}", "--methods=wav2lip,taem_gt", "--split=train", "--limit=1",
       f"--out={out}",
       "--no_progress")  # no transcripts in this tree (labels only): 'taem' is refused
  rows = json.loads((out / "table.json").read_text())["rows"]
  assert len(rows) == 2 and all(np.isfinite(r["ssim"]) and np.isfinite(r["lse_d"]) for r in rows)
