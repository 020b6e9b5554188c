"""The README's first command (experiments/demo.py)."""
import json
import pathlib
import subprocess
import sys

import pytest

from taem_jax import video

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_demo_refuses_empty_text_in_one_line(tmp_path):
  r = subprocess.run([sys.executable, "experiments/demo.py", "--text", "  ", "--out",
                      str(tmp_path / "d")], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 2
  assert r.stderr.strip().startswith("error: empty --text")
  assert "Traceback" not in r.stderr
  assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
  """The README's first command on a smaller corpus, with the committed demo models."""
  out = tmp_path / "demo"
  r = subprocess.run([sys.executable, "experiments/demo.py", "--out", str(out), "--speakers", "2",
                      "--utterances", "4", "--eval_clips", "1"], cwd=ROOT, capture_output=True,
                     text=True, timeout=1800)
  assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
  info = video.probe(out / "say.mp4")
  assert info.has_audio and info.n_frames > 10
  table = json.loads((out / "eval" / "table.json").read_text())
  assert [row["method"] for row in table["rows"]] == ["Wav2Lip", "Wav2Lip w/ TTS",
                                                      "TAEM + Wav2Lip"]
  assert "| text | TAEM + Wav2Lip |" in r.stdout


def _load(path, name):
  import importlib.util  # noqa: PLC0415
  spec = importlib.util.spec_from_file_location(name, ROOT / path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def test_presets_v1_is_the_committed_recipe_and_v2_configs_pair_up():
  demo = _load("experiments/demo.py", "demo_cli")
  v1, v2 = demo.PRESETS["v1"], demo.PRESETS["v2"]
  # v1 = what made checkpoints/demo (its README): nothing committed changes behaviour.
  assert v1["corpus"] == {"speakers": 4, "utterances": 12} and v1["steps"] == (600, 1000, 600)
  assert v1["configs"] == ("wav2lip_expert.py:tiny", "wav2lip_gen.py:tiny", "sample.py:demo")
  assert v2["corpus"]["held_out_identities"] > 0 and v2["corpus"]["photos"] == "all"
  cfg = {}
  for ref in v2["configs"]:
    file, variant = ref.split(":")
    cfg[file] = _load(f"experiments/configs/{file}", f"cfg_{variant}").get_config(variant)
  gen, exp, taem = cfg["wav2lip_gen.py"], cfg["wav2lip_expert.py"], cfg["sample.py"]
  assert gen.loss.gan and gen.expert.width == exp.model.width
  # TAEM reprograms exactly this generator shape.
  assert taem.target.wav2lip_width == gen.model.width
  assert taem.target.wav2lip_min_channels == gen.model.min_channels
  assert taem.model.latent_dim == 512 * gen.model.width
  assert [exp.train.num_steps, gen.train.num_steps, taem.train.num_steps] == list(v2["steps"])
