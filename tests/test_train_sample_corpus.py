"""End to end on real files: a tiny generated sample corpus -> TFDS build -> grain pipeline ->
TAEM `:tiny` training through experiments/train.py, then an interrupted run that resumes to the
same parameters. Slow (espeak-ng, dlib face tracking, three training runs): `-m slow`."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import trainer_helpers

from taem_jax.train import checkpoint as ckpt_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
ENV.pop("XLA_FLAGS", None)


def _run(*args, timeout=900):
  proc = subprocess.run([sys.executable, *args], env=ENV, capture_output=True, text=True,
                        timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _train(corpus, workdir, *extra):
  return _run(str(REPO / "experiments/train.py"), "--dataset=sample",
              f"--config={REPO / 'experiments/configs/sample.py'}:tiny",
              f"--manual_dir={corpus}", f"--workdir={workdir}", "--noprogress",
              "--notensorboard", *extra)


@pytest.mark.slow
def test_tiny_sample_corpus_trains_and_resumes(tmp_path):
  corpus = tmp_path / "corpus"
  _run(str(REPO / "experiments/make_sample_corpus.py"), f"--out={corpus}", "--speakers=2",
       "--utterances=3")
  out = _train(corpus, tmp_path / "full")
  assert "started from scratch" in out.stdout
  assert (corpus / "_tfds" / "grid" / "dlib" / "1.0.0" / "dataset_info.json").is_file()
  recs = [json.loads(l) for l in open(tmp_path / "full" / "metrics.jsonl")]
  train = [r for r in recs if r["kind"] == "train"]
  assert train[-1]["step"] == 30
  assert train[-1]["duration"] < 0.6 * train[0]["duration"]  # L_dur learns real durations
  assert train[-1]["mse"] < train[0]["mse"]
  assert any(r["kind"] == "eval" for r in recs)

  # Stop after 12 steps, continue to 30: same parameters as the uninterrupted run.
  _train(corpus, tmp_path / "split", "--steps=12")
  out = _train(corpus, tmp_path / "split")
  assert "started from checkpoint@12" in out.stdout
  full, _ = ckpt_lib.load_arrays(tmp_path / "full" / "checkpoints")
  split, _ = ckpt_lib.load_arrays(tmp_path / "split" / "checkpoints")
  leaves_full = trainer_helpers.flatten(full["model"]["taem"])
  leaves_split = trainer_helpers.flatten(split["model"]["taem"])
  for k in leaves_full:
    np.testing.assert_allclose(leaves_split[k], leaves_full[k], rtol=1e-4, atol=1e-6,
                               err_msg=k)
