"""TCD-TIMIT and LRS2 as their users download them: the HTK label file, LRS2's pretrain/ with
its word tables and the official lists; trees made by code (tests/corpus_trees.py)."""
import numpy as np
import pytest
import tensorflow_datasets as tfds  # noqa: TID253 - these tests drive TFDS builders

from corpus_trees import LEAD_S, mlf_entry, speech_phones, tcd_timit_tree
from taem_jax.data.sample import portraits
from taem_jax.data.tcd_timit import tcd_timit_dataset_builder as tcd
from taem_jax.errors import UserError
from taem_jax.face import FaceDetector
from taem_jax.text import PhonemeVocab
from taem_jax.text import alignments as A

SENTENCES = ["she had your dark suit", "greasy wash water"]


@pytest.fixture(scope="module")
def faces2():
  return portraits.make_portraits(2, 160, np.random.default_rng(3), FaceDetector())


def _build(module, manual, data_dir):
  b = module.Builder(data_dir=str(data_dir))
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  return b


def _examples(b, split):
  src = b.as_data_source(split=split)
  return {src[i]["id"].decode(): src[i] for i in range(len(src))}


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
  texts = tcd_timit_tree(root, faces2, SENTENCES)  # no prompts: the label file alone
  return root, texts


def test_tcd_timit_builds_from_the_label_file_alone(tcd_tree, tmp_path):
  root, texts = tcd_tree
  b = _build(tcd, root, tmp_path)
  exs = {**_examples(b, "train"), **_examples(b, "test")}
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
  assert [c.uid for c in clips] == ["01M/sx10"] and skips == {"missing_labels": 3}
