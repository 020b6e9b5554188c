"""TAEM training losses: pure functions of arrays and masks.

L_dis (latent MSE) is the paper's main loss; L_dur trains the duration predictor; the Table 2
ablations swap or add a contrastive (InfoNCE) term or the Wav2Lip task loss (L1 + expert
SyncNet sync loss through the frozen generator). `combine` assembles one Table 2 row.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from taem_jax.errors import UserError

Array = jax.Array

OBJECTIVES = ("mse", "contrastive", "mse+contrastive", "mse+task")


def masked_mean(x: Array, mask: Array) -> Array:
  """Mean of x over entries where mask is True (0 if none). x and mask broadcast together."""
  m = jnp.broadcast_to(mask, x.shape).astype(jnp.float32)
  return jnp.sum(x.astype(jnp.float32) * m) / jnp.maximum(jnp.sum(m), 1.0)


def latent_mse(z_t: Array, z_a: Array, frame_mask: Array) -> Array:
  """L_dis: squared error between text and audio latents, mean over valid frames and dims.

  Shapes: z_t, z_a (B, l_v, D); frame_mask (B, l_v) bool -> scalar.
  """
  return masked_mean(jnp.square(z_t - z_a), frame_mask[..., None])


def duration_loss(log_dur_pred: Array, durations: Array, phoneme_mask: Array, *,
                  log_domain: bool = True) -> Array:
  """L_dur: MSE between predicted and ground-truth durations over real phonemes.

  With `log_domain` (FastSpeech 2) the target is log(d + 1) and the prediction is read as a
  log-duration; otherwise both are mel frames. Use TAEMConfig.log_duration.

  Shapes: log_dur_pred (B, l_t) float; durations (B, l_t) int mel frames;
    phoneme_mask (B, l_t) bool -> scalar.
  """
  d = durations.astype(jnp.float32)
  target = jnp.log1p(d) if log_domain else d
  return masked_mean(jnp.square(log_dur_pred - target), phoneme_mask)


def info_nce(z_t: Array, z_a: Array, frame_mask: Array, temperature: float = 0.1) -> Array:
  """Contrastive (InfoNCE / CPC-style) loss from text latents to audio latents.

  Every valid frame of z_t is a query; its key is z_a at the same frame of the same utterance;
  the negatives are all other valid frames of z_a in the batch (other frames of the same
  utterance and every frame of the others). Similarity is cosine / temperature. One direction
  (text -> audio), mean over valid query frames.

  Shapes: z_t, z_a (B, l_v, D); frame_mask (B, l_v) bool -> scalar.
  Memory is O((B l_v)^2) for the similarity matrix.
  """
  d = z_t.shape[-1]
  q = _l2_normalize(z_t.reshape(-1, d).astype(jnp.float32))
  k = _l2_normalize(z_a.reshape(-1, d).astype(jnp.float32))
  m = frame_mask.reshape(-1)
  logits = jnp.einsum("qd,kd->qk", q, k) / temperature  # (N, N)
  logits = jnp.where(m[None, :], logits, -1e30)
  nll = -jnp.diagonal(jax.nn.log_softmax(logits, axis=-1))
  return masked_mean(nll, m)


def _norm(x: Array, eps: float = 1e-12, keepdims: bool = False) -> Array:
  """L2 norm over the last axis, at least eps, with a finite gradient at x = 0.

  jnp.linalg.norm's gradient at a zero vector is 0/0 = NaN, and zero latents do occur (padded
  frames, ReLU outputs); clamping the squared norm first keeps the gradient 0 there instead.
  """
  return jnp.sqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=keepdims), eps * eps))


def _l2_normalize(x: Array, eps: float = 1e-12) -> Array:
  return x / _norm(x, eps, keepdims=True)


def take_windows(x: Array, start: Array, size: int) -> Array:
  """Per-utterance window x[b, start[b] : start[b] + size] (start is clamped into range).

  Shapes: x (B, T, ...); start (B,) int -> (B, size, ...).
  """
  return jax.vmap(lambda xi, s: jax.lax.dynamic_slice_in_dim(xi, s, size, axis=0))(x, start)


def expert_bce(audio_emb: Array, face_emb: Array, target: Array | float = 1.0,
               mask: Array | None = None) -> Array:
  """Wav2Lip's "cosine loss": BCE(cos(audio, face), target), each log clamped at -100 (torch).

  The expert trains on target 1 (in sync) / 0 (off sync); the generator's sync loss is target 1.
  Cosine similarity is clipped to [0, 1] (the expert's embeddings are non-negative anyway).

  Shapes: audio_emb, face_emb (N, E); target scalar or (N,); mask (N,) -> scalar.
  """
  return bce(expert_similarity(audio_emb, face_emb), target, mask)


def bce(prob: Array, target: Array | float, mask: Array | None = None) -> Array:
  """torch `nn.BCELoss` (mean): -(y log p + (1 - y) log(1 - p)), each log clamped at -100.

  Shapes: prob (N,) in [0, 1]; target scalar or (N,); mask (N,) -> scalar.
  """
  p = prob.astype(jnp.float32)
  y = jnp.broadcast_to(jnp.asarray(target, jnp.float32), p.shape)

  def neg_log(q):  # -log(q) capped at 100; the double where keeps gradients finite at 0
    safe = jnp.where(q > 0.0, q, 1.0)
    return jnp.where(q > 0.0, jnp.minimum(-jnp.log(safe), 100.0), 100.0)

  loss = y * neg_log(p) + (1.0 - y) * neg_log(1.0 - p)
  return masked_mean(loss, jnp.ones_like(loss, bool) if mask is None else mask)


def expert_similarity(audio_emb: Array, face_emb: Array) -> Array:
  """cos(audio, face) clipped to [0, 1] (torch cosine_similarity, eps 1e-8).

  Shapes: (N, E), (N, E) -> (N,).
  """
  a = audio_emb.astype(jnp.float32)
  v = face_emb.astype(jnp.float32)
  cos = jnp.sum(a * v, -1) / jnp.maximum(_norm(a) * _norm(v), 1e-8)
  return jnp.clip(cos, 0.0, 1.0)


def sync_loss(audio_emb: Array, face_emb: Array, mask: Array | None = None) -> Array:
  """Wav2Lip's expert sync loss: BCE(cos(audio, face), 1), each log clamped at -100 (as torch).

  Shapes: audio_emb, face_emb (N, E) (the expert's L2-normalised outputs); mask (N,) -> scalar.
  """
  return expert_bce(audio_emb, face_emb, 1.0, mask)


def lower_half_stack(frames: Array) -> Array:
  """The expert's face input: lower halves of W frames stacked on channels, frame-major.

  Shapes: frames (B, W, H, W_img, C) -> (B, H - H // 2, W_img, W * C); channel = C t + c.
  """
  b, w, h, wd, c = frames.shape
  lower = frames[:, :, h // 2:]
  return jnp.transpose(lower, (0, 2, 3, 1, 4)).reshape(b, h - h // 2, wd, w * c)


def task_loss(z: Array, faces: Array, frames_gt: Array, sync_mel: Array, window_mask: Array, *,
              decode_fn: Callable[[Array, Array], Array],
              expert_fn: Callable[[Array, Array], tuple[Array, Array]],
              sync_weight: float = 0.03) -> tuple[Array, dict[str, Array]]:
  """Wav2Lip's generator loss driven by text latents, on one window of W = 5 frames per item.

  The frozen generator renders the W frames from z (a window of z_t, see `take_windows`);
  L1 = mean |rendered - ground truth| over all pixels; the frozen expert scores the rendered
  lower halves (rows 48..95, frames stacked on channels frame-major: channel 3 t + c) against
  the window's mel chunk: L_sync = BCE(cos, 1). total = w L_sync + (1 - w) L1 as in
  wav2lip_train.py. `decode_fn` and `expert_fn` must hold their parameters frozen (e.g.
  `taem_jax.models.targets.frozen_call`) so gradients reach only z, i.e. TAEM.

  Args:
    decode_fn: (z (N, D), faces (N, 96, 96, 6)) -> frames (N, 96, 96, 3).
    expert_fn: (mel (M, 80, 16, 1), lower halves (M, 48, 96, 3 W)) -> (audio_emb, face_emb).
    sync_weight: w, Wav2Lip's syncnet_wt (0.03 HQ, 0.01 non-GAN).

  Shapes:
    z (B, W, D); faces (B, W, 96, 96, 6) [masked target | reference]; frames_gt (B, W, 96, 96, 3);
    sync_mel (B, 80, 16, 1) = the mel window of the window's first frame; window_mask (B,) bool
    (False for windows that reach into padding).
    returns (scalar total, {"l1", "sync"}).
  """
  b, w, d = z.shape
  h, wd = faces.shape[2:4]
  gen = decode_fn(z.reshape(b * w, d), faces.reshape(b * w, h, wd, faces.shape[-1]))
  gen = gen.reshape(b, w, h, wd, gen.shape[-1])
  l1 = masked_mean(jnp.abs(gen - frames_gt), window_mask[:, None, None, None, None])
  stacked = lower_half_stack(gen)
  audio_emb, face_emb = expert_fn(sync_mel, stacked)
  sync = sync_loss(audio_emb, face_emb, window_mask)
  total = sync_weight * sync + (1.0 - sync_weight) * l1
  return total, dict(l1=l1, sync=sync)


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """Which Table 2 objective to train, and its weights. L_dur is always added."""

  objective: str = "mse"  # one of OBJECTIVES (Table 2 rows); the paper's main setting is "mse"
  mse_weight: float = 1.0  # weight of L_dis
  duration_weight: float = 1.0  # weight of L_dur
  contrastive_weight: float = 1.0  # weight of InfoNCE in "contrastive" / "mse+contrastive"
  temperature: float = 0.1  # InfoNCE softmax temperature (cosine similarities)
  task_weight: float = 1.0  # weight of the task loss in "mse+task"
  sync_weight: float = 0.03  # w inside the task loss: w L_sync + (1 - w) L1 (Wav2Lip HQ)
  task_window: int = 5  # video frames per task-loss window (the expert sees 5)
  task_windows: int = 1  # 5-frame windows per clip rendered for the task loss (cost ~ B * this)

  def __post_init__(self):
    if self.objective not in OBJECTIVES:
      raise UserError(f"unknown loss objective {self.objective!r}; choose one of "
                      + ", ".join(OBJECTIVES))
    if self.task_windows < 1:
      raise UserError(f"task_windows must be >= 1, got {self.task_windows}")

  @property
  def terms(self) -> tuple[str, ...]:
    return tuple(self.objective.split("+"))


def combine(config: LossConfig, out: dict[str, Array], z_a: Array, durations: Array,
            phoneme_mask: Array, *, log_duration: bool = True,
            task: Array | None = None) -> tuple[Array, dict[str, Array]]:
  """Total loss for one Table 2 row plus the duration loss, and per-term metrics.

  Args:
    out: TAEM outputs (`z`, `frame_mask`, `log_dur_pred`).
    log_duration: TAEMConfig.log_duration (domain of `log_dur_pred`).
    task: the scalar from `task_loss`, required when the objective includes "task".

  Shapes: z_a (B, l_v, D); durations, phoneme_mask (B, l_t) -> (scalar, {name: scalar}).
  The MSE is always reported (and only added when selected).
  """
  terms = config.terms
  metrics = {}
  metrics["mse"] = latent_mse(out["z"], z_a, out["frame_mask"])
  metrics["duration"] = duration_loss(out["log_dur_pred"], durations, phoneme_mask,
                                      log_domain=log_duration)
  total = config.duration_weight * metrics["duration"]
  if "mse" in terms:
    total = total + config.mse_weight * metrics["mse"]
  if "contrastive" in terms:
    metrics["contrastive"] = info_nce(out["z"], z_a, out["frame_mask"], config.temperature)
    total = total + config.contrastive_weight * metrics["contrastive"]
  if "task" in terms:
    if task is None:
      raise ValueError(f"objective {config.objective!r} needs task=task_loss(...)")
    metrics["task"] = task
    total = total + config.task_weight * task
  metrics["total"] = total
  return total, metrics
