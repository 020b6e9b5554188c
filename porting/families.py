"""The official PyTorch state_dict of each checkpoint family, as data (numpy only, no torch).

For every family this module lists each official key in registration order with its PyTorch
shape and a `kind` that says how the converter transforms it:

  conv    Conv2d weight (out, in, kh, kw)            convT  ConvTranspose2d weight (in, out, kh, kw)
  conv3d  Conv3d weight (out, in, kt, kh, kw)        linear Linear weight (out, in)
  conv1d  Conv1d weight (out, in, k)
  bias    conv/linear bias (out,)
  bn_scale / bn_bias / bn_mean / bn_var              BatchNorm weight / bias / running stats
  bn_count                                           BatchNorm num_batches_tracked (int64 scalar)
  l2norm                                             S3FD L2Norm per-channel scale (C,)
  PC-AVS netG (StyleGAN2 layers, weights stored unscaled: equalized learning rate):
  eqlinear  EqualLinear weight (out, in)             mod_bias  modulation bias (in,), init 1
  modconv   modulated conv weight (1, out, in, k, k) act_bias  bias (1, C, 1, 1)
  noise_strength  NoiseInjection weight (1,)         const     constant input (1, C, H, W)
  noise_buf       fixed noise map buffer (1, 1, H, W)
  fir       FIR kernel buffer (4, 4): a constant of the architecture, checked, not converted

Written from the official architectures' layer tables, independently
of the Flax modules, so the two can check each other. It also makes deterministic random
state dicts (`random_state_dict`) and model inputs (`make_inputs`) from a numpy seed: the
PyTorch fixtures and the committed goldens are built from these, and the torch-free tests
regenerate the same weights without torch.
"""
from __future__ import annotations

import dataclasses

import numpy as np

FAMILY_NAMES = ("wav2lip", "syncnet_color", "disc_qual", "syncnet_v2", "s3fd", "pcavs_G",
                "pcavs_V", "pcavs_E", "pcavs_A_sync")

# Human-readable file names per family (for messages).
FAMILY_FILES = {
    "wav2lip": "wav2lip.pth / wav2lip_gan.pth / Wav2Lip-SD-*.pt",
    "syncnet_color": "lipsync_expert.pth",
    "disc_qual": "visual_quality_disc.pth",
    "syncnet_v2": "syncnet_v2.model",
    "s3fd": "s3fd-619a316812.pth",
    "pcavs_G": "PC-AVS <epoch>_net_G.pth",
    "pcavs_V": "PC-AVS <epoch>_net_V.pth",
    "pcavs_E": "PC-AVS <epoch>_net_E.pth",
    "pcavs_A_sync": "PC-AVS latest_net_A_sync.pth",
}
# Kinds that are buffers, not trained parameters.
BUFFER_KINDS = ("bn_mean", "bn_var", "bn_count", "noise_buf", "fir")


@dataclasses.dataclass(frozen=True)
class Entry:
  """One official state_dict entry: key, PyTorch shape, transform kind."""
  key: str
  shape: tuple
  kind: str


def _bn(prefix: str, c: int) -> list[Entry]:
  return [Entry(f"{prefix}.weight", (c,), "bn_scale"), Entry(f"{prefix}.bias", (c,), "bn_bias"),
          Entry(f"{prefix}.running_mean", (c,), "bn_mean"),
          Entry(f"{prefix}.running_var", (c,), "bn_var"),
          Entry(f"{prefix}.num_batches_tracked", (), "bn_count")]


def _conv(prefix: str, cin: int, cout: int, k, kind: str = "conv") -> list[Entry]:
  k = (k, k) if isinstance(k, int) else tuple(k)
  shape = (cin, cout) + k if kind == "convT" else (cout, cin) + k
  return [Entry(f"{prefix}.weight", shape, kind), Entry(f"{prefix}.bias", (cout,), "bias")]


def _wrapper(prefix: str, cin: int, cout: int, k: int, kind: str = "conv",
             bn: bool = True) -> list[Entry]:
  """A Wav2Lip `Conv2d` / `Conv2dTranspose` / `nonorm_Conv2d` wrapper at `prefix`."""
  out = _conv(f"{prefix}.conv_block.0", cin, cout, k, kind)
  return out + (_bn(f"{prefix}.conv_block.1", cout) if bn else [])


def _chain(prefix: str, cin: int, layers, bn: bool = True) -> tuple[list[Entry], int]:
  """Sequential of wrappers `prefix.{i}` from (cout, k) pairs; returns entries, last cout."""
  out = []
  for i, (cout, k) in enumerate(layers):
    out += _wrapper(f"{prefix}.{i}", cin, cout, k, bn=bn)
    cin = cout
  return out, cin


# (cout, kernel) per layer; strides/paddings do not change the state dict.
_W2L_FACE_ENC = (((16, 7),), ((32, 3),) * 3, ((64, 3),) * 4, ((128, 3),) * 3, ((256, 3),) * 3,
                 ((512, 3),) * 2, ((512, 3), (512, 1)))
_W2L_AUDIO_ENC = ((32, 3),) * 3 + ((64, 3),) * 3 + ((128, 3),) * 3 + ((256, 3),) * 2 + (
    (512, 3), (512, 1))
_W2L_DEC_OUT = (512, 512, 512, 384, 256, 128, 64)  # every decoder block's output channels
_W2L_DEC_LAYERS = (1, 2, 3, 3, 3, 3, 3)
_SYNC_FACE_ENC = ((32, 7), (64, 5)) + ((64, 3),) * 2 + ((128, 3),) * 4 + ((256, 3),) * 3 + (
    (512, 3),) * 5 + ((512, 1),)
_SYNC_AUDIO_ENC = ((32, 3),) * 3 + ((64, 3),) * 3 + ((128, 3),) * 3 + ((256, 3),) * 3 + (
    (512, 3), (512, 1))
_DISC_ENC = (((32, 7),), ((64, 5),) * 2, ((128, 5),) * 2, ((256, 5),) * 2, ((512, 3),) * 2,
             ((512, 3),) * 2, ((512, 3), (512, 1)))


def _wav2lip() -> list[Entry]:
  out, cin, skips = [], 6, []
  for b, block in enumerate(_W2L_FACE_ENC):
    entries, cin = _chain(f"face_encoder_blocks.{b}", cin, block)
    out += entries
    skips.append(cin)
  audio, cin = _chain("audio_encoder", 1, _W2L_AUDIO_ENC)
  out += audio
  for b, (cout, n) in enumerate(zip(_W2L_DEC_OUT, _W2L_DEC_LAYERS)):
    k = 1 if b == 0 else 3
    out += _wrapper(f"face_decoder_blocks.{b}.0", cin, cout, k, "conv" if b == 0 else "convT")
    for l in range(1, n):
      out += _wrapper(f"face_decoder_blocks.{b}.{l}", cout, cout, 3)
    cin = cout + skips[len(skips) - 1 - b]
  out += _wrapper("output_block.0", cin, 32, 3)
  out += _conv("output_block.1", 32, 3, 1)
  return out


def _syncnet_color() -> list[Entry]:
  return _chain("face_encoder", 15, _SYNC_FACE_ENC)[0] + _chain(
      "audio_encoder", 1, _SYNC_AUDIO_ENC)[0]


def _disc_qual() -> list[Entry]:
  out, cin = [], 3
  for b, block in enumerate(_DISC_ENC):
    entries, cin = _chain(f"face_encoder_blocks.{b}", cin, block, bn=False)
    out += entries
  return out + _conv("binary_pred.0", cin, 1, 1)


def _syncnet_v2() -> list[Entry]:
  aud = ((0, 1, 64, 3), (4, 64, 192, 3), (8, 192, 384, 3), (11, 384, 256, 3),
         (14, 256, 256, 3), (18, 256, 512, (5, 4)))
  lip = ((0, 3, 96, (5, 7, 7)), (4, 96, 256, (1, 5, 5)), (8, 256, 256, (1, 3, 3)),
         (11, 256, 256, (1, 3, 3)), (14, 256, 256, (1, 3, 3)), (18, 256, 512, (1, 6, 6)))

  def fc(prefix):
    return (_conv(f"{prefix}.0", 512, 512, (), "linear") + _bn(f"{prefix}.1", 512)
            + _conv(f"{prefix}.3", 512, 1024, (), "linear"))

  out = []
  for i, cin, cout, k in aud:
    out += _conv(f"netcnnaud.{i}", cin, cout, k) + _bn(f"netcnnaud.{i + 1}", cout)
  out += fc("netfcaud")
  for i, cin, cout, k in lip:
    out += _conv(f"netcnnlip.{i}", cin, cout, k, "conv3d") + _bn(f"netcnnlip.{i + 1}", cout)
  return out + fc("netfclip")


# S3FD (Wav2Lip's face_detection/detection/sfd): (name, cin, cout, kernel) in registration order.
S3FD_MEAN_RGB = (104.0, 117.0, 123.0)  # official pre-processing, subtracted from R, G, B
_S3FD_TRUNK = (("conv1_1", 3, 64, 3), ("conv1_2", 64, 64, 3), ("conv2_1", 64, 128, 3),
               ("conv2_2", 128, 128, 3), ("conv3_1", 128, 256, 3), ("conv3_2", 256, 256, 3),
               ("conv3_3", 256, 256, 3), ("conv4_1", 256, 512, 3), ("conv4_2", 512, 512, 3),
               ("conv4_3", 512, 512, 3), ("conv5_1", 512, 512, 3), ("conv5_2", 512, 512, 3),
               ("conv5_3", 512, 512, 3), ("fc6", 512, 1024, 3), ("fc7", 1024, 1024, 1),
               ("conv6_1", 1024, 256, 1), ("conv6_2", 256, 512, 3), ("conv7_1", 512, 128, 1),
               ("conv7_2", 128, 256, 3))
# (source layer, its channels, class channels): conv3_3's head has 4 (max-out background).
_S3FD_HEADS = (("conv3_3_norm", 256, 4), ("conv4_3_norm", 512, 2), ("conv5_3_norm", 512, 2),
               ("fc7", 1024, 2), ("conv6_2", 512, 2), ("conv7_2", 256, 2))


def _s3fd() -> list[Entry]:
  out = []
  for name, cin, cout, k in _S3FD_TRUNK:
    out += _conv(name, cin, cout, k)
  # The L2Norm scales are registered after the trunk, the heads after them.
  out += [Entry(f"conv{i}_3_norm.weight", (c,), "l2norm") for i, c in ((3, 256), (4, 512),
                                                                          (5, 512))]
  for src, cin, ncls in _S3FD_HEADS:
    out += _conv(f"{src}_mbox_conf", cin, ncls, 3) + _conv(f"{src}_mbox_loc", cin, 4, 3)
  return out


# PC-AVS netV: torchvision's ResNeXt-50 32x4d (bias-free convs; grouped 3x3 weights are
# (out, in / 32, 3, 3)) + conv1x1 (2048 -> 512) + identity fc. netE: FAN_use + MLP heads.
PCAVS_NUM_CLASSES = 5830
PCAVS_POSE_DIM = 12
PCAVS_V_SIZE = 96  # golden/fixture netV input side (any size works; 224 officially)


def _nobias(prefix: str, cin: int, cout: int, k: int) -> list[Entry]:
  return [Entry(f"{prefix}.weight", (cout, cin, k, k), "conv")]


def _linear(prefix: str, cin: int, cout: int) -> list[Entry]:
  return _conv(prefix, cin, cout, (), "linear")


def _pcavs_v() -> list[Entry]:
  out = _nobias("model.conv1", 3, 64, 7) + _bn("model.bn1", 64)
  cin = 64
  for stage, (n, planes) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
    width, cout = planes * 2, planes * 4
    for b in range(n):
      p = f"model.layer{stage + 1}.{b}"
      out += _nobias(f"{p}.conv1", cin, width, 1) + _bn(f"{p}.bn1", width)
      out += _nobias(f"{p}.conv2", width // 32, width, 3) + _bn(f"{p}.bn2", width)
      out += _nobias(f"{p}.conv3", width, cout, 1) + _bn(f"{p}.bn3", cout)
      if b == 0:
        out += _nobias(f"{p}.downsample.0", cin, cout, 1) + _bn(f"{p}.downsample.1", cout)
      cin = cout
  out += _linear("model.fc", 2048, 1000)
  return out + _conv("conv1x1", 2048, 512, 1) + _linear("fc", 2048, PCAVS_NUM_CLASSES)


def _fan_block(p: str, cin: int, cout: int) -> list[Entry]:
  out = (_bn(f"{p}.bn1", cin) + _nobias(f"{p}.conv1", cin, cout // 2, 3)
         + _bn(f"{p}.bn2", cout // 2) + _nobias(f"{p}.conv2", cout // 2, cout // 4, 3)
         + _bn(f"{p}.bn3", cout // 4) + _nobias(f"{p}.conv3", cout // 4, cout // 4, 3))
  if cin != cout:
    out += _bn(f"{p}.downsample.0", cin) + _nobias(f"{p}.downsample.2", cin, cout, 1)
  return out


def _pcavs_e() -> list[Entry]:
  out = _conv("model.conv1", 3, 64, 7) + _bn("model.bn1", 64)
  for name, cin, cout in (("conv2", 64, 128), ("conv3", 128, 128), ("conv4", 128, 256)):
    out += _fan_block(f"model.{name}", cin, cout)
  # Hourglass registration order: b1_L, b2_L down to level 1, b2_plus_1, then b3_1 .. b3_4.
  for level in (4, 3, 2, 1):
    out += _fan_block(f"model.m0.b1_{level}", 256, 256) + _fan_block(
        f"model.m0.b2_{level}", 256, 256)
  out += _fan_block("model.m0.b2_plus_1", 256, 256)
  for level in (1, 2, 3, 4):
    out += _fan_block(f"model.m0.b3_{level}", 256, 256)
  out += _fan_block("model.top_m_0", 256, 256) + _conv("model.conv_last0", 256, 256, 1)
  out += _conv("model.l0", 256, 68, 1) + _bn("model.bn_end0", 256)
  out += _conv("model.conv6", 68, 1, 3) + _linear("model.fc", 784, 512) + _bn("model.bn5", 68)
  nc, pd = PCAVS_NUM_CLASSES, PCAVS_POSE_DIM
  for name, cout in (("classifier", nc), ("to_mouth", 512)):
    out += _linear(f"{name}.0", 512, 512) + _linear(f"{name}.2", 512, cout)
  out += _linear("mouth_embed.1", 512, 512 - pd) + _linear("mouth_fc.1", 512, nc)
  out += _linear("to_headpose.0", 512, 512) + _linear("to_headpose.2", 512, 512)
  return out + _linear("headpose_embed.1", 512, pd) + _linear("headpose_fc.1", pd, nc)
def _pcavs_a_sync() -> list[Entry]:
  """PC-AVS netA_sync (ResSESyncEncoder): `model.*` ResNetSE trunk + `fc` speaker classifier."""
  out = _conv("model.conv1", 1, 32, 3) + _bn("model.bn1", 32)
  cin = 32
  for stage, (width, depth) in enumerate(zip((32, 64, 128, 256), (3, 4, 6, 3))):
    for j in range(depth):
      p = f"model.layer{stage + 1}.{j}"
      out += [Entry(f"{p}.conv1.weight", (width, cin, 3, 3), "conv")] + _bn(f"{p}.bn1", width)
      out += [Entry(f"{p}.conv2.weight", (width, width, 3, 3), "conv")] + _bn(f"{p}.bn2",
                                                                                 width)
      out += (_conv(f"{p}.se.fc.0", width, width // 8, (), "linear")
              + _conv(f"{p}.se.fc.2", width // 8, width, (), "linear"))
      if j == 0 and (stage > 0 or cin != width):
        out += [Entry(f"{p}.downsample.0.weight", (width, cin, 1, 1), "conv")]
        out += _bn(f"{p}.downsample.1", width)
      cin = width
  pooled = 256 * 10  # channels x (80 mel bins / 8)
  out += _conv("model.attention.0", pooled, 128, (1,), "conv1d") + _bn("model.attention.2", 128)
  out += _conv("model.attention.3", 128, pooled, (1,), "conv1d")
  return out + _conv("model.fc", pooled, 512, (), "linear") + _conv("fc", 512, 5830, (),
                                                                    "linear")


# syncnet_v2 takes raw 0..255 pixels and MFCCs of magnitude ~10: its first layers get
# proportionally smaller random weights so the embeddings stay O(1) like a trained net's.
# S3FD takes mean-subtracted 0..255 pixels: the same reduction for its first conv.
# PC-AVS's FAN ends in a 784 -> 512 Linear on a single-channel map that random weights leave at
# ~10x a unit scale; its conv6 is scaled down so the pose features are O(1) too.
_INPUT_GAIN = {"netcnnlip.0.weight": 1.0 / 128.0, "netcnnaud.0.weight": 0.1,
               "conv1_1.weight": 1.0 / 64.0, "model.conv6.weight": 1.0 / 8.0}
# S3FD L2Norm scales start at the official initial values; random draws scatter around them.
_L2NORM_INIT = {"conv3_3_norm.weight": 10.0, "conv4_3_norm.weight": 8.0,
                "conv5_3_norm.weight": 5.0}

# PC-AVS netG as official inference builds it (--netG modulate --style_dim 2560, 224 px):
# resolution -> channels, starting from a 7x7 map; StyleGAN2 blur taps.
PCAVS_STYLE_DIM = 2560
PCAVS_CHANNELS = ((7, 512), (14, 512), (28, 512), (56, 512), (112, 256), (224, 128))
PCAVS_FIR_TAPS = (1.0, 3.0, 3.0, 1.0)


def pcavs_fir_kernel() -> np.ndarray:
  """The (4, 4) blur / upsample kernel buffer: normalised outer product of the taps, x 4."""
  k = np.outer(PCAVS_FIR_TAPS, PCAVS_FIR_TAPS)
  return (k / k.sum() * 4.0).astype(np.float32)


def _modconv(prefix: str, cin: int, cout: int, k: int, blur: bool = False) -> list[Entry]:
  out = [Entry(f"{prefix}.weight", (1, cout, cin, k, k), "modconv")]
  out += [Entry(f"{prefix}.blur.kernel", (4, 4), "fir")] if blur else []
  return out + [Entry(f"{prefix}.modulation.weight", (cin, PCAVS_STYLE_DIM), "eqlinear"),
                Entry(f"{prefix}.modulation.bias", (cin,), "mod_bias")]


def _styled(prefix: str, cin: int, cout: int, up: bool) -> list[Entry]:
  return _modconv(f"{prefix}.conv", cin, cout, 3, blur=up) + [
      Entry(f"{prefix}.noise.weight", (1,), "noise_strength"),
      Entry(f"{prefix}.activate.bias", (1, cout, 1, 1), "act_bias")]


def _to_rgb(prefix: str, cin: int, up: bool) -> list[Entry]:
  # A module's own parameters come before its children's in a torch state_dict.
  out = [Entry(f"{prefix}.bias", (1, 3, 1, 1), "act_bias")]
  out += [Entry(f"{prefix}.upsample.kernel", (4, 4), "fir")] if up else []
  return out + _modconv(f"{prefix}.conv", cin, 3, 1)


def _pcavs_g() -> list[Entry]:
  d = PCAVS_STYLE_DIM
  out = []
  for i in range(1, 9):  # mapping MLP (style.0 is the parameter-free PixelNorm)
    out += [Entry(f"style.{i}.weight", (d, d), "eqlinear"), Entry(f"style.{i}.bias", (d,), "bias")]
  (r0, c0), rest = PCAVS_CHANNELS[0], PCAVS_CHANNELS[1:]
  out.append(Entry("input.input", (1, c0, r0, r0), "const"))
  out += _styled("conv1", c0, c0, False) + _to_rgb("to_rgb1", c0, False)
  cin = c0
  for j, (_, cout) in enumerate(rest):
    out += _styled(f"convs.{2 * j}", cin, cout, True) + _styled(f"convs.{2 * j + 1}", cout, cout,
                                                                False)
    cin = cout
  out += [e for j, (_, c) in enumerate(rest) for e in _to_rgb(f"to_rgbs.{j}", c, True)]
  sizes = [r0] + [r for r, _ in rest for _ in range(2)]
  out += [Entry(f"noises.noise_{i}", (1, 1, s, s), "noise_buf") for i, s in enumerate(sizes)]
  return out


_TO_RGB_GAIN = 0.25  # pcavs_G ToRGB weights in random_state_dict

_BUILDERS = {"wav2lip": _wav2lip, "syncnet_color": _syncnet_color, "disc_qual": _disc_qual,
             "syncnet_v2": _syncnet_v2, "s3fd": _s3fd, "pcavs_G": _pcavs_g,
             "pcavs_V": _pcavs_v, "pcavs_E": _pcavs_e, "pcavs_A_sync": _pcavs_a_sync}
_CACHE: dict[str, list[Entry]] = {}


def official_entries(family: str) -> list[Entry]:
  """All official state_dict entries of `family` (incl. num_batches_tracked), in order."""
  if family not in _BUILDERS:
    raise ValueError(f"unknown family {family!r}; known: {', '.join(FAMILY_NAMES)}")
  if family not in _CACHE:
    _CACHE[family] = _BUILDERS[family]()
  return list(_CACHE[family])


def num_params(family: str) -> int:
  """Trainable parameter count (excludes buffers: BN running statistics, noise maps, FIR)."""
  return sum(int(np.prod(e.shape)) for e in official_entries(family)
             if e.kind not in BUFFER_KINDS)


def random_state_dict(family: str, seed: int = 0) -> dict[str, np.ndarray]:
  """A deterministic official-named state dict with random weights and non-trivial BN stats.

  Scales keep activations O(1) through the deep stacks (conv weights ~ N(0, 1/fan_in) times
  a gain, BN scale in [0.5, 1], running means ~ N(0, 0.1), running vars in [0.5, 2]) so that
  parity tests compare meaningful, unsaturated outputs.
  """
  rng = np.random.default_rng(seed)
  out = {}
  for e in official_entries(family):
    if e.kind in ("conv", "convT", "conv3d", "linear", "conv1d", "conv"):
      fan_in = int(np.prod(e.shape)) // (e.shape[1] if e.kind == "convT" else e.shape[0])
      std = np.sqrt(2.0 / fan_in) * _INPUT_GAIN.get(e.key, 1.0)
      out[e.key] = (rng.standard_normal(e.shape) * std).astype(np.float32)
    elif e.kind in ("bias", "bn_bias"):
      out[e.key] = (rng.standard_normal(e.shape) * 0.1).astype(np.float32)
    elif e.kind == "bn_scale":
      out[e.key] = rng.uniform(0.5, 1.0, e.shape).astype(np.float32)
    elif e.kind == "bn_mean":
      out[e.key] = (rng.standard_normal(e.shape) * 0.1).astype(np.float32)
    elif e.kind == "bn_var":
      out[e.key] = rng.uniform(0.5, 2.0, e.shape).astype(np.float32)
    elif e.kind == "l2norm":
      out[e.key] = (rng.uniform(0.5, 1.5, e.shape) * _L2NORM_INIT[e.key]).astype(np.float32)
    elif e.kind == "bn_count":
      out[e.key] = np.array(int(rng.integers(1, 100000)), np.int64)
    elif e.kind in ("eqlinear", "modconv", "const", "noise_buf"):
      # Equalized-lr weights are stored as N(0, 1) and scaled at run time; ToRGB's are reduced
      # so the summed RGB skips stay in tanh's unsaturated range.
      gain = _TO_RGB_GAIN if e.kind == "modconv" and e.shape[1] == 3 else 1.0
      out[e.key] = (rng.standard_normal(e.shape) * gain).astype(np.float32)
    elif e.kind == "mod_bias":  # official init 1: styles scatter around 1
      out[e.key] = (1.0 + rng.standard_normal(e.shape) * 0.1).astype(np.float32)
    elif e.kind == "act_bias":
      out[e.key] = (rng.standard_normal(e.shape) * 0.1).astype(np.float32)
    elif e.kind == "noise_strength":  # large enough that a wrong noise map shows
      out[e.key] = rng.uniform(0.1, 0.3, e.shape).astype(np.float32)
    elif e.kind == "fir":
      out[e.key] = pcavs_fir_kernel()
    else:
      raise AssertionError(e.kind)
  return out


def make_inputs(family: str, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
  """Deterministic PyTorch-layout (NCHW / NCDHW) inputs for `family`'s forward pass.

  Images are uint8-valued (then scaled as the official pipelines do) so they can be stored
  compactly and reproduced exactly. syncnet_v2 frames are 56x56 noise upsampled x4 to 224.

  Returns:
    wav2lip: audio (B,1,80,16) f32 in [-4,4], face (B,6,96,96) f32 in [0,1] (lower half of
      channels 0-2 zeroed, as the official inference does).
    syncnet_color: audio (B,1,80,16), face (B,15,48,96) in [0,1].
    disc_qual: face (B,3,2,96,96) in [0,1] (T = 2 frames; the model folds time-major).
    syncnet_v2: mfcc (B,1,13,20) f32, lips (B,3,5,224,224) raw 0..255 floats.
    s3fd: image (B,3,128,128) f32: uint8 RGB pixels minus (104, 117, 123), exactly what the
      official detector feeds its network (128 px: every head, stride 128 too, has cells).
    pcavs_G: style (B,2560) f32 = identity vector (2048, >= 0) + pose feature (512);
      identity (B,512,7,7) f32, the spatial identity map official inference feeds netG.
    pcavs_V: image (B,3,96,96) in [-1,1] (`pcavs_pixels`; 96 px keeps the test fast and makes
      the 7x7 adaptive pool non-trivial). pcavs_E: image (B,3,224,224) in [-1,1].
    pcavs_A_sync: mel (B,1,80,20) f32 in [0, 1] on a 1/256 grid (PC-AVS's clipped
      normalised log-mel window).
  """
  rng = np.random.default_rng(seed)

  def pixels(*shape):
    return rng.integers(0, 256, shape, dtype=np.uint8)

  def mel(*shape):
    # Quantized to 1/64 so the value survives any float storage exactly.
    return (np.round(rng.uniform(-4, 4, shape) * 64) / 64).astype(np.float32)

  if family == "wav2lip":
    face = pixels(batch, 6, 96, 96).astype(np.float32) / 255.0
    face[:, :3, 48:] = 0.0
    return {"audio": mel(batch, 1, 80, 16), "face": face}
  if family == "syncnet_color":
    return {"audio": mel(batch, 1, 80, 16),
            "face": pixels(batch, 15, 48, 96).astype(np.float32) / 255.0}
  if family == "disc_qual":
    return {"face": pixels(batch, 3, 2, 96, 96).astype(np.float32) / 255.0}
  if family == "syncnet_v2":
    small = pixels(batch, 3, 5, 56, 56)
    lips = small.repeat(4, axis=3).repeat(4, axis=4).astype(np.float32)
    mfcc = (np.round(rng.standard_normal((batch, 1, 13, 20)) * 10 * 64) / 64).astype(np.float32)
    return {"mfcc": mfcc, "lips": lips}
  if family == "s3fd":
    rgb = pixels(batch, 3, 128, 128).astype(np.float32)
    return {"image": rgb - np.array(S3FD_MEAN_RGB, np.float32).reshape(1, 3, 1, 1)}
  if family == "pcavs_G":
    # Identity vector: pooled post-ReLU ResNeXt features (>= 0); pose: mouth + head-pose
    # embeddings (any sign); identity map: a 1x1-conv output. Quantized like `mel`.
    ident = np.abs(rng.standard_normal((batch, PCAVS_STYLE_DIM - 512))) * 0.5
    pose = rng.standard_normal((batch, 512))
    style = np.round(np.concatenate([ident, pose], axis=1) * 64) / 64
    c0, r0 = PCAVS_CHANNELS[0][1], PCAVS_CHANNELS[0][0]
    identity = np.round(rng.standard_normal((batch, c0, r0, r0)) * 64) / 64
    return {"style": style.astype(np.float32), "identity": identity.astype(np.float32)}
  if family in ("pcavs_V", "pcavs_E"):
    side = PCAVS_V_SIZE if family == "pcavs_V" else 224
    return {"image": pcavs_pixels(pixels(batch, 3, side, side))}
  if family == "pcavs_A_sync":
    return {"mel": (rng.integers(0, 257, (batch, 1, 80, 20)) / 256.0).astype(np.float32)}
  raise ValueError(f"unknown family {family!r}")


def pcavs_pixels(u8: np.ndarray) -> np.ndarray:
  """PC-AVS input normalisation: uint8 RGB -> x / 255 * 2 - 1 in [-1, 1], float32.

  The official loader divides in float64, casts to float32, then scales: same order here.
  """
  return (u8 / 255.0).astype(np.float32) * np.float32(2) - np.float32(1)
