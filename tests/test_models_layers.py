"""Layer-level checks against plain numpy definitions (PyTorch semantics written out by hand)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from taem_jax.models import layers


def naive_conv_transpose(x, w, stride, padding, output_padding):
  """PyTorch ConvTranspose2d by its definition: every input pixel scatters w into the output.

  x: (B, H, W, Cin); w: torch layout (Cin, Cout, k, k). Output index = s*i - p + tap.
  """
  b, h, wd, _ = x.shape
  cin, cout, k, _ = w.shape
  ho = (h - 1) * stride - 2 * padding + k + output_padding
  wo = (wd - 1) * stride - 2 * padding + k + output_padding
  full = np.zeros((b, (h - 1) * stride + k + output_padding,
                   (wd - 1) * stride + k + output_padding, cout))
  for i in range(h):
    for j in range(wd):
      contrib = np.einsum("bc,cokl->bklo", x[:, i, j], w)
      full[:, i * stride:i * stride + k, j * stride:j * stride + k] += contrib
  return full[:, padding:padding + ho, padding:padding + wo]


@pytest.mark.parametrize("h,w,stride,padding,op", [
    (5, 4, 2, 1, 1),  # decoder blocks 2-6 (k3 s2 p1 op1), odd/even sizes
    (1, 1, 1, 0, 0),  # decoder block 1 (1x1 -> 3x3)
    (3, 3, 2, 1, 1),
    (4, 6, 2, 0, 0),
])
def test_direct_transposed_conv_matches_definition(h, w, stride, padding, op):
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, h, w, 3))
  wt = rng.standard_normal((3, 5, 3, 3))  # torch (in, out, k, k)
  kernel = wt.transpose(2, 3, 0, 1)        # our un-flipped (k, k, in, out)
  ref = naive_conv_transpose(x, wt, stride, padding, op)
  got = layers.conv_transpose_direct(jnp.asarray(x, jnp.float32), jnp.asarray(kernel, jnp.float32),
                                     stride, padding, op)
  assert got.shape == ref.shape
  np.testing.assert_allclose(np.asarray(got), ref, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("h,w", [(1, 1), (3, 3), (6, 5), (12, 12)])
def test_subpixel_equals_direct(h, w):
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((3, h, w, 8)), jnp.float32)
  kernel = jnp.asarray(rng.standard_normal((3, 3, 8, 4)) * 0.3, jnp.float32)
  direct = layers.conv_transpose_direct(x, kernel, 2, 1, 1)
  sub = layers.conv_transpose_subpixel(x, kernel)
  assert sub.shape == (3, 2 * h, 2 * w, 4) == direct.shape
  np.testing.assert_allclose(np.asarray(sub), np.asarray(direct), atol=1e-5, rtol=0)
  # and both match the definition
  ref = naive_conv_transpose(np.asarray(x, np.float64), np.asarray(kernel).transpose(2, 3, 0, 1),
                             2, 1, 1)
  np.testing.assert_allclose(np.asarray(sub), ref, atol=1e-4)


def test_convtranspose_module_impls_agree():
  rngs = nnx.Rngs(0)
  m = layers.ConvTranspose2d(6, 5, 3, 2, 1, 1, impl="direct", rngs=rngs)
  x = jax.random.normal(jax.random.key(1), (2, 6, 6, 6))
  y_direct = m(x)
  m.impl = "subpixel"
  y_sub = m(x)
  assert y_sub.shape == (2, 12, 12, 5)
  np.testing.assert_allclose(np.asarray(y_sub), np.asarray(y_direct), atol=1e-5)
  # layers that are not k3 s2 p1 op1 fall back to the direct form
  m1 = layers.ConvTranspose2d(6, 5, 3, 1, 0, 0, impl="subpixel", rngs=rngs)
  assert not m1.uses_subpixel() and m1(x[:, :1, :1]).shape == (2, 3, 3, 5)
  with pytest.raises(ValueError):
    layers.ConvTranspose2d(6, 5, 3, impl="fast", rngs=rngs)


def test_conv_uses_symmetric_padding_like_torch():
  # stride 2, k3, p1 on an even size: PyTorch pads (1, 1); output pixel (0, 0) sees the
  # zero row/col and input taps (0..1, 0..1).
  conv = layers.conv(1, 1, 3, 2, 1, rngs=nnx.Rngs(0))
  conv.kernel[...] = jnp.ones((3, 3, 1, 1))
  conv.bias[...] = jnp.zeros((1,))
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  y = np.asarray(conv(x))[0, :, :, 0]
  xs = np.pad(np.arange(16.0).reshape(4, 4), 1)
  ref = np.array([[xs[2 * i:2 * i + 3, 2 * j:2 * j + 3].sum() for j in range(2)]
                  for i in range(2)])
  np.testing.assert_allclose(y, ref)


def test_maxpool_floor_mode_and_neg_inf_padding():
  x = -np.abs(np.random.default_rng(2).standard_normal((1, 7, 9, 2))) - 1.0  # all negative
  pool = layers.MaxPool((3, 3), (2, 2), (1, 1))
  y = np.asarray(pool(jnp.asarray(x, jnp.float32)))
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
  ho, wo = (7 + 2 - 3) // 2 + 1, (9 + 2 - 3) // 2 + 1
  ref = np.array([[xp[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(0, 1)) for j in range(wo)]
                  for i in range(ho)])
  assert y.shape == (1, ho, wo, 2)
  np.testing.assert_allclose(y[0], ref, rtol=1e-6)  # zero padding would give 0 at the borders


def test_residual_added_after_bn_before_relu():
  layer = layers.Conv2dBN(4, 4, 3, 1, 1, residual=True, rngs=nnx.Rngs(0))
  layer.eval()
  layer.bn.mean[...] = jnp.full((4,), 0.5)
  layer.bn.var[...] = jnp.full((4,), 4.0)
  layer.bn.scale[...] = jnp.full((4,), 2.0)
  layer.bn.bias[...] = jnp.full((4,), -0.1)
  x = jax.random.normal(jax.random.key(0), (2, 5, 5, 4))
  c = layer.conv(x)
  bn = (c - 0.5) / jnp.sqrt(4.0 + 1e-5) * 2.0 - 0.1
  np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(jax.nn.relu(bn + x)), atol=1e-5)
  with pytest.raises(ValueError):
    layers.Conv2dBN(4, 8, 3, 1, 1, residual=True, rngs=nnx.Rngs(0))
