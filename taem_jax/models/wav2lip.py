"""Wav2Lip generator and visual-quality discriminator (Flax NNX, NHWC, BGR in [0, 1]).

Attribute tree = the official PyTorch module tree, so a torch key maps mechanically:

  torch `face_encoder_blocks.{b}.{l}.conv_block.0.{weight,bias}`
      -> `face_encoder_blocks[b][l].conv.{kernel,bias}`            (HWIO, see layers.py)
  torch `face_encoder_blocks.{b}.{l}.conv_block.1.{weight,bias,running_mean,running_var}`
      -> `face_encoder_blocks[b][l].bn.{scale,bias,mean,var}`
  torch `audio_encoder.{i}.conv_block.{0,1}.*`        -> `audio_encoder[i].{conv,bn}.*`
  torch `face_decoder_blocks.{b}.{l}.conv_block.*`    -> `face_decoder_blocks[b][l].{conv,bn}.*`
      (layer 0 of decoder blocks 1..6 is a `ConvTranspose2dBN`: its `.conv.kernel` is
       torch weight (in, out, kh, kw).permute(2, 3, 0, 1), un-flipped)
  torch `output_block.0.conv_block.*`                 -> `output_block[0].{conv,bn}.*`
  torch `output_block.1.{weight,bias}`                -> `output_block[1].{kernel,bias}`

  Discriminator: torch `face_encoder_blocks.{b}.{l}.conv_block.0.*`
      -> `face_encoder_blocks[b][l].conv.*`; torch `binary_pred.0.*` -> `binary_pred[0].*`.

In `nnx.state(model)` / `nnx.to_pure_dict` the list indices appear as int keys, e.g.
('face_encoder_blocks', 0, 0, 'conv', 'kernel').
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from taem_jax.models import layers
from taem_jax.models.layers import Conv2dBN, Conv2dLeaky, ConvTranspose2dBN, scaled

# (cout, kernel, stride, padding, residual) per layer, per block; channels before `width`.
FACE_ENCODER = (
    ((16, 7, 1, 3, False),),
    ((32, 3, 2, 1, False), (32, 3, 1, 1, True), (32, 3, 1, 1, True)),
    ((64, 3, 2, 1, False), (64, 3, 1, 1, True), (64, 3, 1, 1, True), (64, 3, 1, 1, True)),
    ((128, 3, 2, 1, False), (128, 3, 1, 1, True), (128, 3, 1, 1, True)),
    ((256, 3, 2, 1, False), (256, 3, 1, 1, True), (256, 3, 1, 1, True)),
    ((512, 3, 2, 1, False), (512, 3, 1, 1, True)),
    ((512, 3, 1, 0, False), (512, 1, 1, 0, False)),
)

# Audio input is (B, 80 mel bins = H, 16 frames = W, 1); strides are (H, W).
AUDIO_ENCODER = (
    (32, 3, (1, 1), 1, False), (32, 3, (1, 1), 1, True), (32, 3, (1, 1), 1, True),
    (64, 3, (3, 1), 1, False), (64, 3, (1, 1), 1, True), (64, 3, (1, 1), 1, True),
    (128, 3, (3, 3), 1, False), (128, 3, (1, 1), 1, True), (128, 3, (1, 1), 1, True),
    (256, 3, (3, 2), 1, False), (256, 3, (1, 1), 1, True),
    (512, 3, (1, 1), 0, False), (512, 1, (1, 1), 0, False),
)

# Decoder: per block, ('c', cout, k, s, p, residual) or ('t', cout, k, s, p, output_padding).
FACE_DECODER = (
    (("c", 512, 1, 1, 0, False),),
    (("t", 512, 3, 1, 0, 0), ("c", 512, 3, 1, 1, True)),
    (("t", 512, 3, 2, 1, 1), ("c", 512, 3, 1, 1, True), ("c", 512, 3, 1, 1, True)),
    (("t", 384, 3, 2, 1, 1), ("c", 384, 3, 1, 1, True), ("c", 384, 3, 1, 1, True)),
    (("t", 256, 3, 2, 1, 1), ("c", 256, 3, 1, 1, True), ("c", 256, 3, 1, 1, True)),
    (("t", 128, 3, 2, 1, 1), ("c", 128, 3, 1, 1, True), ("c", 128, 3, 1, 1, True)),
    (("t", 64, 3, 2, 1, 1), ("c", 64, 3, 1, 1, True), ("c", 64, 3, 1, 1, True)),
)

OUTPUT_HIDDEN = 32


class Wav2Lip(nnx.Module):
  """The Wav2Lip generator (official architecture at width 1.0: 36,298,035 params).

  Config (JSON-storable keyword arguments):
    width: channel multiplier for a reduced/enlarged variant (1.0 = official).
    convt_impl: 'subpixel' | 'direct', how the stride-2 transposed convs run (same numbers to
      ~1e-6, different speed; see layers.ConvTranspose2d).
    min_channels: no layer narrower than this (1 = plain `width` scaling). A narrow variant
      otherwise squeezes the full-resolution layers to 2-4 channels (width 1/8), too few to
      carry the unmasked upper face through to the output; a floor of 16 keeps them at the
      official 16-32 while the deep layers stay narrow. No effect at width 1.0 for floors <= 16.

  Each (mel window, face) pair is processed independently; callers fold any time axis into the
  batch (time-major, row t*B + b, as the official training code does).

  Shapes:
    mel: (B, 80, 16, 1) normalised log-mel window (H = mel bins, W = 16 mel frames), [-4, 4].
    faces: (B, 96, 96, 6) BGR in [0, 1]; channels 0-2 = target with rows 48..95 zeroed,
      channels 3-5 = reference frame.
    returns (B, 96, 96, 3) BGR in [0, 1].
  """

  family = "wav2lip"

  def __init__(self, *, width: float = 1.0, convt_impl: str = "subpixel", min_channels: int = 1,
               rngs: nnx.Rngs):
    self.width = float(width)
    self.convt_impl = convt_impl
    self.min_channels = int(min_channels)
    w = lambda c: max(scaled(c, self.width), self.min_channels)  # noqa: E731

    cin = 6
    blocks, skip_channels = [], []
    for block in FACE_ENCODER:
      layer_list = []
      for cout, k, s, p, res in block:
        layer_list.append(Conv2dBN(cin, w(cout), k, s, p, res, rngs=rngs))
        cin = w(cout)
      blocks.append(nnx.List(layer_list))
      skip_channels.append(cin)
    self.face_encoder_blocks = nnx.List(blocks)

    cin, audio = 1, []
    for cout, k, s, p, res in AUDIO_ENCODER:
      audio.append(Conv2dBN(cin, w(cout), k, s, p, res, rngs=rngs))
      cin = w(cout)
    self.audio_encoder = nnx.List(audio)
    self.embed_dim = cin

    blocks = []
    for i, block in enumerate(FACE_DECODER):
      layer_list = []
      for kind, cout, k, s, p, extra in block:
        if kind == "t":
          layer_list.append(ConvTranspose2dBN(cin, w(cout), k, s, p, extra, impl=convt_impl,
                                              rngs=rngs))
        else:
          layer_list.append(Conv2dBN(cin, w(cout), k, s, p, extra, rngs=rngs))
        cin = w(cout)
      blocks.append(nnx.List(layer_list))
      cin += skip_channels[len(FACE_DECODER) - 1 - i]  # decoder output first, then the skip
    self.face_decoder_blocks = nnx.List(blocks)

    self.output_block = nnx.List([
        Conv2dBN(cin, w(OUTPUT_HIDDEN), 3, 1, 1, rngs=rngs),
        layers.conv(w(OUTPUT_HIDDEN), 3, 1, 1, 0, rngs=rngs),
    ])

  def get_config(self) -> dict:
    cfg = {"width": self.width, "convt_impl": self.convt_impl}
    if self.min_channels > 1:  # older files and the official network have no floor
      cfg["min_channels"] = self.min_channels
    return cfg

  def encode_audio(self, mel: jax.Array) -> jax.Array:
    """Audio embedding z_a.

    Shapes:
      mel: (B, 80, 16, 1) -> (B, 512 * width), non-negative (ends in ReLU).
    """
    x = mel
    for layer in self.audio_encoder:
      x = layer(x)
    return x.reshape(x.shape[0], -1)

  def decode(self, z_a: jax.Array, faces: jax.Array) -> jax.Array:
    """Face encoder + decoder driven by a given audio embedding (the TAEM hook).

    Shapes:
      z_a: (B, 512 * width); faces: (B, 96, 96, 6) BGR [0, 1] -> (B, 96, 96, 3) BGR [0, 1].
    """
    feats = []
    x = faces
    for block in self.face_encoder_blocks:
      for layer in block:
        x = layer(x)
      feats.append(x)

    x = z_a.reshape(z_a.shape[0], 1, 1, -1)
    for block in self.face_decoder_blocks:
      for layer in block:
        x = layer(x)
      x = jnp.concatenate([x, feats.pop()], axis=-1)

    x = self.output_block[0](x)
    return jax.nn.sigmoid(self.output_block[1](x))

  def __call__(self, mel: jax.Array, faces: jax.Array) -> jax.Array:
    return self.decode(self.encode_audio(mel), faces)


# (cout, kernel, stride (H, W), padding) per layer, per block.
DISC_ENCODER = (
    ((32, 7, 1, 3),),
    ((64, 5, (1, 2), 2), (64, 5, 1, 2)),
    ((128, 5, 2, 2), (128, 5, 1, 2)),
    ((256, 5, 2, 2), (256, 5, 1, 2)),
    ((512, 3, 2, 1), (512, 3, 1, 1)),
    ((512, 3, 2, 1), (512, 3, 1, 1)),
    ((512, 3, 1, 0), (512, 1, 1, 0)),
)


class Wav2LipDiscQual(nnx.Module):
  """Wav2Lip's visual-quality discriminator (official at width 1.0: 14,113,793 params).

  The lower half (rows 48..95) of each face is taken inside, as the official model does; all
  convs are conv + LeakyReLU(0.01) (no BN), the head is a 1x1 conv + sigmoid. Trained from
  scratch, its convs start from He init (`layers.leaky_kernel_init`), not PyTorch's default:
  at that one the output does not depend on the input, and the GAN does nothing.

  Shapes:
    faces: (N, 96, 96, 3) BGR in [0, 1] -> (N, 1) probability of "real".
  """

  family = "disc_qual"

  def __init__(self, *, width: float = 1.0, rngs: nnx.Rngs):
    self.width = float(width)
    cin, blocks = 3, []
    for block in DISC_ENCODER:
      layer_list = []
      for cout, k, s, p in block:
        layer_list.append(Conv2dLeaky(cin, scaled(cout, self.width), k, s, p,
                                      kernel_init=layers.leaky_kernel_init, rngs=rngs))
        cin = scaled(cout, self.width)
      blocks.append(nnx.List(layer_list))
    self.face_encoder_blocks = nnx.List(blocks)
    self.binary_pred = nnx.List([layers.conv(cin, 1, 1, 1, 0, rngs=rngs)])

  def get_config(self) -> dict:
    return {"width": self.width}

  def __call__(self, faces: jax.Array) -> jax.Array:
    x = faces[:, faces.shape[1] // 2:]
    for block in self.face_encoder_blocks:
      for layer in block:
        x = layer(x)
    x = jax.nn.sigmoid(self.binary_pred[0](x))
    return x.reshape(x.shape[0], -1)
