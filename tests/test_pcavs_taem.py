"""TAEM reprogramming PC-AVS (paper Sec. 4.3) end to end on tiny random weights.

A generated sample corpus is built with PC-AVS z_a (`--backbone pcavs`, GRID builder
`dlib_za`), experiments/train.py trains a `:tiny` TAEM a few steps against them and exports
it; the export names the pcavs backbone and its netA_sync fingerprint, reloads, and is refused
under the other backbone (and a Wav2Lip TAEM under pcavs).
"""
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
import soundfile as sf
from flax import nnx

from taem_jax import synthesis, video
from taem_jax.data import pipeline
from taem_jax.data.sample import portraits
from taem_jax.data.sample.generate import SampleCorpusConfig, generate_corpus
from taem_jax.errors import UserError
from taem_jax.face import FaceDetector, SpeakerEmbedder
from taem_jax import models
from taem_jax.models import pretrained, taem_checkpoint, targets
from taem_jax.models.taem import TAEM, TAEMConfig
from taem_jax.text import PhonemeVocab
from taem_jax.train.tasks import taem as taem_tasks

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3",
       # This checkout's package, whichever one the environment has installed.
       "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
ENV.pop("XLA_FLAGS", None)


@pytest.fixture(scope="module")
def pcavs_dir(tmp_path_factory):
  b = targets.PCAVSTarget.random(seed=0, **targets.PCAVS_TINY)
  d = tmp_path_factory.mktemp("pcavs") / "pcavs"
  pretrained.save_pretrained(b.model, d, family="pcavs", config=b.model.get_config())
  return d


def _train(*args, timeout=900):
  proc = subprocess.run([sys.executable, str(REPO / "experiments/train.py"), *map(str, args)],
                        env=ENV, capture_output=True, text=True, timeout=timeout, cwd=REPO)
  return proc


def _one_line(e) -> str:
  assert "\n" not in str(e.value), str(e.value)
  return str(e.value)


def test_taem_trains_against_pcavs_exports_and_reloads(pcavs_dir, tmp_path):
  corpus = tmp_path / "corpus"
  generate_corpus(corpus, SampleCorpusConfig(speakers=1, utterances=4, seed=3, frame_size=160))
  common = ["--dataset=sample", f"--config={REPO / 'experiments/configs/sample.py'}:tiny",
            f"--manual_dir={corpus}", "--noprogress", "--notensorboard", "--backbone=pcavs",
            "--config.model.latent_dim=512"]
  out = _train(*common, f"--workdir={tmp_path / 'run'}", "--config.data.builder_config=dlib_za",
               f"--config.target.wav2lip_dir={pcavs_dir}", f"--export={tmp_path / 'taem'}",
               "--config.train.num_steps=20", "--config.train.eval_every=10",
               "--config.data.batch_size=2")
  assert out.returncode == 0, out.stderr[-3000:]
  want = targets.PCAVSTarget.load(pcavs_dir).record(pcavs_dir)
  meta = pipeline.dataset_metadata(next((corpus / "_tfds" / "grid" / "dlib_za").glob("*")))
  assert meta["z_a_target"] == want  # the dataset's z_a are PC-AVS's
  recs = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
  evals = [r for r in recs if r["kind"] == "eval"]
  assert evals[0]["step"] == 0 and evals[-1]["step"] == 20
  print("held-out mse by step:", [(r["step"], r["mse"]) for r in evals])
  assert evals[-1]["mse"] < 0.5 * evals[0]["mse"], [(r["step"], r["mse"]) for r in evals]
  # The export names the backbone and the audio encoder it learned, and reloads.
  model, info = taem_checkpoint.load_taem(tmp_path / "taem")
  assert info.target["name"] == "pcavs" and info.target["fingerprint"] == want["fingerprint"]
  assert info.target["source"] == str(pcavs_dir) and int(model.config.latent_dim) == 512
  s = synthesis.Synthesizer(pcavs_dir, tmp_path / "taem", backbone="pcavs")
  assert s.text is not None and s.backbone.name == "pcavs"
  # Text -> TAEM -> PC-AVS frames, pasted back through the inverse alignment.
  img = portraits.make_portraits(1, 200, np.random.default_rng(0), FaceDetector())[0].image
  cv2.imwrite(str(tmp_path / "face.png"), img)
  res = s.synthesize(tmp_path / "face.png", tmp_path / "o.mp4", text="bin blue at f two now")
  frames, fps = video.read_video(res.out)
  assert fps == 25 and len(frames) == res.frames > 10 and res.faceless_frames == 0
  diff = np.abs(frames[len(frames) // 2].astype(int) - img.astype(int)).max(-1)
  assert diff[:8, :8].max() <= 12  # far from the face: the input (after H.264)
  assert (diff > 40).mean() > 0.05  # the rendered (random-weight) face replaces the input's
  # Audio -> netA_sync -> the same renderer (PC-AVS driven by speech, no TAEM).
  sf.write(str(tmp_path / "a.wav"), np.random.default_rng(1).standard_normal(8000) * 0.1, 16000)
  res = s.synthesize(tmp_path / "face.png", tmp_path / "a.mp4", audio=tmp_path / "a.wav")
  assert res.frames == len(video.read_video(res.out)[0]) >= 10
  with pytest.raises(UserError) as e:
    targets.check_backbone(info.target, "wav2lip", made="TAEM t")
  assert "made for the pcavs backbone, not wav2lip" in _one_line(e)
  # Evaluation on the held-out clip: text (TAEM, GT durations) and audio rows through PC-AVS.
  expert = models.create("syncnet_color", seed=1, width=1 / 16)
  pretrained.save_pretrained(expert, tmp_path / "expert", family="syncnet_color",
                             config=expert.get_config())
  ev = subprocess.run([sys.executable, str(REPO / "experiments/evaluate.py"), "--dataset=sample",
                       f"--manual_dir={corpus}", f"--data_dir={corpus / '_tfds'}",
                       "--builder_config=dlib_za", "--backbone=pcavs",
                       f"--wav2lip={pcavs_dir}", f"--taem={tmp_path / 'taem'}",
                       f"--sync={tmp_path / 'expert'}", "--methods=wav2lip,taem_gt", "--limit=1",
                       f"--out={tmp_path / 'eval'}", "--no_progress"],
                      env=ENV, capture_output=True, text=True, timeout=900, cwd=REPO)
  assert ev.returncode == 0, ev.stderr[-3000:]
  table = json.loads((tmp_path / "eval" / "table.json").read_text())
  assert len(table["rows"]) == 2
  assert [r["method"] for r in table["rows"]] == ["PC-AVS (GT audio)",
                                                  "TAEM + PC-AVS (GT durations)"]
  assert all(np.isfinite(row[k]) for row in table["rows"] for k in ("ssim", "psnr", "lse_d"))


def test_pcavs_needs_z_a_from_the_dataset():
  # Computing z_a during training (and the task loss) needs a Wav2Lip inside the model.
  spec = importlib.util.spec_from_file_location("cfg_synth", REPO / "experiments/configs/synthetic.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config("tiny")
  config.target.backbone = "pcavs"
  config.target.z_a = "wav2lip"
  with pytest.raises(UserError) as e:
    taem_tasks.recipe(config, None)
  assert "pcavs backbone trains TAEM on z_a stored in the dataset" in _one_line(e)
  config.target.z_a = "auto"  # stored (here synthetic) z_a: accepted
  assert taem_tasks.recipe(config, None).task.backbone == "pcavs"


def test_wav2lip_taem_refused_under_pcavs(pcavs_dir, tmp_path):
  vocab = PhonemeVocab()
  cfg = TAEMConfig.from_vocab(vocab, hidden=32, latent_dim=512, speaker_dim=128,
                              encoder_layers=1, refiner_layers=1, heads=2, ffn_filter=64,
                              ffn_kernels=(3, 1), dp_filter=32)
  rec = targets.PCAVSTarget.load(pcavs_dir).record(pcavs_dir)
  taem_checkpoint.save_taem(TAEM(cfg, rngs=nnx.Rngs(0)), tmp_path / "w2l_taem", vocab=vocab,
                            speaker_embedding=SpeakerEmbedder("dlib").describe(),
                            target=dict(rec, name="wav2lip"))
  with pytest.raises(UserError) as e:
    synthesis.Synthesizer(pcavs_dir, tmp_path / "w2l_taem", backbone="pcavs",
                          allow_mismatched_wav2lip=True)
  assert "made for the wav2lip backbone, not pcavs" in _one_line(e)
  with pytest.raises(UserError, match="holds a pcavs checkpoint, expected wav2lip"):
    synthesis.Synthesizer(pcavs_dir, tmp_path / "w2l_taem", backbone="wav2lip")
