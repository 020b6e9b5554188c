"""Every real-layout corpus tree through the whole product, in process, at tiny sizes.

For each layout (GRID as Zenodo unpacks it with misfiled alignment folders, GRID as Sheffield
distributes it, TCD-TIMIT with its HTK label file at 29.97 fps, LRS2 main/ + pretrain/ with its
lists): the real builder -> a few TAEM training steps through the library calls
experiments/train.py makes -> export -> text synthesis with the exported TAEM -> the evaluation
harness on the built test split, as experiments/evaluate.py runs it. One tiny random Wav2Lip
and lip-sync expert serve all four; tree sizes are picked so every split holds clips and the
train split fills one batch of 2. All four share shapes (tiny config, batch 2, the 80-frame
bucket), so the trainer's and the generator's compiles are paid once, by the first layout.
About 5 minutes on this 2-core machine (the first layout ~100 s, the others ~60 s each).
"""
import json

import numpy as np
import pytest
from model_helpers import save_tiny_pair

import corpus_trees
import trainer_helpers
from taem_jax import evaluation, metrics, video
from taem_jax.data.grid import grid_dataset_builder as grid
from taem_jax.data.lrs2 import lrs2_dataset_builder as lrs2
from taem_jax.data.prepared import prepared_dataset_dir
from taem_jax.data.sample import portraits
from taem_jax.data.tcd_timit import tcd_timit_dataset_builder as tcd
from taem_jax.face import FaceDetector
from taem_jax.models import load_pretrained, taem_checkpoint
from taem_jax.synthesis import Synthesizer
from taem_jax.train import config_defaults, tasks
from taem_jax.train import mesh as mesh_lib
from taem_jax.train import trainer as trainer_lib

STEPS = 3
METHODS = ["wav2lip", "taem_gt", "taem"]

# Tiny models: XLA's optimisation passes cost more than they save here.
pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def faces2():
  return portraits.make_portraits(2, 160, np.random.default_rng(3), FaceDetector())


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
  """A tiny random Wav2Lip (TAEM's frozen target) and lip-sync expert (the LSE scorer)."""
  root = tmp_path_factory.mktemp("layout_ckpts")
  save_tiny_pair(root)
  return root


@pytest.fixture(scope="module")
def scorer(ckpts):
  return metrics.scorer_for(load_pretrained(ckpts / "expert"), name="expert")


def _config(dataset: str):
  config = config_defaults.taem_config(dataset, "tiny")
  with config.unlocked():
    config.train.num_steps = STEPS
    config.data.batch_size = 2
    config.train.log_every = 1
    config.train.eval_every = 0
    config.train.sample_every = 0
    config.train.checkpoint_every = STEPS
    config.data.eval_split = "train"
  return config


def _train_and_export(dataset, data_dir, manual, ckpts, workdir):
  """What experiments/train.py does with --init_from and --export; returns (export dir, losses)."""
  config = _config(dataset)
  dataset_dir = prepared_dataset_dir(config, str(data_dir), str(manual))
  mesh = mesh_lib.make_mesh(None)
  init = str(ckpts / "wav2lip")
  task, train_it, eval_fn = tasks.build(config, mesh, dataset_dir=dataset_dir, workdir=workdir,
                                        init_from=init)
  rec = trainer_helpers.Recorder()
  trainer = trainer_lib.Trainer(task, config, workdir, train_it, eval_data=eval_fn, mesh=mesh,
                                hooks=[rec], init_from=init)
  try:
    result = trainer.run()
  finally:
    trainer.close()
  assert result.step == STEPS
  losses = [float(rec.steps[s]["loss"]) for s in sorted(rec.steps)]
  export = workdir / "export"
  written = list(task.export(result.model, export, step=result.step, overwrite=True))
  assert written
  return dataset_dir, export, losses


def _product(dataset, builder_name, manual, ckpts, scorer, tmp_path, face_clip, text):
  """Train -> export -> synthesise -> evaluate one built tree; returns the evaluation rows."""
  dataset_dir, export, losses = _train_and_export(dataset, tmp_path / "tfds", manual, ckpts,
                                                  tmp_path / "run")
  assert len(losses) == STEPS and all(np.isfinite(losses)), losses
  assert len(set(losses)) > 1, f"the loss never changed: {losses}"
  # The export reloads as synthesis reads it.
  taem, info = taem_checkpoint.load_taem(export)
  assert info.training["step"] == STEPS

  synth = Synthesizer(ckpts / "wav2lip", export)
  out = tmp_path / "text.mp4"
  res = synth.synthesize(face_clip, out, text=text, speech=True)
  got = video.probe(out)
  assert got.fps == pytest.approx(25.0) and got.n_frames == res.frames > 5
  speech_s = len(video.extract_audio(out)) / 16000
  assert abs(got.n_frames / 25.0 - speech_s) <= 1 / 25 + 1e-3, (got.n_frames, speech_s)

  clips = evaluation.load_clips(builder_name, manual, dataset_dir, "test", limit=1)
  assert len(clips) == 1
  main, variants = evaluation.load_synthesizers(ckpts / "wav2lip", export)
  results = evaluation.evaluate(clips, main, METHODS, tmp_path / "eval", scorer,
                                variants=variants)
  rows = json.loads(evaluation.table(results, f"Table 1 on {dataset}").to_json())["rows"]
  assert len(rows) == len(METHODS)
  for row in rows:
    for key in ("ssim", "psnr", "lmd", "lse_d", "lse_c"):
      assert np.isfinite(row[key]), f"{dataset} {row['method']}: {key}={row[key]}"
  for m in METHODS:
    name = clips[0].uid.replace("/", "_") + ".mp4"
    assert video.probe(tmp_path / "eval" / m / name).n_frames == clips[0].n_frames, m
  return rows


def test_grid_zenodo_misfiled_alignments(tmp_path, ckpts, scorer, faces2):
  manual = tmp_path / "GRID"
  texts = corpus_trees.grid_zenodo_tree(manual, faces2)
  b = corpus_trees.build(grid, manual, tmp_path / "tfds")
  exs = {**corpus_trees.examples(b, "train"), **corpus_trees.examples(b, "test")}
  assert set(exs) == set(texts) and len(exs) == 6
  report = b.info.metadata["listing_report"]
  assert report["s1"]["recovered_from"] == ["alignments/s2"]
  assert report["s2"]["recovered_from"] == ["alignments/s1"]
  for spk in ("s1", "s2"):
    assert report[spk]["kept"] == 3 and report[spk]["skipped"] == {}, report[spk]
  for uid, ex in exs.items():
    assert ex["text"].decode() == texts[uid]  # each clip kept its own sentence
  uid = sorted(texts)[0]
  _product("grid", "grid", manual, ckpts, scorer, tmp_path, manual / f"{uid}.mpg", texts[uid])


def test_grid_sheffield_mpg_and_flat_align_tars(tmp_path, ckpts, scorer, faces2):
  manual = tmp_path / "GRID"
  # Three clips: two to train on (one batch), one held out.
  texts = corpus_trees.grid_sheffield_tree(manual, tmp_path / "work", faces2[0],
                                           ("bbaf2n", "pgwr6p", "lwiz9a"))
  header = video.probe(manual / f"{sorted(texts)[0]}.mpg")
  assert (header.video_codec, header.audio_codec) == ("mpeg1video", "mp2")
  b = corpus_trees.build(grid, manual, tmp_path / "tfds")
  exs = {**corpus_trees.examples(b, "train"), **corpus_trees.examples(b, "test")}
  assert set(exs) == set(texts)
  uid = sorted(texts)[-1]
  _product("grid", "grid", manual, ckpts, scorer, tmp_path, manual / f"{uid}.mpg", texts[uid])


def test_tcd_timit_mlf_at_29_97_fps(tmp_path, ckpts, scorer, faces2):
  manual = tmp_path / "TCD-TIMIT"
  texts = corpus_trees.tcd_timit_tree(manual, faces2, ["she had your dark suit",
                                                       "greasy wash water"], prompts=True)
  b = corpus_trees.build(tcd, manual, tmp_path / "tfds")
  exs = {**corpus_trees.examples(b, "train"), **corpus_trees.examples(b, "test")}
  assert set(exs) == set(texts) and len(corpus_trees.examples(b, "test")) >= 1
  uid = sorted(texts)[0]
  face = manual / "volunteers" / uid.split("/")[0] / "Clips" / "straightcam" / \
      (uid.split("/")[1] + ".mp4")
  assert video.probe(face).fps == pytest.approx(29.97)
  _product("tcd_timit", "tcd_timit", manual, ckpts, scorer, tmp_path, face, texts[uid])
  # The ground truth was converted to 25 fps as the builder converts the clips.
  (gt,) = (tmp_path / "eval" / evaluation.GT_25FPS_DIR).glob("*.mp4")
  assert video.probe(gt).fps == pytest.approx(25.0)


def test_lrs2_main_and_pretrain(tmp_path, ckpts, scorer, faces2):
  manual = tmp_path / "mvlrs_v1"
  # Two shows: the first's main clips spread over train/val/test, the second's all train.
  lists = corpus_trees.lrs2_tree(manual, faces2,
                                 ["greasy wash water", "she had your dark suit", "bin blue at"],
                                 ["she had your dark suit in greasy wash water"])
  b = corpus_trees.build(lrs2, manual, tmp_path / "tfds")
  assert set(b.info.splits) == {"train", "val", "test", "pretrain"}
  counts = {split: len(corpus_trees.examples(b, split)) for split in b.info.splits}
  assert counts == {"train": 4, "val": 1, "test": 1, "pretrain": 2}, counts
  assert {k: len(v) for k, v in lists.items()} == {"pretrain.txt": 2, "train.txt": 4,
                                                   "val.txt": 1, "test.txt": 1}
  entry = lists["train.txt"][0]
  text = (manual / "main" / f"{entry}.txt").read_text().splitlines()[0].split(":", 1)[1].strip()
  _product("lrs2", "lrs2", manual, ckpts, scorer, tmp_path, manual / "main" / f"{entry}.mp4",
           text.lower())
