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
