"""Evaluation harness (Table 1) end to end on tiny inputs: generated corpus -> GRID builder ->
three methods synthesise the test clips with tiny random-weight models -> metrics -> table.

Random weights mean the numbers say nothing about quality; what is checked is the plumbing
(lengths pair up frame by frame, every metric is finite, the ground truth scored against itself
is perfect, the table and files are written) and the one-line refusals.
"""
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from model_helpers import save_tiny_pair
from corpus_trees import tcd_timit_tree
from flax import nnx

from taem_jax import evaluation, face, metrics, models, synthesis, video
from taem_jax.data import pipeline
from taem_jax.data.grid import grid_dataset_builder
from taem_jax.data.sample import portraits
from taem_jax.data.sample.generate import SampleCorpusConfig, generate_corpus
from taem_jax.errors import UserError
from taem_jax.face import SpeakerEmbedder
from taem_jax.models import taem_checkpoint
from taem_jax.models.taem import TAEM, TAEMConfig
from taem_jax.synthesis import text_path
from taem_jax.text import PhonemeVocab

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = SampleCorpusConfig(speakers=2, utterances=3, seed=11, frame_size=160)


# Tiny models: XLA's optimisation passes cost more than they save here.
pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  import tensorflow_datasets as tfds
  root = tmp_path_factory.mktemp("eval")
  generate_corpus(root / "corpus", TINY)
  b = grid_dataset_builder.Builder(data_dir=str(root / "tfds"))
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(root / "corpus")))
  return root / "corpus", pathlib.Path(b.data_dir)


@pytest.fixture(scope="module")
def ckpts(corpus, tmp_path_factory):
  root = tmp_path_factory.mktemp("ckpt")
  save_tiny_pair(root)
  vocab = PhonemeVocab.from_json(pipeline.dataset_metadata(corpus[1])["vocab"])
  cfg = TAEMConfig.from_vocab(vocab, hidden=32, latent_dim=32, speaker_dim=128,
                              encoder_layers=1, refiner_layers=1, heads=2, ffn_filter=64,
                              ffn_kernels=(3, 1), dp_filter=32)
  taem_checkpoint.save_taem(TAEM(cfg, rngs=nnx.Rngs(0)), root / "taem", vocab=vocab,
                            speaker_embedding=SpeakerEmbedder("dlib").describe())
  # A Table 2 variant: another TAEM that records its loss objective.
  taem_checkpoint.save_taem(TAEM(cfg, rngs=nnx.Rngs(1)), root / "taem_c", vocab=vocab,
                            speaker_embedding=SpeakerEmbedder("dlib").describe(),
                            training={"objective": "contrastive", "step": 7})
  return root


@pytest.fixture(scope="module")
def clips(corpus):
  return evaluation.load_clips("grid", corpus[0], corpus[1], "test")


def test_load_clips_joins_dataset_and_files(clips, corpus):
  n_test = len(pipeline.open_split(corpus[1], "test"))
  assert len(clips) == n_test >= 2
  for c in clips:
    assert c.video.is_file() and c.video.parent.name == c.uid.split("/")[0]
    assert c.durations.sum() == 4 * c.n_frames
    assert len(c.phonemes) == len(c.durations) and c.phonemes[0] == "sil"
    assert len(c.text.split()) == 6
  assert [c.uid for c in evaluation.load_clips("grid", corpus[0], corpus[1], "test", 1)] == \
      [clips[0].uid]


def test_load_clips_refuses_another_corpus(corpus, tmp_path):
  # The same files under another speaker id: a corpus the dataset was not built from.
  for sub in ("s1", "alignments/s1"):
    shutil.copytree(corpus[0] / sub, tmp_path / sub.replace("s1", "s9"))
  with pytest.raises(UserError, match=r"clip s\d/\w+ of .* is not in"):
    evaluation.load_clips("grid", tmp_path, corpus[1])


def test_tts_speech_has_the_clip_length_and_is_silent_in_pauses(clips):
  c = clips[0]
  wav = evaluation.tts_speech(c)
  assert abs(len(wav) - c.n_frames * 640) <= 1
  # The leading 'sil' (ground-truth duration) is quiet, the first spoken phoneme is not.
  lead = int(c.durations[0] * 160)
  assert lead >= 1600
  rms = lambda x: float(np.sqrt(np.mean(np.square(x)) + 1e-12))  # noqa: E731
  assert rms(wav[:lead - 400]) < 0.1 * rms(wav[lead:])


def test_taem_gt_gets_exactly_the_ground_truth_durations(clips, ckpts, tmp_path, monkeypatch):
  """taem_gt hands TAEM the clip's own phonemes and durations; TAEM's output then has the
  clip's frame count and its durations_used are the ground truth (no refit)."""
  seen = []
  orig = text_path.TextPath.latents

  def spy(self, words, speaker, **kw):
    seen.append(([p for w in words for p in w.phonemes], kw.get("durations")))
    return orig(self, words, speaker, **kw)

  monkeypatch.setattr(text_path.TextPath, "latents", spy)
  synth = synthesis.Synthesizer(ckpts / "wav2lip", ckpts / "taem",
                                options=synthesis.Options(batch_size=16))
  c = clips[0]
  out = tmp_path / "gt.mp4"
  evaluation.synthesize(synth, "taem_gt", c, out)
  assert len(seen) == 1 and seen[0][0] == list(c.phonemes)
  np.testing.assert_array_equal(seen[0][1], c.durations)
  assert video.probe(out).n_frames == c.n_frames
  # What the model used: the same call TextPath makes, checked on TAEM's own output.
  taem = synth.taem
  ids = synth.text.encode(text_path.words_of_phonemes(c.phonemes))
  o = taem(ids[None], np.ones((1, len(ids)), bool), np.zeros((1, taem.config.speaker_dim)),
           c.durations[None].astype(np.int32), np.asarray([c.n_frames], np.int32),
           deterministic=True)
  np.testing.assert_array_equal(np.asarray(o["durations_used"][0]), c.durations)
  seen.clear()
  evaluation.synthesize(synth, "taem", c, tmp_path / "pred.mp4")
  assert seen[0][1] is None  # the user's way: TAEM predicts


def test_ground_truth_against_itself_is_perfect(clips, ckpts):
  det = face.FaceDetector()
  truth = evaluation._truth(clips[0], det)  # pylint: disable=protected-access
  scorer = metrics.scorer_for(models.load_pretrained(ckpts / "expert"), "expert")
  m = evaluation.clip_metrics(clips[0].video, truth, scorer, det)
  assert m["ssim"] == pytest.approx(1.0) and m["lmd"] == pytest.approx(0.0)
  assert m["psnr"] >= 99 and np.isfinite(m["lse_d"]) and np.isfinite(m["lse_c"])
  assert m["mouth_detail"] == pytest.approx(1.0)  # the truth keeps all of its own detail


def test_evaluate_three_methods(clips, ckpts, tmp_path):
  synth = synthesis.Synthesizer(ckpts / "wav2lip", ckpts / "taem",
                                options=synthesis.Options(batch_size=16))
  scorer = metrics.scorer_for(models.load_pretrained(ckpts / "expert"), "expert")
  seen = []
  res = evaluation.evaluate(clips[:1], synth, list(evaluation.METHODS), tmp_path, scorer,
                            progress=lambda m, u: seen.append(m))
  assert seen == list(evaluation.METHODS)
  uid = clips[0].uid
  for m in evaluation.METHODS:
    vid = tmp_path / m / (uid.replace("/", "_") + ".mp4")
    assert video.probe(vid).n_frames == clips[0].n_frames  # pairs frame by frame
    vals = res[m]["clips"][uid]
    assert all(np.isfinite(vals[k]) for k in ("ssim", "psnr", "lmd", "lse_d", "lse_c")), vals
    assert vals["ssim"] < 0.999  # random weights really changed the mouth
    assert res[m]["mean"]["num_clips"] == 1
  md = evaluation.table(res, "tiny").to_markdown()
  for label in ("TAEM + Wav2Lip (GT durations)", "TAEM + Wav2Lip (predicted durations)",
                "Wav2Lip w/ TTS (espeak-ng)", "Wav2Lip w/ TTS (Flite)"):
    assert f"| {label} |" in md, md
  assert "| TTS | durations |" in md and "| Flite cmu_us_slt | GT |" in md
  with pytest.raises(UserError, match="unknown method"):
    evaluation.evaluate(clips[:1], synth, ["nope"], tmp_path, scorer)


def test_evaluate_sends_each_variant_to_its_own_synthesizer(clips, ckpts, tmp_path):
  """Rows of `variants` are synthesised by their own Synthesizer (their own TAEM)."""
  calls = []

  class Copy:  # stands in for a Synthesizer: "synthesises" the ground truth, says who it is
    def __init__(self, name):
      self.name, self.taem = name, object()

    def synthesize(self, face, out, **kw):
      calls.append((self.name, pathlib.Path(out).parent.name, "text" in kw,
                    kw.get("durations") is not None))
      shutil.copy(face, out)

  scorer = metrics.scorer_for(models.load_pretrained(ckpts / "expert"), "expert")
  res = evaluation.evaluate(clips[:1], Copy("main"), ["taem"], tmp_path, scorer,
                            variants={"mse+task": Copy("v1"), "contrastive": Copy("v2")})
  # Variants follow the paper's protocol (GT durations), `taem` uses predicted ones.
  assert calls == [("main", "taem", True, False), ("v1", "taem[mse+task]", True, True),
                   ("v2", "taem[contrastive]", True, True)]
  assert res["taem[mse+task]"]["mean"]["ssim"] == pytest.approx(1.0)
  rows = evaluation.table(res, "t").rows
  assert [r.method for r in rows] == ["TAEM + Wav2Lip (predicted durations)",
                                      "TAEM + Wav2Lip, mse+task (GT durations)",
                                      "TAEM + Wav2Lip, contrastive (GT durations)"]
  assert [r.durations for r in rows] == ["predicted", "GT", "GT"]
  with pytest.raises(UserError, match="variant 'x' has no TAEM"):
    evaluation.evaluate(clips[:1], Copy("main"), ["wav2lip"], tmp_path, scorer,
                        variants={"x": synthesis.Synthesizer(ckpts / "wav2lip")})


def _cli(*args):
  return subprocess.run([sys.executable, "experiments/evaluate.py", *map(str, args)], cwd=REPO,
                        capture_output=True, text=True, timeout=600)


def test_cli_one_line_errors(corpus, ckpts, tmp_path):
  base = ["--dataset=sample", f"--manual_dir={corpus[0]}", f"--wav2lip={ckpts / 'wav2lip'}",
          f"--sync={ckpts / 'expert'}", f"--out={tmp_path / 'o'}"]
  for extra, msg in [(["--methods=wav2lip,bogus"], "unknown method 'bogus'"),
                     ([], "give --taem DIR"),
                     (["--methods=wav2lip", "--paper"], "no rows for the generated"),
                     (["--methods=wav2lip", f"--taem={tmp_path / 'none'}"], "not a checkpoint"),
                     (["--methods=wav2lip", f"--table2={tmp_path / 'none'}"],
                      "--table2 " + str(tmp_path / "none") + " is not a checkpoint")]:
    r = _cli(*base, *extra)
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cli_writes_the_table(corpus, ckpts, tmp_path):
  out = tmp_path / "o"
  r = _cli("--dataset=sample", f"--manual_dir={corpus[0]}", f"--data_dir={corpus[1].parents[2]}",
           f"--wav2lip={ckpts / 'wav2lip'}", f"--sync={ckpts / 'expert'}",
           "--methods=wav2lip", "--limit=1", f"--out={out}", "--no_progress",
           f"--table2={ckpts / 'taem_c'},{ckpts / 'taem'}")
  assert r.returncode == 0, r.stderr[-2000:]
  t = json.loads((out / "table.json").read_text())
  # Table 2 rows: named by the recorded objective, else by the folder.
  assert [row["method"] for row in t["rows"]] == [
      "Wav2Lip (GT audio)", "TAEM + Wav2Lip, contrastive (GT durations)",
      "TAEM + Wav2Lip, taem (GT durations)"]
  assert [row["input"] for row in t["rows"]] == ["audio", "text", "text"]
  assert [row["durations"] for row in t["rows"]] == ["", "GT", "GT"]
  assert all(isinstance(row["lse_d"], float) for row in t["rows"])
  assert (out / "taem[contrastive]").is_dir() and (out / "taem[taem]").is_dir()
  assert "not syncnet_v2" in t["note"] and "NOT GRID" in t["title"]
  assert "| audio | Wav2Lip (GT audio) | - |" in r.stdout
  assert "GT durations" in t["note"] and "Flite cmu_us_slt" in t["note"]


def test_variant_names_and_keys():
  assert evaluation.variant_names([("a", {"objective": "mse"}), ("b", {}),
                                   ("c", {"objective": "mse+task"})]) == ["mse", "b", "mse+task"]
  assert evaluation.variant_names([("a", {"objective": "mse"}), ("b", {"objective": "mse"})]) \
      == ["mse (a)", "mse (b)"]
  key = evaluation.variant_method("mse+task")
  assert key == "taem[mse+task]" and evaluation.variant_name(key) == "mse+task"
  assert evaluation.variant_name("taem") is None and evaluation.variant_name("taem[]") is None


def test_share_frames_splits_a_target_length_over_text_chunks():
  assert synthesis.share_frames(10, [3, 1]) == [7, 3]
  assert synthesis.share_frames(75, [40]) == [75]
  parts = synthesis.share_frames(100, [13, 40, 7])
  assert sum(parts) == 100 and parts[1] > parts[0] > parts[2] >= 1
  assert synthesis.share_frames(3, [100, 0, 0]) == [1, 1, 1]
  with pytest.raises(UserError, match="cannot fit 3 text chunks into 2 frames"):
    synthesis.share_frames(2, [1, 1, 1])


@pytest.fixture(scope="module")
def tcd_29_97(tmp_path_factory):
  """A TCD-TIMIT tree as downloaded (29.97 fps clips, the HTK label file, TIMIT prompts)."""
  root = tmp_path_factory.mktemp("tcd29")
  faces = portraits.make_portraits(1, 160, np.random.default_rng(5), face.FaceDetector())
  tcd_timit_tree(root / "corpus", faces, ["she had your dark suit", "greasy wash water"],
                 speakers=("01M",), prompts=True)
  return root


def test_evaluate_cli_on_tcd_timit_at_29_97_fps(tcd_29_97, ckpts):
  """evaluate.py --dataset tcd_timit on clips as downloaded: the ground truth is converted as
  the builder converts it, every generated video pairs frame by frame, all metrics are finite."""
  out = tcd_29_97 / "out"
  r = _cli("--dataset=tcd_timit", f"--manual_dir={tcd_29_97 / 'corpus'}",
           f"--data_dir={tcd_29_97 / 'tfds'}", f"--wav2lip={ckpts / 'wav2lip'}",
           f"--sync={ckpts / 'expert'}", f"--taem={ckpts / 'taem'}",
           "--methods=wav2lip,taem_gt", f"--out={out}", "--no_progress")
  assert r.returncode == 0, r.stderr[-2000:]
  rows = json.loads((out / "table.json").read_text())["rows"]
  assert [row["method"] for row in rows] == ["Wav2Lip (GT audio)",
                                             "TAEM + Wav2Lip (GT durations)"]
  assert all(np.isfinite(row[k]) for row in rows for k in ("ssim", "psnr", "lmd", "lse_d"))
  ds = pipeline.open_split(next((tcd_29_97 / "tfds" / "tcd_timit" / "dlib").iterdir()), "test")
  ex = ds[0]
  uid, n = ex["id"].decode(), int(ex["n_frames"])
  gt = out / evaluation.GT_25FPS_DIR / (uid.replace("/", "_") + ".mp4")
  info = video.probe(gt)
  assert info.fps == pytest.approx(25.0) and info.n_frames == n
  for m in ("wav2lip", "taem_gt"):
    assert video.probe(out / m / gt.name).n_frames == n
  # The converted face input shows, frame for frame, the builder's frames of the original clip.
  orig = tcd_29_97 / "corpus" / "volunteers" / uid.split("/")[0] / "Clips" / "straightcam" / \
      (uid.split("/")[1] + ".mp4")
  want = evaluation.truth_frames(orig)[:n].astype(np.float32)
  got = video.read_video(gt)[0].astype(np.float32)
  assert len(want) == n
  err = np.array([[np.mean((got[t] - want[u]) ** 2) for u in range(len(want))]
                  for t in range(len(got))])
  np.testing.assert_array_equal(err.argmin(1), np.arange(n))
  assert 10 * np.log10(255 ** 2 / err.diagonal().max()) > 35  # near-lossless copy


def test_taem_method_refuses_clips_without_transcript(tmp_path):
  """A corpus labelled without transcripts (TCD-TIMIT's label file alone): 'taem' reads text,
  so it is refused before anything is synthesised; the GT-phoneme methods need no text."""
  clip = evaluation.EvalClip(uid="01M/sa1", video=tmp_path / "none.mp4", audio=None, text="",
                             phonemes=("sil", "AH", "sil"), durations=np.array([4, 4, 4]),
                             n_frames=3)

  class Synth:
    taem = object()

  with pytest.raises(UserError, match="method 'taem' reads the transcript, but 1 clips"):
    evaluation.evaluate([clip], Synth(), ["taem_gt", "taem"], tmp_path, scorer=None)


def test_table_rows_name_the_backbone_that_rendered_them():
  res = {m: {"mean": {"ssim": 0.5}, "clips": {}} for m in ("wav2lip", "wav2lip_tts", "taem")}
  assert [r.method for r in evaluation.table(res, "t").rows] == [
      "Wav2Lip (GT audio)", "Wav2Lip w/ TTS (espeak-ng)", "TAEM + Wav2Lip (predicted durations)"]
  label = models.backbone_class("pcavs").label
  assert [r.method for r in evaluation.table(res, "t", backbone=label).rows] == [
      "PC-AVS (GT audio)", "PC-AVS w/ TTS (espeak-ng)", "TAEM + PC-AVS (predicted durations)"]
