"""Building blocks shared by the Wav2Lip family (Flax NNX, NHWC).

Layout conventions (the PyTorch -> NNX converter in `porting/` relies on every line here):

* Activations are NHWC (NTHWC for 3-D). Images keep OpenCV's BGR channel order.
* `nnx.Conv` kernels are HWIO (THWIO for 3-D): torch (out, in, kh, kw) -> permute(2, 3, 1, 0);
  torch (out, in, kt, kh, kw) -> permute(2, 3, 4, 1, 0). Biases are copied as is.
* `ConvTranspose2d.kernel` is stored **un-flipped** with shape (kh, kw, in, out):
  torch ConvTranspose2d weight (in, out, kh, kw) -> permute(2, 3, 0, 1), nothing else.
  (The forward pass does the spatial flip itself; see `ConvTranspose2d`.)
* `nnx.Linear` kernels are (in, out): torch Linear weight (out, in) -> transpose.
* `nnx.BatchNorm`: torch weight -> `scale`, bias -> `bias`, running_mean -> `mean`,
  running_var -> `var` (the last two are `nnx.BatchStat`); `num_batches_tracked` is dropped.
  epsilon = 1e-5 and momentum = 0.9 (Flax keeps `momentum` of the old value, so 0.9 here is
  PyTorch's momentum 0.1). Training mode updates the running variance with the *biased* batch
  variance (PyTorch uses the unbiased one); this only matters when fine-tuning.
* Padding is always explicit and symmetric, exactly as in PyTorch (never 'SAME': for stride 2
  on even sizes XLA's SAME pads (0, 1) instead of (1, 1)).

Mode: `model.eval()` makes every BatchNorm use its running statistics (PyTorch `model.eval()`);
`model.train()` normalises with batch statistics and updates the running averages in place.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9  # Flax convention; equals PyTorch momentum 0.1.

# PyTorch's default init for conv/linear weights: kaiming_uniform(a=sqrt(5)), i.e.
# U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Matching it keeps from-scratch training comparable.
torch_like_kernel_init = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
# He init for LeakyReLU(0.01): keeps the activations' variance through a deep plain conv stack.
# At the torch-like init the variance shrinks ~6x per layer, so after the discriminator's 13
# convs its output no longer depends on its input and its real/fake losses sit at ln 2.
leaky_kernel_init = nnx.initializers.variance_scaling(2.0 / (1.0 + 0.01 ** 2), "fan_in",
                                                      "truncated_normal")


def _pair(v) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else tuple(v)


def _pads(p: int | Sequence[int], ndim: int) -> tuple[tuple[int, int], ...]:
  # A tuple, not a list: module attributes end up in the (hashable) GraphDef.
  p = (p,) * ndim if isinstance(p, int) else tuple(p)
  return tuple((q, q) for q in p)


def conv(cin: int, cout: int, kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
         padding: int | Sequence[int] = 0, *, ndim: int = 2,
         kernel_init=torch_like_kernel_init, rngs: nnx.Rngs) -> nnx.Conv:
  """An `nnx.Conv` with PyTorch semantics (explicit symmetric padding, bias, torch-like init)."""
  k = (kernel,) * ndim if isinstance(kernel, int) else tuple(kernel)
  s = (stride,) * ndim if isinstance(stride, int) else tuple(stride)
  return nnx.Conv(cin, cout, kernel_size=k, strides=s, padding=_pads(padding, ndim),
                  use_bias=True, kernel_init=kernel_init, rngs=rngs)


def batch_norm(features: int, *, rngs: nnx.Rngs) -> nnx.BatchNorm:
  """`nnx.BatchNorm` with PyTorch's defaults (eps 1e-5, momentum 0.1 in torch terms)."""
  return nnx.BatchNorm(features, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, rngs=rngs)


def conv_transpose_direct(x: jax.Array, kernel: jax.Array, stride: int, padding: int,
                          output_padding: int) -> jax.Array:
  """PyTorch `conv_transpose2d` (no bias) as one dilated convolution.

  Shapes:
    x: (B, H, W, Cin); kernel: (k, k, Cin, Cout) un-flipped (see module docstring).
    returns (B, (H-1)*s - 2p + k + op, (W-1)*s - 2p + k + op, Cout).
  """
  k = kernel.shape[0]
  lo, hi = k - 1 - padding, k - 1 - padding + output_padding
  return jax.lax.conv_general_dilated(
      x, kernel[::-1, ::-1], window_strides=(1, 1), padding=[(lo, hi), (lo, hi)],
      lhs_dilation=(stride, stride), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv_transpose_subpixel(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The k3 s2 p1 op1 transposed conv as 4 small phase convs + depth-to-space.

  Along one axis, output row 2m (phase 0) only receives input row m through kernel tap 1, and
  output row 2m+1 (phase 1) receives row m through tap 2 and row m+1 through tap 0. So each of
  the 4 output phases is a 1x1, 1x2, 2x1 or 2x2 conv of the input (padded by one zero row/col
  at the end) with taps picked from the 3x3 kernel: exactly the 9 useful multiply-adds per
  output pair, without the zero-inserted input of the direct form that XLA:CPU runs slowly.
  Same result as `conv_transpose_direct(x, kernel, 2, 1, 1)` up to float rounding.

  Shapes:
    x: (B, H, W, Cin); kernel: (3, 3, Cin, Cout) un-flipped. returns (B, 2H, 2W, Cout).
  """
  b, h, w, _ = x.shape
  cout = kernel.shape[-1]
  k = kernel
  xp = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))

  def conv(inp, ker):
    return jax.lax.conv_general_dilated(inp, ker, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  even_even = conv(x, k[1:2, 1:2])
  even_odd = conv(xp[:, :h], jnp.stack([k[1, 2], k[1, 0]])[None])
  odd_even = conv(xp[:, :, :w], jnp.stack([k[2, 1], k[0, 1]])[:, None])
  odd_odd = conv(xp, jnp.stack([jnp.stack([k[2, 2], k[2, 0]]), jnp.stack([k[0, 2], k[0, 0]])]))
  y = jnp.stack([jnp.stack([even_even, even_odd], axis=3),
                 jnp.stack([odd_even, odd_odd], axis=3)], axis=3)  # (B, H, W, 2, 2, Cout)
  return y.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, cout)


CONVT_IMPLS = ("direct", "subpixel")


class ConvTranspose2d(nnx.Module):
  """PyTorch `nn.ConvTranspose2d` (square kernel, bias) in NHWC.

  Params: `kernel` (k, k, Cin, Cout) = torch weight.permute(2, 3, 0, 1) (no flip), `bias` (Cout,).
  `impl`: 'direct' (one dilated conv) or 'subpixel' (4 phase convs + depth-to-space where the
  layer is k3 s2 p1 op1, direct otherwise). Both give the same numbers to ~1e-6; it is a speed
  choice.

  Shapes:
    x: (B, H, W, Cin) -> (B, (H-1)*s - 2p + k + op, (W-1)*s - 2p + k + op, Cout)
  """

  def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0,
               output_padding: int = 0, *, impl: str = "subpixel", rngs: nnx.Rngs):
    if impl not in CONVT_IMPLS:
      raise ValueError(f"impl must be one of {CONVT_IMPLS}, got {impl!r}")
    self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
    self.output_padding = output_padding
    self.impl = impl
    # PyTorch computes fan_in of a transposed conv from weight.size(1) = Cout.
    bound = 1.0 / math.sqrt(cout * kernel_size * kernel_size)
    self.kernel = nnx.Param(jax.random.uniform(
        rngs.params(), (kernel_size, kernel_size, cin, cout), jnp.float32, -bound, bound))
    self.bias = nnx.Param(jnp.zeros((cout,), jnp.float32))

  def uses_subpixel(self) -> bool:
    fits = (self.kernel_size, self.stride, self.padding, self.output_padding) == (3, 2, 1, 1)
    return self.impl == "subpixel" and fits

  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.kernel[...]
    if self.uses_subpixel():
      y = conv_transpose_subpixel(x, kernel)
    else:
      y = conv_transpose_direct(x, kernel, self.stride, self.padding, self.output_padding)
    return y + self.bias[...]


class Conv2dBN(nnx.Module):
  """Wav2Lip's `Conv2d` wrapper: ReLU(BN(conv(x)) [+ x]).

  torch `<P>.conv_block.0` -> `<P>.conv`, `<P>.conv_block.1` -> `<P>.bn`. The residual is added
  after BN and before ReLU, and only where Cin == Cout and the size is kept.

  Shapes:
    x: (B, H, W, Cin) -> (B, H', W', Cout)
  """

  def __init__(self, cin: int, cout: int, kernel: int, stride: int | Sequence[int] = 1,
               padding: int = 0, residual: bool = False, *, rngs: nnx.Rngs):
    if residual and (cin != cout or _pair(stride) != (1, 1)):
      raise ValueError("a residual layer must keep channels and size")
    self.conv = conv(cin, cout, kernel, stride, padding, rngs=rngs)
    self.bn = batch_norm(cout, rngs=rngs)
    self.residual = residual

  def __call__(self, x: jax.Array) -> jax.Array:
    y = self.bn(self.conv(x))
    if self.residual:
      y = y + x
    return jax.nn.relu(y)


class ConvTranspose2dBN(nnx.Module):
  """Wav2Lip's `Conv2dTranspose` wrapper: ReLU(BN(convT(x))), no residual.

  torch `<P>.conv_block.0` -> `<P>.conv` (a `ConvTranspose2d`), `<P>.conv_block.1` -> `<P>.bn`.

  Shapes:
    x: (B, H, W, Cin) -> (B, H', W', Cout)
  """

  def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0,
               output_padding: int = 0, *, impl: str = "subpixel", rngs: nnx.Rngs):
    self.conv = ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding, impl=impl,
                                rngs=rngs)
    self.bn = batch_norm(cout, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jax.nn.relu(self.bn(self.conv(x)))


class Conv2dLeaky(nnx.Module):
  """Wav2Lip's `nonorm_Conv2d`: LeakyReLU_0.01(conv(x)); no BN, no residual.

  torch `<P>.conv_block.0` -> `<P>.conv`.

  Shapes:
    x: (B, H, W, Cin) -> (B, H', W', Cout)
  """

  def __init__(self, cin: int, cout: int, kernel: int, stride: int | Sequence[int] = 1,
               padding: int = 0, *, kernel_init=torch_like_kernel_init, rngs: nnx.Rngs):
    self.conv = conv(cin, cout, kernel, stride, padding, kernel_init=kernel_init, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return jax.nn.leaky_relu(self.conv(x), negative_slope=0.01)


class ReLU(nnx.Module):
  """A parameter-free ReLU layer (keeps Sequential indices aligned with PyTorch)."""

  def __call__(self, x: jax.Array) -> jax.Array:
    return jax.nn.relu(x)


class MaxPool(nnx.Module):
  """PyTorch `MaxPool2d/3d` (floor mode, -inf padding) over the spatial axes of N...C input.

  Shapes:
    x: (B, *spatial, C) -> (B, *spatial', C), spatial' = floor((n + 2p - k) / s) + 1
  """

  def __init__(self, window: Sequence[int], strides: Sequence[int],
               padding: Sequence[int] | None = None):
    self.window = tuple(window)
    self.strides = tuple(strides)
    self.padding = tuple(padding) if padding is not None else (0,) * len(self.window)

  def __call__(self, x: jax.Array) -> jax.Array:
    pads = [(0, 0)] + [(p, p) for p in self.padding] + [(0, 0)]
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, *self.window, 1),
                                 (1, *self.strides, 1), pads)


def scaled(channels: int, width: float) -> int:
  """Channel count of a reduced/enlarged variant (`width` = 1.0 is the official network)."""
  return max(1, int(round(channels * width)))
