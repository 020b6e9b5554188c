"""Deterministic examples: one clip gives the same example bit for bit, whatever else is
prepared before it, in which tree, in which order, in which process."""
import shutil
import subprocess
import sys

import numpy as np
import pytest

from taem_jax.data import prepare
from taem_jax.data.sample import dummy, portraits
from taem_jax.face import FaceDetector
from taem_jax.text import PhonemeVocab, aligner

pytestmark = pytest.mark.skipif(not aligner.sphinx.available(), reason="pocketsphinx missing")

SENTENCES = {"bbaf2n": "bin blue at f two now", "swwp4s": "set white with p four soon"}


def _align(words, n_samples) -> str:
  """A GRID .align (1/25000 s) with the words spread over the speech part of the clip."""
  t0, t1 = int(0.2 * 25000), int((n_samples / 16000 - 0.2) * 25000)
  cuts = np.linspace(t0, t1, len(words) + 1).astype(int)
  lines = [f"0 {t0} sil"] + [f"{a} {b} {w}" for a, b, w in zip(cuts[:-1], cuts[1:], words)]
  return "\n".join(lines + [f"{t1} {int(n_samples / 16000 * 25000)} sil"]) + "\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
  root = tmp_path_factory.mktemp("grid_like")
  faces = portraits.make_portraits(1, 160, np.random.default_rng(0), FaceDetector())
  for k, (utt, text) in enumerate(SENTENCES.items()):  # tiny: 160 px portrait, ~1.8 s clips
    (root / "s1").mkdir(exist_ok=True)
    (root / "alignments" / "s1").mkdir(parents=True, exist_ok=True)
    dummy.write_clip(root / "s1" / f"{utt}.mp4", text, faces[0], seed=k, trail_s=0.1,
                     wav_path=root / f"{utt}.wav")
    n = len(dummy.audio.load_audio(root / f"{utt}.wav"))
    (root / "alignments" / "s1" / f"{utt}.align").write_text(_align(text.split(), n))
  return root


def _clip(root, utt):
  return prepare.Clip(uid=f"s1/{utt}", speaker="s1", video=root / "s1" / f"{utt}.mp4",
                      text=SENTENCES[utt], word_align=root / "alignments" / "s1" / f"{utt}.align",
                      grid_grammar=True)


def _same(a: dict, b: dict):
  assert a.keys() == b.keys()
  for k in a:
    if k == "faces":
      assert [bytes(x) for x in a[k]] == [bytes(x) for x in b[k]]
    else:
      x, y = np.asarray(a[k]), np.asarray(b[k])
      assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), k


_CHILD = """
import pathlib, sys
from taem_jax.data import prepare
from taem_jax.text import PhonemeVocab
root, out, utts = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
fe = prepare.FrontEnd(PhonemeVocab())
for utt in utts:
  clip = prepare.Clip(uid="s1/" + utt, speaker="s1", video=root / "s1" / (utt + ".mp4"),
                      text="", word_align=root / "alignments" / "s1" / (utt + ".align"),
                      grid_grammar=True)
  prepare.save_cached(out, clip.uid, fe.process(clip))
"""


def _other_tree(tree, root, utts):
  """Another GRID-like tree holding copies of `utts`' files (created in this order)."""
  (root / "s1").mkdir(parents=True)
  (root / "alignments" / "s1").mkdir(parents=True)
  for utt in utts:
    shutil.copy(tree / "s1" / f"{utt}.mp4", root / "s1" / f"{utt}.mp4")
    shutil.copy(tree / "alignments" / "s1" / f"{utt}.align",
                root / "alignments" / "s1" / f"{utt}.align")
  return root


def test_same_clip_same_example_in_any_order_and_tree(tree, tmp_path):
  fe = prepare.FrontEnd(PhonemeVocab())
  first = fe.process(_clip(tree, "bbaf2n"))
  fe.process(_clip(tree, "swwp4s"))
  _same(first, fe.process(_clip(tree, "bbaf2n")))  # again, after another clip
  # Another tree (other clips, another order) and a new front end.
  other = _other_tree(tree, tmp_path / "other", ("swwp4s", "bbaf2n"))
  fe2 = prepare.FrontEnd(PhonemeVocab())
  fe2.process(_clip(other, "swwp4s"))
  _same(first, fe2.process(_clip(other, "bbaf2n")))
  assert first["durations"].sum() == 4 * first["n_frames"]


@pytest.mark.slow
def test_same_clip_same_example_in_another_process(tree, tmp_path):
  first = prepare.FrontEnd(PhonemeVocab()).process(_clip(tree, "bbaf2n"))
  other = _other_tree(tree, tmp_path / "other", ("swwp4s", "bbaf2n"))
  out = tmp_path / "cache"
  out.mkdir()
  subprocess.run([sys.executable, "-c", _CHILD, str(other), str(out), "swwp4s", "bbaf2n"],
                 check=True)
  child = prepare.load_cached(out, "s1/bbaf2n")
  first["text"] = child["text"] = ""  # the child was not given the transcript
  _same(first, child)
