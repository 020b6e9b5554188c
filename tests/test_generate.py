"""runner.generate_from_audio: official input construction, batching/padding, face cycling."""
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from taem_jax import audio, models
from taem_jax.errors import UserError
from taem_jax.synthesis import runner

SR = 16000


@pytest.fixture(scope="module")
def model():
  m = models.create("wav2lip", seed=0, width=0.0625)
  # a non-trivial running mean so that eval vs train mode would differ visibly
  m.output_block[0].bn.mean[...] = jnp.full((2,), 0.3)
  return m


def _wav(seconds, seed=0):
  rng = np.random.default_rng(seed)
  t = np.arange(int(seconds * SR)) / SR
  return (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(len(t))).astype(
      np.float32)


def _faces(n, seed=1):
  return np.random.default_rng(seed).integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)


def test_face_inputs_follow_official_inference():
  faces = _faces(2)
  x = runner.face_inputs(faces)
  assert x.shape == (2, 96, 96, 6) and x.dtype == np.float32
  np.testing.assert_array_equal(x[:, :48, :, :3], faces[:, :48] / np.float32(255))
  np.testing.assert_array_equal(x[:, 48:, :, :3], 0.0)
  np.testing.assert_array_equal(x[..., 3:], faces / np.float32(255))
  np.testing.assert_allclose(runner.face_inputs(faces / 255.0), x, atol=1e-7)


def test_generate_matches_direct_model_calls(model):
  wav = _wav(0.5)
  faces = _faces(3)
  out = runner.generate_from_audio(model, faces, wav, fps=25, batch_size=3)
  mel = audio.melspectrogram(wav)
  n = audio.speech_frames(len(wav), 25)  # the whole speech: ceil(0.5 s * 25)
  assert n == 13
  assert out.shape == (n, 96, 96, 3) and out.dtype == np.uint8
  assert n > 3 and n % 3 != 0  # several batches, the last one padded
  # reference: the model applied frame by frame (eval mode), faces cycled i mod 3
  mels = audio.mel_windows(mel, n, 25)
  x = runner.face_inputs(faces[np.arange(n) % 3])
  ref_model = models.create("wav2lip", seed=0, width=0.0625)
  ref_model.output_block[0].bn.mean[...] = jnp.full((2,), 0.3)
  ref_model.eval()
  ref = np.asarray(nnx.jit(lambda m, a, b: m(a, b))(ref_model, jnp.asarray(mels), jnp.asarray(x)))
  ref_u8 = (ref * 255).astype(np.uint8)
  # float rounding may flip a truncation by one level
  assert np.abs(out.astype(int) - ref_u8.astype(int)).max() <= 1
  # batch size does not change the result (padding is dropped)
  out_big = runner.generate_from_audio(model, faces, wav, fps=25, batch_size=64)
  assert np.abs(out_big.astype(int) - out.astype(int)).max() <= 1


def test_generate_leaves_model_mode_alone_and_compiles_once_per_shape(model):
  model.train()
  before = runner.generate_batch._cache_size()
  wav, faces = _wav(0.3, seed=2), _faces(1)
  a = runner.generate_from_audio(model, faces, wav, batch_size=4)
  after_first = runner.generate_batch._cache_size()
  b = runner.generate_from_audio(model, faces, wav, batch_size=4)
  assert runner.generate_batch._cache_size() == after_first <= before + 1
  np.testing.assert_array_equal(a, b)
  assert not model.output_block[0].bn.use_running_average  # caller's mode untouched
  np.testing.assert_allclose(np.asarray(model.output_block[0].bn.mean[...]), 0.3)  # no update
  model.eval()


def test_bucket_sizes():
  assert runner.bucket_size(100, 64) == 64
  assert runner.bucket_size(64, 64) == 64
  assert runner.bucket_size(5, 64) == 8
  assert runner.bucket_size(1, 64) == 1
  assert runner.bucket_size(40, 48) == 48


def test_generate_input_errors(model):
  wav = _wav(0.3)
  with pytest.raises(UserError, match=r"\(N, 96, 96, 3\)"):
    runner.generate_from_audio(model, np.zeros((2, 64, 64, 3), np.uint8), wav)
  with pytest.raises(UserError, match=r"\[0, 1\]"):
    runner.generate_from_audio(model, np.full((1, 96, 96, 3), 200.0), wav)
  with pytest.raises(UserError, match="no face"):
    runner.generate_from_audio(model, np.zeros((0, 96, 96, 3), np.uint8), wav)
  with pytest.raises(UserError, match="1-D"):
    runner.generate_from_audio(model, _faces(1), np.zeros((0,), np.float32))
