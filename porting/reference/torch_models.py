"""PyTorch reference models for the Wav2Lip family, written from the official architectures' layer tables.

Runs only under `.venv-torch` (Python 3.11 + torch CPU). The module trees reproduce the
official state_dict key names exactly (`face_encoder_blocks.1.2.conv_block.0.weight`,
`netcnnaud.18.bias`, ...) so that checkpoints written from these models have the same
structure as the released files. Layouts are PyTorch's: NCHW images, NCDHW clips.

Models:
  * `Wav2Lip`: generator, forward(audio (B,1,80,16) | (B,T,1,80,16),
    face (B,6,96,96) | (B,6,T,96,96)).
  * `SyncNetColor`: lip-sync expert, forward(audio (B,1,80,16), face (B,15,48,96)) -> two (B,512).
  * `Wav2LipDiscQual`: visual-quality discriminator, forward(face (B,3,T,96,96)) -> (T*B, 1).
  * `SyncNetV2`: joonson's `S`, forward_aud((B,1,13,20)) / forward_lip((B,3,5,224,224)) -> (B,1024).
  * `S3FD`: Wav2Lip's face detector network, forward(image (B,3,H,W), RGB minus the means) ->
    [cls, reg] * 6 raw heads (cls (B,2,h,w) logits after max-out, reg (B,4,h,w)).
"""
import torch
from torch import nn
from torch.nn import functional as F

from porting.reference.torch_pcavs_audio import PCAVSAudioSync


class ConvBN(nn.Module):
  """Conv2d + BatchNorm2d (+ optional residual before the ReLU); keys `conv_block.{0,1}.*`."""

  def __init__(self, cin, cout, kernel_size, stride, padding, residual=False):
    super().__init__()
    self.conv_block = nn.Sequential(
        nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
    self.act = nn.ReLU()
    self.residual = residual

  def forward(self, x):
    y = self.conv_block(x)
    if self.residual:
      y = y + x
    return self.act(y)


class ConvTransposeBN(nn.Module):
  """ConvTranspose2d + BatchNorm2d + ReLU; weight layout (cin, cout, kh, kw)."""

  def __init__(self, cin, cout, kernel_size, stride, padding, output_padding=0):
    super().__init__()
    self.conv_block = nn.Sequential(
        nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
        nn.BatchNorm2d(cout))
    self.act = nn.ReLU()

  def forward(self, x):
    return self.act(self.conv_block(x))


class ConvLeaky(nn.Module):
  """Conv2d + LeakyReLU(0.01), no normalization (the quality discriminator's layer)."""

  def __init__(self, cin, cout, kernel_size, stride, padding):
    super().__init__()
    self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
    self.act = nn.LeakyReLU(0.01)

  def forward(self, x):
    return self.act(self.conv_block(x))


def _seq(*layers):
  return nn.Sequential(*layers)


class Wav2Lip(nn.Module):
  """The Wav2Lip generator."""

  def __init__(self):
    super().__init__()
    c = ConvBN
    self.face_encoder_blocks = nn.ModuleList([
        _seq(c(6, 16, 7, 1, 3)),
        _seq(c(16, 32, 3, 2, 1), c(32, 32, 3, 1, 1, True), c(32, 32, 3, 1, 1, True)),
        _seq(c(32, 64, 3, 2, 1), c(64, 64, 3, 1, 1, True), c(64, 64, 3, 1, 1, True),
             c(64, 64, 3, 1, 1, True)),
        _seq(c(64, 128, 3, 2, 1), c(128, 128, 3, 1, 1, True), c(128, 128, 3, 1, 1, True)),
        _seq(c(128, 256, 3, 2, 1), c(256, 256, 3, 1, 1, True), c(256, 256, 3, 1, 1, True)),
        _seq(c(256, 512, 3, 2, 1), c(512, 512, 3, 1, 1, True)),
        _seq(c(512, 512, 3, 1, 0), c(512, 512, 1, 1, 0)),
    ])
    self.audio_encoder = _seq(
        c(1, 32, 3, 1, 1), c(32, 32, 3, 1, 1, True), c(32, 32, 3, 1, 1, True),
        c(32, 64, 3, (3, 1), 1), c(64, 64, 3, 1, 1, True), c(64, 64, 3, 1, 1, True),
        c(64, 128, 3, 3, 1), c(128, 128, 3, 1, 1, True), c(128, 128, 3, 1, 1, True),
        c(128, 256, 3, (3, 2), 1), c(256, 256, 3, 1, 1, True),
        c(256, 512, 3, 1, 0), c(512, 512, 1, 1, 0))
    t = ConvTransposeBN
    self.face_decoder_blocks = nn.ModuleList([
        _seq(c(512, 512, 1, 1, 0)),
        _seq(t(1024, 512, 3, 1, 0), c(512, 512, 3, 1, 1, True)),
        _seq(t(1024, 512, 3, 2, 1, 1), c(512, 512, 3, 1, 1, True), c(512, 512, 3, 1, 1, True)),
        _seq(t(768, 384, 3, 2, 1, 1), c(384, 384, 3, 1, 1, True), c(384, 384, 3, 1, 1, True)),
        _seq(t(512, 256, 3, 2, 1, 1), c(256, 256, 3, 1, 1, True), c(256, 256, 3, 1, 1, True)),
        _seq(t(320, 128, 3, 2, 1, 1), c(128, 128, 3, 1, 1, True), c(128, 128, 3, 1, 1, True)),
        _seq(t(160, 64, 3, 2, 1, 1), c(64, 64, 3, 1, 1, True), c(64, 64, 3, 1, 1, True)),
    ])
    self.output_block = _seq(c(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

  def forward(self, audio_sequences, face_sequences):
    batch = audio_sequences.size(0)
    folded = face_sequences.dim() > 4
    if folded:
      # Time-major fold: row t*B + b.
      audio_sequences = torch.cat(
          [audio_sequences[:, i] for i in range(audio_sequences.size(1))], dim=0)
      face_sequences = torch.cat(
          [face_sequences[:, :, i] for i in range(face_sequences.size(2))], dim=0)
    x = self.audio_encoder(audio_sequences)
    feats = []
    h = face_sequences
    for block in self.face_encoder_blocks:
      h = block(h)
      feats.append(h)
    for block in self.face_decoder_blocks:
      x = block(x)
      x = torch.cat((x, feats.pop()), dim=1)
    x = self.output_block(x)
    if folded:
      x = torch.stack(torch.split(x, batch, dim=0), dim=2)
    return x


class SyncNetColor(nn.Module):
  """The lip-sync expert `SyncNet_color`."""

  def __init__(self):
    super().__init__()
    c = ConvBN
    self.face_encoder = _seq(
        c(15, 32, 7, 1, 3), c(32, 64, 5, (1, 2), 1), c(64, 64, 3, 1, 1, True),
        c(64, 64, 3, 1, 1, True),
        c(64, 128, 3, 2, 1), c(128, 128, 3, 1, 1, True), c(128, 128, 3, 1, 1, True),
        c(128, 128, 3, 1, 1, True),
        c(128, 256, 3, 2, 1), c(256, 256, 3, 1, 1, True), c(256, 256, 3, 1, 1, True),
        c(256, 512, 3, 2, 1), c(512, 512, 3, 1, 1, True), c(512, 512, 3, 1, 1, True),
        c(512, 512, 3, 2, 1), c(512, 512, 3, 1, 0), c(512, 512, 1, 1, 0))
    self.audio_encoder = _seq(
        c(1, 32, 3, 1, 1), c(32, 32, 3, 1, 1, True), c(32, 32, 3, 1, 1, True),
        c(32, 64, 3, (3, 1), 1), c(64, 64, 3, 1, 1, True), c(64, 64, 3, 1, 1, True),
        c(64, 128, 3, 3, 1), c(128, 128, 3, 1, 1, True), c(128, 128, 3, 1, 1, True),
        c(128, 256, 3, (3, 2), 1), c(256, 256, 3, 1, 1, True), c(256, 256, 3, 1, 1, True),
        c(256, 512, 3, 1, 0), c(512, 512, 1, 1, 0))

  def forward(self, audio_sequences, face_sequences):
    face = self.face_encoder(face_sequences).reshape(face_sequences.size(0), -1)
    audio = self.audio_encoder(audio_sequences).reshape(audio_sequences.size(0), -1)
    return F.normalize(audio, p=2.0, dim=1), F.normalize(face, p=2.0, dim=1)


class Wav2LipDiscQual(nn.Module):
  """The visual-quality discriminator `Wav2Lip_disc_qual`."""

  def __init__(self):
    super().__init__()
    l = ConvLeaky
    self.face_encoder_blocks = nn.ModuleList([
        _seq(l(3, 32, 7, 1, 3)),
        _seq(l(32, 64, 5, (1, 2), 2), l(64, 64, 5, 1, 2)),
        _seq(l(64, 128, 5, 2, 2), l(128, 128, 5, 1, 2)),
        _seq(l(128, 256, 5, 2, 2), l(256, 256, 5, 1, 2)),
        _seq(l(256, 512, 3, 2, 1), l(512, 512, 3, 1, 1)),
        _seq(l(512, 512, 3, 2, 1), l(512, 512, 3, 1, 1)),
        _seq(l(512, 512, 3, 1, 0), l(512, 512, 1, 1, 0)),
    ])
    self.binary_pred = _seq(nn.Conv2d(512, 1, 1, 1, 0), nn.Sigmoid())

  def forward(self, face_sequences):
    x = torch.cat([face_sequences[:, :, i] for i in range(face_sequences.size(2))], dim=0)
    x = x[:, :, x.size(2) // 2:]
    for block in self.face_encoder_blocks:
      x = block(x)
    return self.binary_pred(x).reshape(x.size(0), -1)


def _conv_bn_relu(cin, cout, k, s=1, p=0):
  return [nn.Conv2d(cin, cout, k, s, p), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _conv3_bn_relu(cin, cout, k, s=1, p=0):
  return [nn.Conv3d(cin, cout, k, s, p), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)]


class SyncNetV2(nn.Module):
  """joonson/syncnet_python's `S(num_layers_in_fc_layers=1024)`."""

  def __init__(self, embed_dim=1024):
    super().__init__()
    self.netcnnaud = nn.Sequential(
        *_conv_bn_relu(1, 64, 3, 1, 1), nn.MaxPool2d(1, 1),
        *_conv_bn_relu(64, 192, 3, 1, 1), nn.MaxPool2d(3, (1, 2)),
        *_conv_bn_relu(192, 384, 3, 1, 1),
        *_conv_bn_relu(384, 256, 3, 1, 1),
        *_conv_bn_relu(256, 256, 3, 1, 1), nn.MaxPool2d(3, 2),
        *_conv_bn_relu(256, 512, (5, 4), 1, 0))
    self.netfcaud = nn.Sequential(
        nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim))
    self.netcnnlip = nn.Sequential(
        *_conv3_bn_relu(3, 96, (5, 7, 7), (1, 2, 2), 0),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        *_conv3_bn_relu(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        *_conv3_bn_relu(256, 256, (1, 3, 3), 1, (0, 1, 1)),
        *_conv3_bn_relu(256, 256, (1, 3, 3), 1, (0, 1, 1)),
        *_conv3_bn_relu(256, 256, (1, 3, 3), 1, (0, 1, 1)),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
        *_conv3_bn_relu(256, 512, (1, 6, 6), 1, 0))
    self.netfclip = nn.Sequential(
        nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, embed_dim))

  def forward_aud(self, x):
    h = self.netcnnaud(x)
    return self.netfcaud(h.reshape(h.size(0), -1))

  def forward_lip(self, x):
    h = self.netcnnlip(x)
    return self.netfclip(h.reshape(h.size(0), -1))

  def forward_lipfeat(self, x):
    h = self.netcnnlip(x)
    return h.reshape(h.size(0), -1)

  def forward(self, audio, lips):
    return self.forward_aud(audio), self.forward_lip(lips)


class ChannelL2Norm(nn.Module):
  """Normalises each pixel's channel vector to unit length (+1e-10), times `weight` (C,)."""

  def __init__(self, channels, init):
    super().__init__()
    self.weight = nn.Parameter(torch.full((channels,), float(init)))

  def forward(self, x):
    length = torch.sqrt((x * x).sum(dim=1, keepdim=True)) + 1e-10
    return x / length * self.weight[None, :, None, None]


# name, cin, cout, kernel, stride, padding; a 2x2 pool follows the names in _S3FD_POOLED.
_S3FD_LAYERS = [
    ("conv1_1", 3, 64, 3, 1, 1), ("conv1_2", 64, 64, 3, 1, 1), ("conv2_1", 64, 128, 3, 1, 1),
    ("conv2_2", 128, 128, 3, 1, 1), ("conv3_1", 128, 256, 3, 1, 1),
    ("conv3_2", 256, 256, 3, 1, 1), ("conv3_3", 256, 256, 3, 1, 1),
    ("conv4_1", 256, 512, 3, 1, 1), ("conv4_2", 512, 512, 3, 1, 1),
    ("conv4_3", 512, 512, 3, 1, 1), ("conv5_1", 512, 512, 3, 1, 1),
    ("conv5_2", 512, 512, 3, 1, 1), ("conv5_3", 512, 512, 3, 1, 1),
    ("fc6", 512, 1024, 3, 1, 3), ("fc7", 1024, 1024, 1, 1, 0), ("conv6_1", 1024, 256, 1, 1, 0),
    ("conv6_2", 256, 512, 3, 2, 1), ("conv7_1", 512, 128, 1, 1, 0),
    ("conv7_2", 128, 256, 3, 2, 1)]
_S3FD_POOLED = {"conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3"}
_S3FD_SOURCES = [("conv3_3_norm", 256, 4), ("conv4_3_norm", 512, 2), ("conv5_3_norm", 512, 2),
                 ("fc7", 1024, 2), ("conv6_2", 512, 2), ("conv7_2", 256, 2)]


class S3FD(nn.Module):
  """The S3FD face detector network (official module names, registration order)."""

  def __init__(self):
    super().__init__()
    for name, cin, cout, k, s, p in _S3FD_LAYERS:
      self.add_module(name, nn.Conv2d(cin, cout, k, s, p))
    for level, c, init in ((3, 256, 10), (4, 512, 8), (5, 512, 5)):
      self.add_module(f"conv{level}_3_norm", ChannelL2Norm(c, init))
    for src, c, ncls in _S3FD_SOURCES:
      self.add_module(f"{src}_mbox_conf", nn.Conv2d(c, ncls, 3, 1, 1))
      self.add_module(f"{src}_mbox_loc", nn.Conv2d(c, 4, 3, 1, 1))

  def forward(self, x):
    feats = {}
    for name, *_ in _S3FD_LAYERS:
      x = F.relu(getattr(self, name)(x))
      feats[name] = x
      if name in _S3FD_POOLED:
        x = F.max_pool2d(x, 2, 2)
    for level in (3, 4, 5):
      feats[f"conv{level}_3_norm"] = getattr(self, f"conv{level}_3_norm")(
          feats[f"conv{level}_3"])
    out = []
    for src, _, ncls in _S3FD_SOURCES:
      cls = getattr(self, f"{src}_mbox_conf")(feats[src])
      if ncls == 4:
        background = cls[:, :3].max(dim=1, keepdim=True).values
        cls = torch.cat([background, cls[:, 3:]], dim=1)
      out += [cls, getattr(self, f"{src}_mbox_loc")(feats[src])]
    return out


MODELS = {
    "wav2lip": Wav2Lip,
    "syncnet_color": SyncNetColor,
    "disc_qual": Wav2LipDiscQual,
    "syncnet_v2": SyncNetV2,
    "s3fd": S3FD,
    "pcavs_A_sync": PCAVSAudioSync,
}
