"""Which Wav2Lip a TAEM belongs to: the audio-encoder fingerprint, where it is recorded
(datasets that cache z_a, TAEM exports, the committed demo TAEM) and the refusals of a pair
whose fingerprints differ (training, synthesis, evaluation), with their force flags.

Models are tiny random-weight ones made here (Wav2Lip width 1/16 -> 32-d z_a, a tiny TAEM):
two Wav2Lips of the same architecture and different weights stand for wav2lip.pth vs
wav2lip_gan.pth.
"""
import importlib.util
import json
import logging
import pathlib

import numpy as np
import pytest
from flax import nnx
from model_helpers import perturbed

from taem_jax import evaluation, models, synthesis
from taem_jax.cli import synthesize as synthesize_cli
from taem_jax.data import pipeline
from taem_jax.data.grid import grid_dataset_builder
from taem_jax.data.sample.generate import SampleCorpusConfig, generate_corpus
from taem_jax.errors import UserError
from taem_jax.face import SpeakerEmbedder
from taem_jax.models import load_pretrained, pretrained, taem_checkpoint, targets
from taem_jax.models.taem import TAEM, TAEMConfig
from taem_jax.text import PhonemeVocab
from taem_jax.train.tasks import taem as taem_tasks

REPO = pathlib.Path(__file__).resolve().parents[1]
WIDTH = 1 / 16  # 32-d z_a

pytestmark = pytest.mark.usefixtures("fast_compile")


def _load_module(path, name):
  spec = importlib.util.spec_from_file_location(name, path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def _config(**target):
  config = _load_module(REPO / "experiments" / "configs" / "sample.py", "cfg_sample").get_config(
      "tiny")
  for k, v in target.items():
    setattr(config.target, k, v)
  return config


def _tiny_taem(vocab, seed=0):
  cfg = TAEMConfig.from_vocab(vocab, hidden=32, latent_dim=32, speaker_dim=128,
                              encoder_layers=1, refiner_layers=1, heads=2, ffn_filter=64,
                              ffn_kernels=(3, 1), dp_filter=32)
  return TAEM(cfg, rngs=nnx.Rngs(seed))


@pytest.fixture(scope="module")
def w2l(tmp_path_factory):
  """Two Wav2Lips of one architecture, different weights: {"a": dir, "b": dir, "fp_a", ...}."""
  root = tmp_path_factory.mktemp("w2l")
  out = {}
  for name, seed in (("a", 0), ("b", 1)):
    m = models.create("wav2lip", seed=seed, width=WIDTH)
    pretrained.save_pretrained(m, root / name, family="wav2lip", config=m.get_config())
    out[name] = root / name
    out[f"fp_{name}"] = targets.audio_encoder_fingerprint(m)
  return out


@pytest.fixture(scope="module")
def taems(w2l, tmp_path_factory):
  """TAEM dirs: 'a' trained (exported) against Wav2Lip a, 'old' without any fingerprint."""
  root = tmp_path_factory.mktemp("taem")
  vocab = PhonemeVocab()
  dlib = SpeakerEmbedder("dlib").describe()
  rec = targets.target_record(load_pretrained(w2l["a"]), w2l["a"])
  taem_checkpoint.save_taem(_tiny_taem(vocab), root / "a", vocab=vocab, speaker_embedding=dlib,
                            target=dict(rec, config={"width": WIDTH}))
  taem_checkpoint.save_taem(_tiny_taem(vocab, 1), root / "old", vocab=vocab,
                            speaker_embedding=dlib)
  return root


def _one_line(e):
  assert "\n" not in str(e.value), str(e.value)
  return str(e.value)


# -- the fingerprint -----------------------------------------------------------------------------

def test_fingerprint_is_stable_and_covers_exactly_the_audio_encoder(w2l):
  loaded = load_pretrained(w2l["a"])
  fp = targets.audio_encoder_fingerprint(loaded)
  assert fp == w2l["fp_a"] and len(fp) == 64 and int(fp, 16) >= 0  # save/load keeps it
  assert targets.audio_encoder_fingerprint(load_pretrained(w2l["a"])) == fp  # deterministic
  assert w2l["fp_b"] != fp  # same architecture, other weights
  # Any audio-encoder array matters, BatchNorm running statistics included ...
  for path in (("audio_encoder", 0, "conv", "kernel"), ("audio_encoder", 12, "conv", "bias"),
               ("audio_encoder", 5, "bn", "mean"), ("audio_encoder", 5, "bn", "var")):
    assert targets.audio_encoder_fingerprint(perturbed(loaded, *path)) != fp, path
  # ... the face encoder / decoder (which do not make z_a) do not.
  for path in (("face_decoder_blocks", 1, 0, "conv", "kernel"),
               ("face_encoder_blocks", 0, 0, "bn", "mean"), ("output_block", 1, "kernel")):
    assert targets.audio_encoder_fingerprint(perturbed(loaded, *path)) == fp, path


def test_check_pairing_messages(w2l, caplog):
  rec_a = {"fingerprint": w2l["fp_a"], "source": "ckpt/wav2lip"}
  rec_b = {"fingerprint": w2l["fp_b"], "source": "ckpt/wav2lip_gan"}
  kw = dict(made="TAEM t", loaded="Wav2Lip w", force_hint="pass --force")
  assert targets.check_pairing(rec_a, dict(rec_a), force=False, **kw) is True
  with pytest.raises(UserError) as e:
    targets.check_pairing(rec_a, rec_b, force=False, **kw)
  msg = _one_line(e)
  for part in (w2l["fp_a"][:12], w2l["fp_b"][:12], "ckpt/wav2lip)", "ckpt/wav2lip_gan",
               "pass --force"):
    assert part in msg, (part, msg)
  assert w2l["fp_a"] not in msg  # shortened
  with caplog.at_level(logging.WARNING):
    assert targets.check_pairing(rec_a, rec_b, force=True, **kw) is False
    assert targets.check_pairing({"source": None}, rec_b, force=False, **kw) is False
  assert "pairing them anyway" in caplog.text and "records no Wav2Lip fingerprint" in caplog.text


# -- synthesis and evaluation refuse a TAEM of another Wav2Lip ----------------------------------

def test_synthesizer_pairs_only_the_matching_wav2lip(w2l, taems, caplog):
  with caplog.at_level(logging.WARNING):
    s = synthesis.Synthesizer(w2l["a"], taems / "a")
  assert s.text is not None and "fingerprint" not in caplog.text  # matched: silent
  with pytest.raises(UserError) as e:
    synthesis.Synthesizer(w2l["b"], taems / "a")
  msg = _one_line(e)
  for part in (w2l["fp_a"][:12], w2l["fp_b"][:12], str(w2l["a"]), str(w2l["b"]),
               str(taems / "a"), "--force_pairing"):
    assert part in msg, (part, msg)
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    forced = synthesis.Synthesizer(w2l["b"], taems / "a", allow_mismatched_wav2lip=True)
  assert forced.text is not None and "pairing them anyway" in caplog.text
  # A model passed in (the app, evaluation's variants) is checked the same way.
  with pytest.raises(UserError, match=w2l["fp_b"][:12]):
    synthesis.Synthesizer(wav2lip=load_pretrained(w2l["b"]), taem_dir=taems / "a")


def test_old_taem_without_fingerprint_loads_with_a_warning(w2l, taems, caplog):
  with caplog.at_level(logging.WARNING):
    s = synthesis.Synthesizer(w2l["b"], taems / "old")
  assert s.text is not None
  lines = [r.getMessage() for r in caplog.records if "fingerprint" in r.getMessage()]
  assert len(lines) == 1 and "cannot check" in lines[0] and "\n" not in lines[0]


def test_evaluation_refuses_mismatched_main_and_table2_taems(w2l, taems, caplog):
  synth, variants = evaluation.load_synthesizers(w2l["a"], taems / "a", [taems / "a"])
  assert synth.text is not None and list(variants) == ["a"]
  with pytest.raises(UserError, match=w2l["fp_b"][:12]):
    evaluation.load_synthesizers(w2l["b"], taems / "a")
  with pytest.raises(UserError) as e:  # the main TAEM is audio-only, a Table 2 one mismatches
    evaluation.load_synthesizers(w2l["b"], None, [taems / "a"])
  assert str(w2l["b"]) in _one_line(e) and str(taems / "a") in str(e.value)
  with caplog.at_level(logging.WARNING):
    _, variants = evaluation.load_synthesizers(w2l["b"], taems / "a", [taems / "a"],
                                               allow_mismatched_wav2lip=True)
  assert len(variants) == 1 and "pairing them anyway" in caplog.text


def test_force_pairing_flags(w2l, taems, tmp_path, capsys):
  job = ["--face", str(tmp_path / "missing.png"), "--text", "Hi.", "--out",
         str(tmp_path / "o.mp4"), "--wav2lip", str(w2l["b"]), "--taem", str(taems / "a"),
         "--no_progress"]
  with pytest.raises(SystemExit) as e:
    synthesize_cli.main(job)
  assert e.value.code == 2 and "--force_pairing" in capsys.readouterr().err
  with pytest.raises(SystemExit) as e:  # forced: the pair loads, the next check (face) fails
    synthesize_cli.main(job + ["--force_pairing"])
  err = capsys.readouterr().err
  assert e.value.code == 2 and "face file not found" in err
  assert "--force_pairing" in synthesize_cli._parser().format_help()
  evaluate = _load_module(REPO / "experiments" / "evaluate.py", "evaluate_cli")
  base = ["--dataset=sample", "--manual_dir=x", "--wav2lip=w", "--sync=s"]
  assert evaluate.parse_args(base + ["--force_pairing"]).force_pairing
  assert not evaluate.parse_args(base).force_pairing


# -- training records the target and refuses a dataset made by another Wav2Lip -----------------

def _fake_dataset(root, *, fingerprint=None, source=None, with_za=True, latent_dim=32):
  """A built dataset's folder as `recipe` reads it (metadata only)."""
  d = root / "grid" / ("dlib_za" if with_za else "dlib") / "1.0.0"
  d.mkdir(parents=True)
  meta = {"vocab": PhonemeVocab().to_json(), "embedder": "dlib", "embed_dim": 128,
          "with_za": with_za}
  if fingerprint:
    meta["z_a_target"] = {"name": "wav2lip", "latent_dim": latent_dim,
                          "fingerprint": fingerprint, "source": source}
  (d / "metadata.json").write_text(json.dumps(meta))
  return d


def test_export_of_on_the_fly_targets_records_the_init_from_wav2lip(w2l, tmp_path):
  """`demo.py --train`'s case: z_a computed by the --init_from Wav2Lip."""
  ds = _fake_dataset(tmp_path, with_za=False)
  task = taem_tasks.recipe(_config(), ds).task
  assert task.wav2lip_config is not None
  model = task.make_model(nnx.Rngs(0))
  task.load_init(model, str(w2l["a"]))
  task.export(model, tmp_path / "taem", step=5)
  _, info = taem_checkpoint.load_taem(tmp_path / "taem")
  assert info.target["fingerprint"] == w2l["fp_a"] and info.target["source"] == str(w2l["a"])
  assert info.target["latent_dim"] == 32 and info.target["config"] == {"width": WIDTH}
  assert info.training["objective"] == "mse" and info.training["step"] == 5
  assert info.training["dataset"] == {"name": "sample", "builder": "grid", "config": "dlib",
                                      "version": "1.0.0", "path": str(ds.absolute()),
                                      "split": "train"}
  assert info.training["config"]["target"]["wav2lip_width"] == WIDTH
  # ... and synthesis accepts exactly that Wav2Lip.
  assert synthesis.Synthesizer(w2l["a"], tmp_path / "taem").text is not None
  with pytest.raises(UserError, match="was made with Wav2Lip audio encoder"):
    synthesis.Synthesizer(w2l["b"], tmp_path / "taem")


def test_dataset_z_a_of_another_wav2lip_is_refused_at_training(w2l, tmp_path, caplog):
  ds = _fake_dataset(tmp_path, fingerprint=w2l["fp_a"], source="ckpt/a")
  task = taem_tasks.recipe(_config(), ds).task
  assert task.wav2lip_config is None  # z_a from the dataset
  assert task.target["fingerprint"] == w2l["fp_a"] and task.target["source"] == "ckpt/a"
  model = task.make_model(nnx.Rngs(0))
  with pytest.raises(UserError) as e:
    task.load_init(model, str(w2l["b"]))
  msg = _one_line(e)
  for part in (w2l["fp_a"][:12], w2l["fp_b"][:12], "ckpt/a", str(w2l["b"]), str(ds),
               "allow_fingerprint_mismatch"):
    assert part in msg, (part, msg)
  task.load_init(model, str(w2l["a"]))  # the Wav2Lip that made them: accepted
  # config.target.wav2lip_dir naming another Wav2Lip than the dataset's is refused as well.
  with pytest.raises(UserError, match="config.target.wav2lip_dir"):
    taem_tasks.recipe(_config(wav2lip_dir=str(w2l["b"])), ds)
  # The force flag trains anyway; the export records what the TAEM actually learned.
  forced = taem_tasks.recipe(_config(allow_fingerprint_mismatch=True), ds).task
  with caplog.at_level(logging.WARNING):
    forced.load_init(model, str(w2l["b"]))
  assert "pairing them anyway" in caplog.text
  forced.export(model, tmp_path / "taem", step=1)
  _, info = taem_checkpoint.load_taem(tmp_path / "taem")
  assert info.target["fingerprint"] == w2l["fp_a"] and info.target["source"] == "ckpt/a"


def test_dataset_z_a_width_must_fit_the_taem(tmp_path):
  ds = _fake_dataset(tmp_path, fingerprint="f" * 64, latent_dim=64)
  with pytest.raises(UserError, match="stores 64-d z_a but the TAEM is 32-d"):
    taem_tasks.recipe(_config(), ds)


def test_old_dataset_without_record_defaults_to_512():
  assert pipeline.z_a_dim({"with_za": True}) == 512
  assert pipeline.z_a_target({"with_za": True})["fingerprint"] is None
  assert pipeline.z_a_target({"with_za": False}) is None
  assert pipeline.z_a_dim({"with_za": True, "z_a_target": {"latent_dim": 32}}) == 32


# -- a real *_za build ------------------------------------------------------------------------

def test_za_dataset_records_its_wav2lip_and_width(w2l, tmp_path):
  """Sample corpus -> GRID builder dlib_za with a 32-d Wav2Lip -> metadata, batches, training."""
  import tensorflow_datasets as tfds  # lazy: TFDS takes seconds to import
  generate_corpus(tmp_path / "corpus", SampleCorpusConfig(speakers=1, utterances=2, seed=3,
                                                          frame_size=160))
  b = grid_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"), config="dlib_za",
                                   wav2lip_dir=str(w2l["a"]))
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(tmp_path / "corpus")))
  meta = pipeline.dataset_metadata(b.data_dir)
  assert meta["z_a_target"] == {"name": "wav2lip", "latent_dim": 32,
                                "fingerprint": w2l["fp_a"], "source": str(w2l["a"])}
  src = pipeline.open_split(b.data_dir, "train")
  batch = next(pipeline.make_iterator(src, pipeline.PipelineConfig(
      batch_size=1, buckets=((128, 72),), decode_faces=False)))
  n = int(batch["n_frames"][0])
  assert batch["z_a"].shape == (1, 128, 32) and np.abs(batch["z_a"][0, :n]).sum() > 0
  task = taem_tasks.recipe(_config(), b.data_dir).task
  assert task.target["fingerprint"] == w2l["fp_a"]
  with pytest.raises(UserError, match=w2l["fp_b"][:12]):
    task.load_init(task.make_model(nnx.Rngs(0)), str(w2l["b"]))


# -- the committed demo models ------------------------------------------------------------------

def test_demo_taem_is_paired_with_the_demo_wav2lip(caplog):
  demo = REPO / "checkpoints" / "demo"
  _, info = taem_checkpoint.load_taem(demo / "taem")
  assert info.target["fingerprint"] == targets.audio_encoder_fingerprint(
      load_pretrained(demo / "wav2lip"))
  with caplog.at_level(logging.WARNING):
    assert synthesis.Synthesizer(demo / "wav2lip", demo / "taem").text is not None
  assert "fingerprint" not in caplog.text

