"""Shapes, parameter counts, BN modes and forward semantics of the Wav2Lip-family modules."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from taem_jax import models
from taem_jax.models import SyncNetColor, SyncNetV2, Wav2Lip, Wav2LipDiscQual, layers
from taem_jax.models.layers import Conv2dBN


def _abstract(cls, **cfg):
  return nnx.eval_shape(lambda: cls(**cfg, rngs=nnx.Rngs(0)))


def _count(model, kind):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, kind)))


@nnx.jit(static_argnums=1)
def _run(model, method, *args):
  """model.method(*args) compiled as a whole (eager NNX dispatches op by op, which is slow)."""
  return getattr(model, method)(*args)


def _eval_shape(model, method, *args):
  graphdef, state = nnx.split(model)

  def f(state, *a):
    return getattr(nnx.merge(graphdef, state), method)(*a)

  return jax.eval_shape(f, state, *args)


# Counts derived from the official layer tables (the official models' parameter counts).
@pytest.mark.parametrize("cls,params,stats", [
    (Wav2Lip, 36_298_035, 22_752),
    (SyncNetColor, 16_435_072, None),
    (Wav2LipDiscQual, 14_113_793, 0),
    (SyncNetV2, 13_631_616, None),
])
def test_official_parameter_counts(cls, params, stats):
  m = _abstract(cls)
  assert _count(m, nnx.Param) == params
  if stats is not None:
    assert _count(m, nnx.BatchStat) == stats


def test_families_registry():
  assert set(models.FAMILIES) == {"wav2lip", "syncnet_color", "disc_qual", "syncnet_v2", "s3fd",
                                  "pcavs_G", "pcavs_V", "pcavs_E", "pcavs_A_sync", "pcavs"}
  for name, cls in models.FAMILIES.items():
    assert cls.family == name


@pytest.mark.parametrize("b", [1, 3])
def test_full_size_shapes(b):
  f32 = jnp.float32
  w = _abstract(Wav2Lip)
  mel = jax.ShapeDtypeStruct((b, 80, 16, 1), f32)
  faces = jax.ShapeDtypeStruct((b, 96, 96, 6), f32)
  out = _eval_shape(w, "__call__", mel, faces)
  assert (out.shape, out.dtype) == ((b, 96, 96, 3), f32)
  assert _eval_shape(w, "encode_audio", mel).shape == (b, 512)
  z = jax.ShapeDtypeStruct((b, 512), f32)
  assert _eval_shape(w, "decode", z, faces).shape == (b, 96, 96, 3)

  s = _abstract(SyncNetColor)
  a, v = _eval_shape(s, "__call__", mel, jax.ShapeDtypeStruct((b, 48, 96, 15), f32))
  assert a.shape == v.shape == (b, 512)

  d = _abstract(Wav2LipDiscQual)
  assert _eval_shape(d, "__call__", jax.ShapeDtypeStruct((b, 96, 96, 3), f32)).shape == (b, 1)

  v2 = _abstract(SyncNetV2)
  assert _eval_shape(v2, "embed_audio", jax.ShapeDtypeStruct((b, 13, 20, 1), f32)).shape == (
      b, 1024)
  assert _eval_shape(v2, "embed_lips",
                     jax.ShapeDtypeStruct((b, 5, 224, 224, 3), f32)).shape == (b, 1024)


def test_wav2lip_forward_small_width():
  m = models.create(Wav2Lip, width=0.125)
  m.eval()
  k1, k2 = jax.random.split(jax.random.key(0))
  mel = jax.random.uniform(k1, (3, 80, 16, 1), minval=-4, maxval=4)
  faces = jax.random.uniform(k2, (3, 96, 96, 6))

  @nnx.jit
  def everything(m, mel, faces):  # one compile for all the checks
    z = m.encode_audio(mel)
    return m(mel, faces), z, m.decode(z, faces), m.decode(z[::-1], faces)

  y, z, y_dec, y_rev = everything(m, mel, faces)
  assert y.shape == (3, 96, 96, 3) and y.dtype == jnp.float32
  assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
  assert z.shape == (3, 64) and float(z.min()) >= 0.0  # ends in ReLU
  np.testing.assert_allclose(np.asarray(y_dec), np.asarray(y), atol=1e-6)
  assert float(jnp.abs(y_rev - y).max()) > 0  # the audio does drive the output
  assert m.get_config() == {"width": 0.125, "convt_impl": "subpixel"}


def test_wav2lip_min_channels_floors_only_the_narrow_layers():
  """min_channels widens the 2-4 channel layers of a narrow variant; wide layers and z_a keep
  their width, and width 1.0 is unchanged by a floor of 16."""
  plain = _abstract(Wav2Lip, width=0.125)
  floored = _abstract(Wav2Lip, width=0.125, min_channels=16)
  first = lambda m: m.face_encoder_blocks[0][0].conv.kernel.shape  # noqa: E731
  assert first(plain)[-1] == 2 and first(floored)[-1] == 16
  assert floored.output_block[1].kernel.shape[-2] == 16  # 32 * 1/8 = 4 -> 16
  assert floored.embed_dim == plain.embed_dim == 64  # z_a (what TAEM imitates) is untouched
  deep = lambda m: m.face_encoder_blocks[-1][-1].conv.kernel.shape  # noqa: E731
  assert deep(floored) == deep(plain)  # 512 * 1/8 = 64 channels either way
  count = lambda m: sum(x.size for x in jax.tree.leaves(nnx.state(m, nnx.Param)))  # noqa: E731
  assert count(_abstract(Wav2Lip, min_channels=16)) == count(_abstract(Wav2Lip)) == 36_298_035
  assert floored.get_config() == {"width": 0.125, "convt_impl": "subpixel", "min_channels": 16}


def test_wav2lip_convt_impls_agree():
  a = models.create(Wav2Lip, seed=3, width=0.125, convt_impl="direct")
  b = models.create(Wav2Lip, seed=3, width=0.125, convt_impl="subpixel")
  a.eval(), b.eval()
  mel = jax.random.uniform(jax.random.key(1), (2, 80, 16, 1), minval=-4, maxval=4)
  faces = jax.random.uniform(jax.random.key(2), (2, 96, 96, 6))
  np.testing.assert_allclose(np.asarray(_run(a, "__call__", mel, faces)),
                             np.asarray(_run(b, "__call__", mel, faces)), atol=1e-5)


def test_bn_train_vs_eval():
  # A small generator-like stack is enough: every BN layer of the family is the same module.
  m = nnx.List([Conv2dBN(6, 8, 3, 2, 1, rngs=nnx.Rngs(0)),
                Conv2dBN(8, 8, 3, 1, 1, residual=True, rngs=nnx.Rngs(1))])
  call = lambda mod, x: mod[1](mod[0](x))  # noqa: E731
  x = jax.random.uniform(jax.random.key(2), (4, 12, 12, 6))
  bn = m[0].bn
  assert bn.momentum == pytest.approx(0.9) and bn.epsilon == pytest.approx(1e-5)
  wl = _abstract(Wav2Lip, width=0.125)
  wl_bn = wl.face_decoder_blocks[3][0].bn
  assert (wl_bn.momentum, wl_bn.epsilon) == (bn.momentum, bn.epsilon)
  wl.eval()
  assert wl_bn.use_running_average
  wl.train()
  assert not wl_bn.use_running_average

  m.eval()
  before = np.asarray(bn.mean[...]).copy()
  y_eval = call(m, x)
  np.testing.assert_array_equal(np.asarray(bn.mean[...]), before)  # eval: no stat update
  # eval: each sample independent of the rest of the batch
  np.testing.assert_allclose(np.asarray(call(m, x[:1])), np.asarray(y_eval[:1]), atol=1e-5)
  m.train()
  y_train = call(m, x)
  after = np.asarray(bn.mean[...])
  assert not np.allclose(after, before)  # running mean moved
  # momentum 0.9: new = 0.9 old + 0.1 batch mean of the conv output
  conv_out = np.asarray(m[0].conv(x))
  np.testing.assert_allclose(after, 0.9 * before + 0.1 * conv_out.mean(axis=(0, 1, 2)),
                             rtol=1e-4, atol=1e-5)
  # train: batch statistics, so a sample's output depends on its batch
  assert not np.allclose(np.asarray(call(m, x[:1])), np.asarray(y_train[:1]), atol=1e-4)


def test_syncnet_color_embeddings_unit_norm():
  m = models.create("syncnet_color", width=0.125)
  m.eval()
  mel = jax.random.uniform(jax.random.key(1), (3, 80, 16, 1), minval=-4, maxval=4)
  faces = jax.random.uniform(jax.random.key(2), (3, 48, 96, 15))
  a, v = _run(m, "__call__", mel, faces)
  assert a.shape == v.shape == (3, 64)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(a), axis=1), 1.0, atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(np.asarray(v), axis=1), 1.0, atol=1e-5)
  assert float(a.min()) >= 0 and float(v.min()) >= 0


def test_disc_uses_lower_half_only():
  m = models.create("disc_qual", width=0.125)
  faces = jax.random.uniform(jax.random.key(1), (3, 96, 96, 3))
  batch = jnp.concatenate([faces, faces.at[:, :48].set(0.0), faces.at[:, 48:].set(0.0)])
  p_all = _run(m, "__call__", batch)
  assert p_all.shape == (9, 1)
  p, p_top, p_bottom = np.split(np.asarray(p_all), 3)
  assert p.min() > 0 and p.max() < 1
  np.testing.assert_array_equal(p_top, p)  # the upper half is never looked at
  assert not np.array_equal(p_bottom, p)


@pytest.mark.parametrize("width", [0.25, 1.0])
def test_disc_at_init_tells_faces_apart(width):
  """Freshly made, the discriminator's output varies with its input, so the GAN can start.

  At PyTorch's default conv init the signal shrinks through its 13 convs until the output is
  0.5 for every face (std ~3e-8 over this batch) and real/fake losses sit at ln 2.
  """
  m = Wav2LipDiscQual(width=width, rngs=nnx.Rngs(0))
  faces = jax.random.uniform(jax.random.key(1), (8, 96, 96, 3))
  assert float(np.std(np.asarray(_run(m, "__call__", faces)))) > 1e-4


def test_syncnet_v2_small_batch_runs():
  m = models.create("syncnet_v2")
  m.eval()
  mfcc = jax.random.normal(jax.random.key(1), (3, 13, 20, 1))
  frames = jax.random.uniform(jax.random.key(2), (1, 5, 224, 224, 3), maxval=255.0)
  ea, el = _run(m, "__call__", mfcc, frames)
  assert ea.shape == (3, 1024) and el.shape == (1, 1024)
  assert np.all(np.isfinite(np.asarray(ea))) and np.all(np.isfinite(np.asarray(el)))
  assert _eval_shape(m, "lip_features", frames).shape == (1, 512)
  # official Sequential indices: param-bearing layers where the torch keys are
  assert isinstance(m.netcnnaud[18], nnx.Conv) and isinstance(m.netcnnaud[19], nnx.BatchNorm)
  assert isinstance(m.netcnnlip[0], nnx.Conv) and m.netcnnlip[0].kernel.shape == (5, 7, 7, 3, 96)
  assert isinstance(m.netfcaud[3], nnx.Linear) and m.netfcaud[3].kernel.shape == (512, 1024)


class _Tiny(nnx.Module):
  def __init__(self, *, rngs):
    self.c = layers.Conv2dBN(3, 8, 3, 1, 1, rngs=rngs)
    self.t = layers.ConvTranspose2d(8, 4, 3, 2, 1, 1, rngs=rngs)
    self.fc = nnx.Linear(16, 32, kernel_init=layers.torch_like_kernel_init, rngs=rngs)


def test_create_matches_constructor_distributions():
  a = models.create(_Tiny, seed=1)
  b = _Tiny(rngs=nnx.Rngs(1))
  fans = {("c", "conv", "kernel"): 27, ("t", "kernel"): 36, ("fc", "kernel"): 16}
  flat_a, flat_b = nnx.to_flat_state(nnx.state(a)), nnx.to_flat_state(nnx.state(b))
  assert [p for p, _ in flat_a] == [p for p, _ in flat_b]
  for (path, va), (_, vb) in zip(flat_a, flat_b):
    va, vb = np.asarray(va[...]), np.asarray(vb[...])
    assert va.shape == vb.shape
    if path[-1] == "kernel":
      bound = 1 / np.sqrt(fans[path])
      assert np.abs(va).max() <= bound and np.abs(vb).max() <= bound * (1 + 1e-6)
      assert np.abs(va).max() > 0.8 * bound  # uniform over the whole range
    else:
      np.testing.assert_array_equal(va, vb)
