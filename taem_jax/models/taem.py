"""TAEM: the text encoder that speaks the language of a frozen audio encoder.

TAEM (Choi et al., ICASSP 2024, arXiv 2306.16003) maps phonemes plus a speaker embedding to one
latent vector per video frame, z_t, trained to match the latent z_a that a pre-trained
audio-driven model (Wav2Lip) computes from speech. The layout follows FastSpeech 2 with the
hidden size scaled to 512:

  phonemes -> embedding + speaker projection + positions -> phoneme encoder (FFT blocks)
           -> duration predictor (on a stop-gradient copy) -> length regulator (100 fps mel rate)
           -> positions -> speech refiner (FFT blocks) -> subsampler (2 strided convs, x1/4)
           -> z_t at the video rate (25 fps).

Every sequence is (B, T, C). Padded batches carry boolean masks; padded steps are zeroed before
and after every convolution and masked out of attention, so an utterance's outputs do not depend
on what it is batched with (see tests/test_taem.py).
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from taem_jax.rates import DUR_FRAMES_PER_VIDEO_FRAME
from taem_jax.text.phonemes import PAUSES

Array = jax.Array

# Upper bound on one predicted phoneme duration at inference (mel frames = 2 s): the model's
# predicted-duration path and text synthesis (`Options.max_phoneme_frames`) share it.
MAX_PHONEME_FRAMES = 200


@dataclasses.dataclass(frozen=True)
class TAEMConfig:
  """TAEM hyper-parameters. Defaults: FastSpeech 2 (ming024 values) with hidden 256 -> 512.

  FastSpeech 2 uses hidden 256, 2 heads, FFT conv filter 1024 with kernels (9, 1), dropout 0.2,
  variance-predictor filter 256 / kernel 3 / dropout 0.5, and log(d + 1) duration targets. The
  paper fixes hidden 512 and 4 + 4 FFT blocks; the filter width stays at FastSpeech 2's 1024
  (not scaled x2, to keep the model at ~50 M parameters) and the duration-predictor filter
  follows the hidden size as it does in FastSpeech 2.
  """

  vocab_size: int = 128  # phoneme ids incl. <pad>/<unk>/sil/sp: use from_vocab(PhonemeVocab)
  pause_ids: tuple[int, ...] = ()  # token ids (silence/pause) allowed 0 frames at inference
  hidden: int = 512  # model width everywhere inside TAEM (paper: 512)
  latent_dim: int = 512  # output z_t width = the target encoder's latent_dim (Wav2Lip: 512)
  speaker_dim: int = 512  # speaker-embedding input width: 512 ArcFace, 128 dlib descriptor
  encoder_layers: int = 4  # FFT blocks in the phoneme encoder g (paper: 4)
  refiner_layers: int = 4  # FFT blocks in the speech refiner h (paper: 4)
  heads: int = 2  # attention heads per FFT block (FastSpeech 2: 2)
  ffn_filter: int = 1024  # FFT feed-forward conv width (FastSpeech 2: 1024)
  ffn_kernels: tuple[int, int] = (9, 1)  # kernels of the two FFT feed-forward convs (FS2: 9, 1)
  dropout: float = 0.2  # dropout in FFT blocks, on attention and feed-forward outputs (FS2: 0.2)
  dp_filter: int = 512  # duration-predictor conv width (FS2: = hidden)
  dp_kernel: int = 3  # duration-predictor conv kernel (FS2: 3)
  dp_dropout: float = 0.5  # duration-predictor dropout (FS2: 0.5)
  log_duration: bool = True  # predict log(d + 1) (FS2) instead of d in mel frames
  min_duration: int = 1  # inference: fewest mel frames for a non-pause phoneme (0 disables)
  subsample_kernel: int = 4  # subsampler conv kernel; with stride 2 and padding 1 -> L/2 exactly
  dtype: str = "float32"  # activation dtype (params stay float32)

  def __post_init__(self):
    if self.hidden % self.heads:
      raise ValueError(f"hidden={self.hidden} is not divisible by heads={self.heads}")
    if self.subsample_kernel not in (3, 4):
      # Other kernels break l_v = l_a / 4 with padding (1, 1).
      raise ValueError(f"subsample_kernel must be 3 or 4, got {self.subsample_kernel}")

  @classmethod
  def from_vocab(cls, vocab, **overrides) -> TAEMConfig:
    """Config whose vocab_size and pause_ids (sil, sp) come from a `text.PhonemeVocab`."""
    kw = dict(vocab_size=len(vocab),
              pause_ids=tuple(vocab.encode([p])[0] for p in PAUSES if p in vocab))
    kw.update(overrides)
    return cls(**kw)

  @classmethod
  def from_dict(cls, d: dict) -> TAEMConfig:
    """Inverse of `dataclasses.asdict` after a JSON round trip (lists back to tuples)."""
    kw = dict(d)
    for k in ("ffn_kernels", "pause_ids"):
      if k in kw:
        kw[k] = tuple(int(v) for v in kw[k])
    return cls(**kw)

  @classmethod
  def tiny(cls, **overrides) -> TAEMConfig:
    """A few-thousand-parameter variant for tests and smoke runs."""
    kw = dict(vocab_size=32, hidden=32, latent_dim=16, speaker_dim=8, encoder_layers=1,
              refiner_layers=1, heads=2, ffn_filter=64, ffn_kernels=(3, 1), dp_filter=32)
    kw.update(overrides)
    return cls(**kw)


# ----------------------------------------------------------------------------------------------
# Helpers (pure functions).


def sinusoid_positions(length: int, dim: int) -> Array:
  """Transformer sinusoidal positions (sin on even, cos on odd channels).

  Shapes: -> (length, dim), float32.
  """
  pos = jnp.arange(length, dtype=jnp.float32)[:, None]
  i = jnp.arange(dim // 2, dtype=jnp.float32)[None, :]
  angle = pos / jnp.power(10000.0, 2.0 * i / dim)
  out = jnp.zeros((length, dim), jnp.float32)
  out = out.at[:, 0::2].set(jnp.sin(angle))
  return out.at[:, 1::2].set(jnp.cos(angle[:, : dim - dim // 2]))


def length_regulate(x: Array, durations: Array, max_len: int) -> tuple[Array, Array]:
  """Repeats phoneme vector i `durations[i]` times along time (the length regulator).

  Implemented as a gather: frame j takes phoneme searchsorted(cumsum(d), j, 'right'), so it
  is jit-friendly for a static `max_len`. Phonemes with 0 frames are skipped; frames past
  sum(d) are zero and masked; frames past `max_len` are dropped.

  Example: d = [2, 0, 3], max_len 6 -> [x0, x0, x2, x2, x2, 0], mask [1, 1, 1, 1, 1, 0].

  Shapes:
    x: (B, l_t, C); durations: (B, l_t) int, >= 0, 0 at padded phonemes.
    returns: (B, max_len, C) and the frame mask (B, max_len) bool.
  """
  l_t = x.shape[1]
  cum = jnp.cumsum(durations.astype(jnp.int32), axis=1)  # (B, l_t)
  frames = jnp.arange(max_len, dtype=jnp.int32)
  idx = jax.vmap(lambda c: jnp.searchsorted(c, frames, side="right"))(cum)  # (B, max_len)
  mask = frames[None, :] < cum[:, -1:]
  idx = jnp.minimum(idx, l_t - 1)
  out = jnp.take_along_axis(x, idx[..., None], axis=1)
  return out * mask[..., None].astype(out.dtype), mask


def fit_durations(weights: Array, total: Array, valid: Array, minimum: Array) -> Array:
  """Integer durations proportional to `weights` that sum exactly to `total`.

  Each phoneme first gets its `minimum` (dropped for the whole utterance if the minima alone
  exceed `total`); the remaining frames are shared in proportion to max(weights - minimum, 0)
  by cumulative rounding: boundary_i = round(total_rest * cumsum(w)_i / sum(w)). Boundaries are
  non-decreasing and the last one is exactly total_rest, so every duration is >= minimum, each
  is within one frame of its proportional share, and the sum is exact. Integer weights that
  already sum to `total` come back unchanged. If all weights are zero, frames are shared
  equally among valid phonemes.

  Shapes:
    weights: (B, l_t) float >= 0; total: (B,) int; valid: (B, l_t) bool; minimum: (B, l_t) int.
    returns: (B, l_t) int32, zero at invalid phonemes.
  """
  weights = jnp.where(valid, jnp.maximum(weights.astype(jnp.float32), 0.0), 0.0)
  minimum = jnp.where(valid, minimum, 0).astype(jnp.int32)
  total = total.astype(jnp.int32)
  use_min = jnp.sum(minimum, axis=1) <= total  # (B,)
  minimum = jnp.where(use_min[:, None], minimum, 0)
  rest = total - jnp.sum(minimum, axis=1)  # (B,) >= 0
  w = jnp.maximum(weights - minimum.astype(jnp.float32), 0.0)
  all_zero = jnp.sum(w, axis=1, keepdims=True) <= 0.0
  w = jnp.where(all_zero, valid.astype(jnp.float32), w)
  cum = jnp.cumsum(w, axis=1)
  denom = jnp.maximum(cum[:, -1:], 1e-30)  # all-invalid rows: everything stays 0
  bounds = jnp.round(cum / denom * rest[:, None].astype(jnp.float32)).astype(jnp.int32)
  share = jnp.diff(bounds, axis=1, prepend=jnp.zeros_like(bounds[:, :1]))
  return jnp.where(valid, minimum + share, 0).astype(jnp.int32)


def predicted_durations(dur_pred, phonemes, valid, config: TAEMConfig, *,
                        cap: float = MAX_PHONEME_FRAMES, fallback: int | None = None, xp=jnp):
  """The duration predictor's output as mel frames: the one rounding rule of TAEM inference.

  weights = the prediction in frames (expm1 of log(d + 1) if `config.log_duration`), clipped
  to [0, cap] (so an untrained predictor cannot overflow to inf), 0 at padding; rounded =
  round(weights), at least `config.min_duration` for non-pause phonemes (`minimum`). With
  `fallback`, a row whose rounded durations are all 0 gets `fallback` frames per phoneme
  (text synthesis must give frames; the model's own forward pass keeps the empty output).

  `xp` is the array module: jnp inside the model (jit-friendly), np for float64 host arrays.

  Shapes:
    dur_pred: (..., l_t) float; phonemes: (..., l_t) int; valid: (..., l_t) bool.
    returns weights (..., l_t) float, rounded (..., l_t) int32, minimum (..., l_t) int32.
  """
  cap = float(cap)
  pred = xp.expm1(xp.minimum(dur_pred, math.log1p(cap))) if config.log_duration else dur_pred
  weights = xp.where(valid, xp.clip(pred, 0.0, cap), 0.0)
  nonpause = valid
  for pid in config.pause_ids:
    nonpause = nonpause & (phonemes != pid)
  minimum = xp.where(nonpause, config.min_duration, 0).astype(xp.int32)
  rounded = xp.maximum(xp.round(weights).astype(xp.int32), minimum)
  if fallback is not None:
    empty = xp.sum(rounded, axis=-1, keepdims=True) == 0
    rounded = xp.where(empty & valid, int(fallback), rounded).astype(xp.int32)
  return weights, rounded, minimum


def _mask_time(x: Array, mask: Array) -> Array:
  """Zeros padded steps. Shapes: x (B, T, C), mask (B, T) -> (B, T, C)."""
  return x * mask[..., None].astype(x.dtype)


# ----------------------------------------------------------------------------------------------
# Layers.


class SelfAttention(nnx.Module):
  """Multi-head self-attention with a key mask.

  Padded keys get exactly zero weight, so valid outputs ignore padding.

  Shapes: x (B, T, C), mask (B, T) bool -> (B, T, C).
  """

  def __init__(self, dim: int, heads: int, *, dtype, rngs: nnx.Rngs):
    self.heads = heads
    self.qkv = nnx.Linear(dim, 3 * dim, dtype=dtype, rngs=rngs)
    self.out = nnx.Linear(dim, dim, dtype=dtype, rngs=rngs)

  def __call__(self, x: Array, mask: Array) -> Array:
    b, t, c = x.shape
    q, k, v = jnp.split(self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads), 3, axis=2)
    q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]  # (B, T, H, D)
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(c // self.heads)
    logits = jnp.where(mask[:, None, None, :], logits.astype(jnp.float32), -1e30)
    probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
    y = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, t, c)
    return self.out(y)


class FFTBlock(nnx.Module):
  """FastSpeech Feed-Forward Transformer block (post-LayerNorm).

  y = LN(x + Drop(MHA(x))); out = LN(y + Drop(Conv_k2(ReLU(Conv_k1(y))))); padded steps are
  zeroed after each sub-layer so 'SAME' conv padding and batch padding look identical.

  Shapes: x (B, T, C), mask (B, T) bool -> (B, T, C).
  """

  def __init__(self, dim: int, heads: int, filt: int, kernels: tuple[int, int],
               dropout: float, *, dtype, rngs: nnx.Rngs):
    self.attn = SelfAttention(dim, heads, dtype=dtype, rngs=rngs)
    self.ln1 = nnx.LayerNorm(dim, dtype=dtype, rngs=rngs)
    self.conv1 = nnx.Conv(dim, filt, (kernels[0],), padding="SAME", dtype=dtype, rngs=rngs)
    self.conv2 = nnx.Conv(filt, dim, (kernels[1],), padding="SAME", dtype=dtype, rngs=rngs)
    self.ln2 = nnx.LayerNorm(dim, dtype=dtype, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, x: Array, mask: Array, *, deterministic: bool) -> Array:
    x = self.ln1(x + self.drop(self.attn(x, mask), deterministic=deterministic))
    x = _mask_time(x, mask)
    h = _mask_time(jax.nn.relu(self.conv1(x)), mask)
    h = self.drop(self.conv2(h), deterministic=deterministic)
    return _mask_time(self.ln2(x + h), mask)


class DurationPredictor(nnx.Module):
  """FastSpeech 2 variance predictor for durations: 2 x (conv, ReLU, LN, dropout) + Linear.

  Shapes: x (B, l_t, C), mask (B, l_t) bool -> (B, l_t), zero at padding.
  """

  def __init__(self, dim: int, filt: int, kernel: int, dropout: float, *, dtype,
               rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(dim, filt, (kernel,), padding="SAME", dtype=dtype, rngs=rngs)
    self.ln1 = nnx.LayerNorm(filt, dtype=dtype, rngs=rngs)
    self.conv2 = nnx.Conv(filt, filt, (kernel,), padding="SAME", dtype=dtype, rngs=rngs)
    self.ln2 = nnx.LayerNorm(filt, dtype=dtype, rngs=rngs)
    self.proj = nnx.Linear(filt, 1, dtype=dtype, rngs=rngs)
    self.drop = nnx.Dropout(dropout, rngs=rngs)

  def __call__(self, x: Array, mask: Array, *, deterministic: bool) -> Array:
    for conv, ln in ((self.conv1, self.ln1), (self.conv2, self.ln2)):
      x = ln(jax.nn.relu(conv(_mask_time(x, mask))))
      x = self.drop(x, deterministic=deterministic)
    out = self.proj(_mask_time(x, mask))[..., 0]
    return jnp.where(mask, out, 0.0).astype(jnp.float32)


class Subsampler(nnx.Module):
  """Two stride-2 conv1d layers: mel rate (100 fps) -> video rate (25 fps).

  Kernel k in {3, 4}, stride 2, padding (1, 1): out = floor((L + 2 - k) / 2) + 1 = L / 2 for
  even L, so l_v = l_a / 4 exactly when l_a = 4 l_v. With k = 4 output frame i covers input
  frames 2i-1 .. 2i+2, a window centred on its own two frames. ReLU between the convs; the
  output is linear (the target latent's range is left to the data).

  Shapes: x (B, 4 l_v, C), mel_mask (B, 4 l_v) bool -> (B, l_v, latent_dim), zero past
  ceil(valid / 4).
  """

  def __init__(self, dim: int, out_dim: int, kernel: int, *, dtype, rngs: nnx.Rngs):
    kw = dict(kernel_size=(kernel,), strides=(2,), padding=((1, 1),), dtype=dtype, rngs=rngs)
    self.conv1 = nnx.Conv(dim, dim, **kw)
    self.conv2 = nnx.Conv(dim, out_dim, **kw)

  def __call__(self, x: Array, mel_mask: Array) -> Array:
    n_valid = jnp.sum(mel_mask, axis=1, keepdims=True)  # (B, 1)
    h = jax.nn.relu(self.conv1(_mask_time(x, mel_mask)))
    half_mask = 2 * jnp.arange(h.shape[1])[None, :] < n_valid
    y = self.conv2(_mask_time(h, half_mask))
    return _mask_time(y, 4 * jnp.arange(y.shape[1])[None, :] < n_valid)


# ----------------------------------------------------------------------------------------------
# The model.


class TAEM(nnx.Module):
  """Text-to-audio-embedding module: phonemes + speaker -> per-video-frame latents z_t.

  Call:
    phonemes: token ids; phoneme_mask: True at real phonemes; speaker: speaker embedding
    (ArcFace/dlib) of one frame of the target video.
    durations: ground-truth mel frames per phoneme (100 fps) for teacher forcing, or None to use
      the predicted durations (inference).
    n_frames: video frames (25 fps) the output must cover, or None. When given, the durations
      used (teacher or predicted) are fitted to exactly 4 * n_frames mel frames with
      `fit_durations` (a no-op when ground truth already sums to it). When None: teacher
      durations are used as they are (l_v = ceil(sum / 4), the last frame may see a partial
      window); predicted durations are rounded (min `min_duration` frames for non-pause
      phonemes) and fitted to 4 * ceil(sum / 4).
    max_frames: static output length l_v (a padding bucket). Required under jit; outside jit it
      defaults to the longest utterance. Longer outputs are truncated (fitted to the bucket).
    deterministic: False enables dropout (needs a 'dropout' rng stream).

  Shapes:
    phonemes (B, l_t) int32; phoneme_mask (B, l_t) bool; speaker (B, speaker_dim);
    durations (B, l_t) int32 or None; n_frames (B,) int32 or None.
    returns dict:
      z (B, l_v, latent_dim) zero past each utterance's frames; frame_mask (B, l_v) bool;
      log_dur_pred (B, l_t) float32 (log(d + 1) if config.log_duration else d; 0 at padding);
      durations_used (B, l_t) int32 (mel frames, 100 fps); mel_mask (B, 4 l_v) bool.
  """

  family = "taem"  # checkpoint family (see models/pretrained.py)

  def __init__(self, config: TAEMConfig, *, rngs: nnx.Rngs):
    self.config = config
    c, dt = config, jnp.dtype(config.dtype)
    self.embed = nnx.Embed(c.vocab_size, c.hidden, dtype=dt, rngs=rngs)
    self.speaker_proj = nnx.Linear(c.speaker_dim, c.hidden, dtype=dt, rngs=rngs)
    block = lambda: FFTBlock(c.hidden, c.heads, c.ffn_filter, c.ffn_kernels, c.dropout,
                             dtype=dt, rngs=rngs)
    self.encoder = nnx.List([block() for _ in range(c.encoder_layers)])
    self.duration_predictor = DurationPredictor(c.hidden, c.dp_filter, c.dp_kernel, c.dp_dropout,
                                                dtype=dt, rngs=rngs)
    self.refiner = nnx.List([block() for _ in range(c.refiner_layers)])
    self.subsampler = Subsampler(c.hidden, c.latent_dim, c.subsample_kernel, dtype=dt, rngs=rngs)

  @classmethod
  def from_config(cls, config: dict, *, rngs: nnx.Rngs) -> TAEM:
    """Builds TAEM from `get_config()` (JSON-storable), as `pretrained.load_pretrained` does."""
    return cls(TAEMConfig.from_dict(config), rngs=rngs)

  def get_config(self) -> dict:
    return dataclasses.asdict(self.config)

  def __call__(self, phonemes: Array, phoneme_mask: Array, speaker: Array,
               durations: Array | None = None, n_frames: Array | None = None, *,
               deterministic: bool, max_frames: int | None = None) -> dict[str, Array]:
    c = self.config
    # 100 fps mel frames per 25 fps video frame: the subsampler's two stride-2 convs implement
    # exactly this ratio (other video rates are resampled to 25 fps in preprocessing).
    r = DUR_FRAMES_PER_VIDEO_FRAME
    phoneme_mask = phoneme_mask.astype(bool)
    l_t = phonemes.shape[1]

    # Phoneme encoder g: token + speaker + positions -> FFT blocks.
    x = self.embed(phonemes) + self.speaker_proj(speaker)[:, None, :]
    x = _mask_time(x + sinusoid_positions(l_t, c.hidden).astype(x.dtype), phoneme_mask)
    for blk in self.encoder:
      x = blk(x, phoneme_mask, deterministic=deterministic)

    # Duration predictor on a stop-gradient copy: L_dur must not shape the encoder.
    dur_pred = self.duration_predictor(jax.lax.stop_gradient(x), phoneme_mask,
                                       deterministic=deterministic)

    # Durations actually used by the length regulator, and their target total.
    if durations is not None:
      weights = jnp.where(phoneme_mask, durations, 0).astype(jnp.int32)
      minimum = jnp.zeros_like(weights)
      if n_frames is None:
        total = jnp.sum(weights, axis=1)
        fit = False
      else:
        total = r * n_frames.astype(jnp.int32)
        fit = True
      guess_frames = -(-total // r)
    else:
      weights, rounded, minimum = predicted_durations(dur_pred, phonemes, phoneme_mask, c)
      if n_frames is None:
        guess_frames = -(-jnp.sum(rounded, axis=1) // r)
      else:
        guess_frames = n_frames.astype(jnp.int32)
      total = r * guess_frames
      fit = True

    if max_frames is None:
      try:
        max_frames = max(int(jnp.max(guess_frames)), 1)
      except jax.errors.ConcretizationTypeError:
        raise ValueError(
            "TAEM under jit needs a static max_frames (the output length bucket)") from None
    max_frames = int(max_frames)
    total = jnp.minimum(total, r * max_frames)
    if fit:
      used = fit_durations(weights, total, phoneme_mask, minimum)
    else:
      used = weights

    # Length regulator + speech refiner h at the mel rate.
    y, mel_mask = length_regulate(x, used, r * max_frames)
    y = _mask_time(y + sinusoid_positions(r * max_frames, c.hidden).astype(y.dtype), mel_mask)
    for blk in self.refiner:
      y = blk(y, mel_mask, deterministic=deterministic)

    z = self.subsampler(y, mel_mask)
    frame_mask = jnp.arange(max_frames)[None, :] < jnp.minimum(guess_frames, max_frames)[:, None]
    z = _mask_time(z, frame_mask)
    return dict(z=z.astype(jnp.float32), frame_mask=frame_mask, log_dur_pred=dur_pred,
                durations_used=used, mel_mask=mel_mask)


def count_params(model: nnx.Module) -> int:
  """Number of trainable scalars in `model`."""
  return sum(int(p.size) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
