"""PC-AVS's generator netG ("modulate", a StyleGAN2 synthesis network) in Flax NNX (NHWC).

PC-AVS (Zhou et al., CVPR 2021) renders a face from one style vector and a spatial identity
map. Official inference (`--netG modulate --style_dim 2560 --input_id_feature`, 224 px) runs:

  style = concat(identity vector (2048, netV's pooled ResNeXt feature),
                 pose feature (512 = mouth embedding 500 + head-pose embedding 12))
  x = identity_style (netV's 512-channel 7x7 map; replaces the learned constant input)
  x = StyledConv(x) at 7 px; rgb = ToRGB(x)
  five times: x = StyledConv up x2 (transposed conv + blur), x = StyledConv; rgb = ToRGB(x) +
    FIR-upsampled rgb
  image = tanh(rgb)  -> (B, 224, 224, 3) in [-1, 1], RGB (PC-AVS reads frames with OpenCV,
    converts BGR to RGB and scales to [-1, 1]; it saves (x + 1) / 2 * 255 as RGB)

Every layer gets the same style (one latent repeated). Weights use StyleGAN2's equalized
learning rate: parameters are stored unscaled (as in the checkpoint) and multiplied by
1/sqrt(fan_in) in the forward pass. The modulated convolution is computed in the unfused
form (input scaled by the style, one shared convolution, output scaled by the demodulation
coefficient), which equals the official per-sample grouped convolution and batches on any
device.

Noise: each StyledConv adds `strength * noise`. Official inference draws fresh N(0, 1) noise
per call (`randomize_noise=True`); here `rng=` does that, `noise=` takes explicit maps, and
the default uses the fixed noise maps stored in the checkpoint (official `randomize_noise=
False`), which makes the output deterministic.

Attribute names follow the official modules, so a torch key maps mechanically:
`convs.0.conv.weight` -> `convs.0.conv.kernel` (HWIO), `convs.0.conv.modulation.weight` ->
`...modulation.kernel` (in, out), `convs.0.activate.bias` (1, C, 1, 1) -> `...activate.bias` (C,),
`convs.0.noise.weight` -> `...noise.strength`, `noises.noise_3` -> `noises.noise_3`
(1, H, W, 1), `input.input` -> `input.input` (1, 7, 7, 512). The unused mapping MLP
(`style.1`..`style.8`, official `input_is_latent=True`) and the unused constant input are
kept so the parameter set equals the checkpoint's.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)  # StyleGAN2's FIR kernel, outer product normalised to sum 1
LEAK = 0.2
ACT_GAIN = math.sqrt(2.0)


class Buffer(nnx.Variable):
  """A stored, non-trained array (the checkpoint's fixed noise maps)."""


def _normal(rngs: nnx.Rngs, shape) -> jax.Array:
  return jax.random.normal(rngs.params(), shape, jnp.float32)


def fused_lrelu(x: jax.Array, bias: jax.Array) -> jax.Array:
  """leaky_relu(x + bias, 0.2) * sqrt(2) (official FusedLeakyReLU, bias on the last axis)."""
  return jax.nn.leaky_relu(x + bias, LEAK) * ACT_GAIN


def upfirdn(x: jax.Array, up: int, pad: tuple[int, int]) -> jax.Array:
  """Zero-insert upsampling by `up`, padding, then the separable 4-tap FIR (gain up**2).

  Shapes: (B, H, W, C) -> (B, H*up + pad0 + pad1 - 3, W*up + pad0 + pad1 - 3, C).
  """
  b, h, w, c = x.shape
  if up > 1:  # each sample followed by up-1 zeros along H and W
    x = x[:, :, None, :, None, :]
    x = jnp.pad(x, ((0, 0), (0, 0), (0, up - 1), (0, 0), (0, up - 1), (0, 0)))
    x = x.reshape(b, h * up, w * up, c)
  x = jnp.pad(x, ((0, 0), pad, pad, (0, 0)))
  taps = [t / sum(BLUR_TAPS) * up for t in BLUR_TAPS[::-1]]  # flipped: a true convolution
  n = len(taps)
  for axis in (1, 2):
    size = x.shape[axis] - n + 1
    x = sum(t * jax.lax.slice_in_dim(x, j, j + size, axis=axis) for j, t in enumerate(taps))
  return x


class EqualLinear(nnx.Module):
  """Linear layer with equalized learning rate: y = x @ (kernel * lr_mul / sqrt(in)) + bias * lr_mul.

  Shapes: (B, in) -> (B, out). `kernel` is (in, out).
  """

  def __init__(self, din: int, dout: int, *, bias_init: float = 0.0, lr_mul: float = 1.0,
               activate: bool = False, rngs: nnx.Rngs):
    self.kernel = nnx.Param(_normal(rngs, (din, dout)) / lr_mul)
    self.bias = nnx.Param(jnp.full((dout,), bias_init, jnp.float32))
    self.scale = lr_mul / math.sqrt(din)
    self.lr_mul = lr_mul
    self.bias_init = bias_init
    self.activate = activate

  def __call__(self, x: jax.Array) -> jax.Array:
    y = x @ (self.kernel[...] * self.scale)
    bias = self.bias[...] * self.lr_mul
    return fused_lrelu(y, bias) if self.activate else y + bias


class PixelNorm(nnx.Module):
  """x / sqrt(mean(x**2) + 1e-8) over features. Shapes: (B, C) -> (B, C)."""

  def __call__(self, x: jax.Array) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-8)


class ModulatedConv2d(nnx.Module):
  """StyleGAN2 modulated convolution (+ optional x2 transposed-conv upsampling and blur).

  Shapes: x (B, H, W, in), style (B, style_dim) -> (B, H', W', out), H' = 2H if upsample.
  """

  def __init__(self, cin: int, cout: int, k: int, style_dim: int, *, demodulate: bool = True,
               upsample: bool = False, rngs: nnx.Rngs):
    self.kernel = nnx.Param(_normal(rngs, (k, k, cin, cout)))
    self.modulation = EqualLinear(style_dim, cin, bias_init=1.0, rngs=rngs)
    self.scale = 1.0 / math.sqrt(cin * k * k)
    self.k = k
    self.demodulate = demodulate
    self.upsample = upsample

  def __call__(self, x: jax.Array, style: jax.Array) -> jax.Array:
    s = self.modulation(style)                                          # (B, in)
    w = self.kernel[...] * self.scale                                  # (k, k, in, out)
    x = x * s[:, None, None, :]
    dn = ("NHWC", "HWIO", "NHWC")
    if self.upsample:
      # Stride-2 transposed conv, padding 0: dilate the input, pad k-1, flipped kernel.
      p = self.k - 1
      y = jax.lax.conv_general_dilated(x, w[::-1, ::-1], (1, 1), ((p, p), (p, p)),
                                       lhs_dilation=(2, 2), dimension_numbers=dn)
    else:
      p = self.k // 2
      y = jax.lax.conv_general_dilated(x, w, (1, 1), ((p, p), (p, p)), dimension_numbers=dn)
    if self.demodulate:
      # ||w * s||^2 per (sample, output channel), without materialising per-sample kernels.
      energy = (s * s) @ jnp.sum(w * w, axis=(0, 1))                    # (B, out)
      y = y * jax.lax.rsqrt(energy + 1e-8)[:, None, None, :]
    if self.upsample:
      # Official Blur after the transposed conv: pad (1, 1) for the 4-tap kernel, gain 4.
      y = upfirdn(y, 1, (1, 1)) * 4.0
    return y


class NoiseInjection(nnx.Module):
  """x + strength * noise. Shapes: x (B, H, W, C), noise (B or 1, H, W, 1) -> (B, H, W, C)."""

  def __init__(self):
    self.strength = nnx.Param(jnp.zeros((1,), jnp.float32))

  def __call__(self, x: jax.Array, noise: jax.Array) -> jax.Array:
    return x + self.strength[...] * noise


class FusedLeakyReLU(nnx.Module):
  """leaky_relu(x + bias, 0.2) * sqrt(2). Shapes: (B, H, W, C) -> (B, H, W, C)."""

  def __init__(self, c: int):
    self.bias = nnx.Param(jnp.zeros((c,), jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    return fused_lrelu(x, self.bias[...])


class StyledConv(nnx.Module):
  """Modulated 3x3 conv, noise, biased scaled leaky ReLU.

  Shapes: x (B, H, W, in), style (B, S), noise (B or 1, H', W', 1) -> (B, H', W', out).
  """

  def __init__(self, cin: int, cout: int, style_dim: int, *, upsample: bool = False,
               rngs: nnx.Rngs):
    self.conv = ModulatedConv2d(cin, cout, 3, style_dim, upsample=upsample, rngs=rngs)
    self.noise = NoiseInjection()
    self.activate = FusedLeakyReLU(cout)

  def __call__(self, x, style, noise):
    return self.activate(self.noise(self.conv(x, style), noise))


class ToRGB(nnx.Module):
  """1x1 modulated conv (no demodulation) to RGB, + bias, + FIR-upsampled previous RGB.

  Shapes: x (B, H, W, in), style (B, S), skip (B, H/2, W/2, 3) or None -> (B, H, W, 3).
  """

  def __init__(self, cin: int, style_dim: int, *, rngs: nnx.Rngs):
    self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False, rngs=rngs)
    self.bias = nnx.Param(jnp.zeros((3,), jnp.float32))

  def __call__(self, x, style, skip=None):
    y = self.conv(x, style) + self.bias[...]
    if skip is not None:
      y = y + upfirdn(skip, 2, (2, 1))  # official Upsample: pads (2, 1) for factor 2
    return y


class ConstantInput(nnx.Module):
  """The learned 7x7 start map (unused when an identity map is given). Shapes: (1, s, s, C)."""

  def __init__(self, c: int, size: int, *, rngs: nnx.Rngs):
    self.input = nnx.Param(_normal(rngs, (1, size, size, c)))


class NoiseBank(nnx.Module):
  """The checkpoint's fixed noise maps `noise_0`.. as Buffers of shape (1, H, W, 1)."""

  def __init__(self, sizes: Sequence[int], *, rngs: nnx.Rngs):
    for i, s in enumerate(sizes):
      setattr(self, f"noise_{i}", Buffer(_normal(rngs, (1, s, s, 1))))
    self.count = len(sizes)

  def maps(self) -> list[jax.Array]:
    return [getattr(self, f"noise_{i}")[...] for i in range(self.count)]


def host_initialize(model: nnx.Module, rng) -> None:
  """Sets every array of a (possibly abstract) generator from the numpy Generator `rng`.

  Same distributions as the constructor (and the official init): N(0, 1) kernels (divided by
  lr_mul), constant input and noise maps; biases at their init value; noise strengths 0.
  """
  def normal(shape):
    return jnp.asarray(rng.standard_normal(shape).astype("float32"))

  for _, node in nnx.iter_graph(model):
    if isinstance(node, EqualLinear):
      node.kernel.set_value(normal(node.kernel.shape) / node.lr_mul)
      node.bias.set_value(jnp.full(node.bias.shape, node.bias_init, jnp.float32))
    elif isinstance(node, (ModulatedConv2d, ConstantInput)):
      var = node.kernel if isinstance(node, ModulatedConv2d) else node.input
      var.set_value(normal(var.shape))
    elif isinstance(node, NoiseInjection):
      node.strength.set_value(jnp.zeros((1,), jnp.float32))
    elif isinstance(node, (FusedLeakyReLU, ToRGB)):
      node.bias.set_value(jnp.zeros(node.bias.shape, jnp.float32))
    elif isinstance(node, NoiseBank):
      for i in range(node.count):
        var = getattr(node, f"noise_{i}")
        var.set_value(normal(var.shape))


def channel_table(size: int, channel_multiplier: int = 2) -> tuple[int, dict[int, int]]:
  """(initial resolution, {resolution: channels}) of the official generator for `size`."""
  m = channel_multiplier
  if size % 7 == 0:
    table = {7: 512, 14: 512, 28: 512, 56: 256 * m, 112: 128 * m, 224: 64 * m, 448: 32 * m}
    return 7, table
  table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * m, 128: 128 * m, 256: 64 * m,
           512: 32 * m, 1024: 16 * m}
  return 4, table


class PCAVSGenerator(nnx.Module):
  """PC-AVS netG (ModulateGenerator) exactly as official inference runs it.

  Shapes:
    style (B, style_dim) float32: concat(identity vector (B, 2048), pose feature (B, 512)).
    identity (B, 7, 7, 512) float32: netV's identity map (the official `identity_style`);
      None starts from the learned constant input instead (official `--input_id_feature` off).
    noise: None (the stored maps), or num_layers maps (B or 1, H_i, W_i, 1) with H_i =
      init * 2**((i + 1) // 2); `rng` (a jax.random key) draws fresh N(0, 1) maps instead.
    -> (B, size, size, 3) float32 in [-1, 1] (tanh), RGB.
  """

  family = "pcavs_G"

  def __init__(self, *, style_dim: int = 2560, size: int = 224, channel_multiplier: int = 2,
               n_mlp: int = 8, feature_encoded_dim: int = 2560, lr_mlp: float = 0.01,
               rngs: nnx.Rngs):
    # Items, not a dict: the graph definition must stay hashable (jit caches key on it).
    self._config = tuple(dict(
        style_dim=style_dim, size=size, channel_multiplier=channel_multiplier, n_mlp=n_mlp,
        feature_encoded_dim=feature_encoded_dim, lr_mlp=lr_mlp).items())
    init, ch = channel_table(size, channel_multiplier)
    self.init_size = init
    self.log_size = int(math.log2(size // init))
    self.num_layers = 2 * self.log_size + 1
    # Index 0 is the parameter-free PixelNorm, as in the official Sequential.
    self.style = nnx.List([PixelNorm()] + [
        EqualLinear(feature_encoded_dim, style_dim, lr_mul=lr_mlp, activate=True, rngs=rngs)
        for _ in range(n_mlp)])
    self.input = ConstantInput(ch[init], init, rngs=rngs)
    self.conv1 = StyledConv(ch[init], ch[init], style_dim, rngs=rngs)
    self.to_rgb1 = ToRGB(ch[init], style_dim, rngs=rngs)
    convs, to_rgbs = [], []
    cin = ch[init]
    for i in range(1, self.log_size + 1):
      cout = ch[init * 2 ** i]
      convs += [StyledConv(cin, cout, style_dim, upsample=True, rngs=rngs),
                StyledConv(cout, cout, style_dim, rngs=rngs)]
      to_rgbs.append(ToRGB(cout, style_dim, rngs=rngs))
      cin = cout
    self.convs = nnx.List(convs)
    self.to_rgbs = nnx.List(to_rgbs)
    self.noises = NoiseBank(self.noise_sizes(), rngs=rngs)

  def get_config(self) -> dict:
    return dict(self._config)

  def noise_sizes(self) -> list[int]:
    """Spatial size of each of the num_layers noise maps."""
    return [self.init_size * 2 ** ((i + 1) // 2) for i in range(self.num_layers)]

  def map_style(self, z: jax.Array) -> jax.Array:
    """The official mapping MLP (unused by inference, whose style is already a latent).

    Shapes: (B, feature_encoded_dim) -> (B, style_dim).
    """
    for layer in self.style:
      z = layer(z)
    return z

  def draw_noise(self, rng: jax.Array, batch: int) -> list[jax.Array]:
    """Fresh N(0, 1) noise maps like official inference: (batch, H_i, W_i, 1) each."""
    keys = jax.random.split(rng, self.num_layers)
    return [jax.random.normal(k, (batch, s, s, 1), jnp.float32)
            for k, s in zip(keys, self.noise_sizes())]

  def __call__(self, style: jax.Array, identity: jax.Array | None, noise=None,
               rng: jax.Array | None = None) -> jax.Array:
    if rng is not None:
      noise = self.draw_noise(rng, style.shape[0])
    elif noise is None:
      noise = self.noises.maps()
    if len(noise) != self.num_layers:
      raise ValueError(f"expected {self.num_layers} noise maps, got {len(noise)}")
    if identity is None:
      const = self.input.input[...]
      identity = jnp.broadcast_to(const, (style.shape[0],) + const.shape[1:])
    x = self.conv1(identity, style, noise[0])
    skip = self.to_rgb1(x, style)
    for j, to_rgb in enumerate(self.to_rgbs):
      x = self.convs[2 * j](x, style, noise[2 * j + 1])
      x = self.convs[2 * j + 1](x, style, noise[2 * j + 2])
      skip = to_rgb(x, style, skip)
    return jnp.tanh(skip)
