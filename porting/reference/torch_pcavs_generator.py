"""PyTorch reference of PC-AVS's generator netG ("modulate"), plain PyTorch (no CUDA ops).

Written for the parity tests from the published architecture: same module tree and
state_dict keys as the official `ModulateGenerator` (StyleGAN2 synthesis network, 224 px,
style_dim 2560), eval forward as official inference calls it (`styles=[style]`,
`identity_style=` the identity map). The fused leaky ReLU and upfirdn2d CUDA kernels are
replaced by their plain equivalents; the modulated convolution uses the per-sample grouped
form (the Flax port uses the unfused form, so the two check each other).

  model(style (B, 2560), identity (B, 512, 7, 7), noise=None | list of 11 maps,
        randomize_noise=False) -> (B, 3, 224, 224) in [-1, 1]
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

TAPS = (1.0, 3.0, 3.0, 1.0)


def _fir(gain: float) -> torch.Tensor:
  t = torch.tensor(TAPS)
  k = t[:, None] * t[None, :]
  return k / k.sum() * gain


def _fir_apply(x: torch.Tensor, kernel: torch.Tensor, up: int, pad: tuple[int, int]):
  """Upsample by zero insertion, pad, then a depthwise 2-D convolution with `kernel`."""
  b, c, h, w = x.shape
  if up > 1:
    z = x.new_zeros(b, c, h, up, w, up)
    z[:, :, :, 0, :, 0] = x
    x = z.reshape(b, c, h * up, w * up)
  x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
  weight = torch.flip(kernel, (0, 1)).expand(c, 1, *kernel.shape)
  return F.conv2d(x, weight, groups=c)


class _Blur(nn.Module):
  def __init__(self, pad, up=1, gain=1.0):
    super().__init__()
    self.register_buffer("kernel", _fir(gain))
    self.pad, self.up = pad, up

  def forward(self, x):
    return _fir_apply(x, self.kernel, self.up, self.pad)


class _EqualLinear(nn.Module):
  def __init__(self, din, dout, bias_init=0.0, lr_mul=1.0, act=False):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(dout, din) / lr_mul)
    self.bias = nn.Parameter(torch.full((dout,), float(bias_init)))
    self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(din), lr_mul, act

  def forward(self, x):
    y = x @ (self.weight * self.scale).t() + self.bias * self.lr_mul
    return F.leaky_relu(y, 0.2) * math.sqrt(2) if self.act else y


class _PixelNorm(nn.Module):
  def forward(self, x):
    return x / torch.sqrt((x * x).mean(1, keepdim=True) + 1e-8)


class _ModConv(nn.Module):
  def __init__(self, cin, cout, k, style_dim, demod=True, up=False):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
    if up:
      self.blur = _Blur((1, 1), gain=4.0)
    self.modulation = _EqualLinear(style_dim, cin, bias_init=1.0)
    self.k, self.cin, self.cout, self.demod, self.up = k, cin, cout, demod, up

  def forward(self, x, style):
    b, _, h, w = x.shape
    s = self.modulation(style).view(b, 1, self.cin, 1, 1)
    wt = self.weight / math.sqrt(self.cin * self.k * self.k) * s     # (B, O, I, k, k)
    if self.demod:
      wt = wt / torch.sqrt((wt * wt).sum((2, 3, 4), keepdim=True) + 1e-8)
    x = x.reshape(1, b * self.cin, h, w)
    if self.up:
      wt = wt.transpose(1, 2).reshape(b * self.cin, self.cout, self.k, self.k)
      y = F.conv_transpose2d(x, wt, stride=2, groups=b)
      return self.blur(y.view(b, self.cout, *y.shape[2:]))
    wt = wt.reshape(b * self.cout, self.cin, self.k, self.k)
    y = F.conv2d(x, wt, padding=self.k // 2, groups=b)
    return y.view(b, self.cout, *y.shape[2:])


class _Noise(nn.Module):
  def __init__(self):
    super().__init__()
    self.weight = nn.Parameter(torch.zeros(1))

  def forward(self, x, noise):
    if noise is None:
      noise = x.new_empty(x.shape[0], 1, *x.shape[2:]).normal_()
    return x + self.weight * noise


class _Act(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))

  def forward(self, x):
    return F.leaky_relu(x + self.bias, 0.2) * math.sqrt(2)


class _StyledConv(nn.Module):
  def __init__(self, cin, cout, style_dim, up=False):
    super().__init__()
    self.conv = _ModConv(cin, cout, 3, style_dim, up=up)
    self.noise = _Noise()
    self.activate = _Act(cout)

  def forward(self, x, style, noise):
    return self.activate(self.noise(self.conv(x, style), noise))


class _ToRGB(nn.Module):
  def __init__(self, cin, style_dim, up=True):
    super().__init__()
    if up:
      self.upsample = _Blur((2, 1), up=2, gain=4.0)
    self.conv = _ModConv(cin, 3, 1, style_dim, demod=False)
    self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

  def forward(self, x, style, skip=None):
    y = self.conv(x, style) + self.bias
    return y if skip is None else y + self.upsample(skip)


class _ConstInput(nn.Module):
  def __init__(self, c, size):
    super().__init__()
    self.input = nn.Parameter(torch.randn(1, c, size, size))


class PCAVSGeneratorRef(nn.Module):
  CHANNELS = {7: 512, 14: 512, 28: 512, 56: 512, 112: 256, 224: 128}

  def __init__(self, style_dim=2560, size=224, n_mlp=8, feature_dim=2560):
    super().__init__()
    self.style = nn.Sequential(_PixelNorm(), *[
        _EqualLinear(feature_dim, style_dim, lr_mul=0.01, act=True) for _ in range(n_mlp)])
    r0 = 7
    self.input = _ConstInput(self.CHANNELS[r0], r0)
    self.conv1 = _StyledConv(self.CHANNELS[r0], self.CHANNELS[r0], style_dim)
    self.to_rgb1 = _ToRGB(self.CHANNELS[r0], style_dim, up=False)
    self.convs, self.upsamples, self.to_rgbs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
    self.noises = nn.Module()
    n_up = int(math.log2(size // r0))
    self.num_layers = 2 * n_up + 1
    for i in range(self.num_layers):
      s = r0 * 2 ** ((i + 1) // 2)
      self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, s, s))
    cin = self.CHANNELS[r0]
    for i in range(1, n_up + 1):
      cout = self.CHANNELS[r0 * 2 ** i]
      self.convs.append(_StyledConv(cin, cout, style_dim, up=True))
      self.convs.append(_StyledConv(cout, cout, style_dim))
      self.to_rgbs.append(_ToRGB(cout, style_dim))
      cin = cout

  def forward(self, style, identity, noise=None, randomize_noise=False):
    if noise is None:
      noise = ([None] * self.num_layers if randomize_noise else
               [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)])
    x = self.conv1(identity, style, noise[0])
    skip = self.to_rgb1(x, style)
    for j, to_rgb in enumerate(self.to_rgbs):
      x = self.convs[2 * j](x, style, noise[2 * j + 1])
      x = self.convs[2 * j + 1](x, style, noise[2 * j + 2])
      skip = to_rgb(x, style, skip)
    return torch.tanh(skip)
