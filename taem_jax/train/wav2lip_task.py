"""Wav2Lip itself as trainer tasks: the lip-sync expert (SyncNet_color) and the generator.

Two `taem_jax.train.trainer.Task`s, trained in this order (spec: wav2lip_family.md §5):

* `ExpertTask`: SyncNet_color learns whether the lower halves of 5 consecutive face crops and a
  16-frame mel window (0.2 s) are in sync. Positives pair the window's frames with their own
  audio; negatives pair the audio with frames from elsewhere in the same clip (an offset of at
  least `min_offset` frames). Loss: BCE of the cosine similarity of the two embeddings.
* `Wav2LipTask`: the generator reconstructs a 5-frame window from (the window with its lower half
  masked | a reference window from elsewhere in the clip) and per-frame mel windows. Loss:
  (1 - w_sync - w_gan) L1 + w_sync L_sync (+ w_gan L_gan with the visual-quality discriminator
  when `gan`). L_sync runs the frozen expert on the generated lower halves; w_sync is 0 until
  the sync loss first drops below a threshold, as in the official scripts.

Samples are cut on the host from the data pipeline's clip batches (`faces`, `mel_windows`,
`n_frames`, `valid`; see taem_jax/data/pipeline.py) by `WindowIterator`, whose random draws are
a pure function of (seed, step): resuming a run redraws exactly the same windows, and every
validation pass sees the same ones.

BatchNorm, deliberately:
* expert training: batch statistics (train mode) as the official script; validation and export
  use the running averages (the official eval calls `model.eval()`).
* generator training: the generator's BN uses batch statistics over all B x 5 frames (official);
  validation, samples and export use its running averages.
* the frozen expert inside generator training: `expert_bn='batch'` (default) runs it on batch
  statistics, as the official scripts do (they never call `syncnet.eval()`), without ever
  updating its stored running averages; `'running'` uses its running averages instead.

GAN (`gan=True`, hq_wav2lip_train.py): one jitted step computes the generator loss with the
discriminator's weights held constant and the discriminator loss on the detached generated
frames, and one optimizer step updates both. That equals the official order (generator step,
then a discriminator step on the same, pre-update fake frames and pre-update D weights).

Exported models (`export`) are `save_pretrained` directories of family 'syncnet_color' /
'wav2lip' (/ 'disc_qual'), so `taem_jax.models.load_pretrained` reads them like converted
official checkpoints; the width is recorded in the sidecar's config.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from taem_jax.errors import UserError
from taem_jax.models.syncnet import SyncNetColor
from taem_jax.models.targets import frozen_call
from taem_jax.models.wav2lip import Wav2Lip, Wav2LipDiscQual
from taem_jax.train import losses

WINDOW = 5  # video frames per window (Wav2Lip's syncnet_T)
FACE = 96  # face crop side
HALF = FACE // 2  # first row of the lower half


# -- host-side sample construction -----------------------------------------------------------

def _source_rows(n_frames: np.ndarray, valid: np.ndarray, need: int) -> tuple[np.ndarray,
                                                                              np.ndarray]:
  """Which clip each row samples from, and its weight (0: filler row or too short a clip).

  Unusable rows borrow the first usable clip (weight 0), so batch statistics stay sensible.
  """
  usable = valid & (n_frames >= need)
  first = int(np.argmax(usable)) if usable.any() else 0
  rows = np.where(usable, np.arange(len(n_frames)), first)
  return rows, usable.astype(np.float32)


def _batch_fields(batch: Mapping[str, np.ndarray]):
  n = np.asarray(batch["n_frames"]).astype(np.int64)
  valid = np.asarray(batch.get("valid", np.ones(len(n), bool))).astype(bool)
  return np.asarray(batch["faces"]), np.asarray(batch["mel_windows"], np.float32), n, valid


def expert_samples(batch: Mapping[str, np.ndarray], rng: np.random.Generator, *,
                   windows_per_clip: int = 1, min_offset: int = 1) -> dict[str, np.ndarray]:
  """Expert training pairs: (lower halves of 5 frames, 16-frame mel window, in sync or not).

  For each clip, `windows_per_clip` audio windows start at random frames a; labels alternate
  from a random first label (half the pairs are positives). A positive takes the frames
  a..a+4; a negative takes frames f..f+4 with |f - a| >= `min_offset` (official: any other
  start, i.e. 1). The audio window is always `mel_windows[a]` (mel rows from int(3.2 a), 16
  rows: the audio of frames a..a+4).

  Shapes:
    batch: faces (B, Lv, 96, 96, 3) uint8, mel_windows (B, Lv, 80, 16, 1), n_frames (B,),
      valid (B,) optional.
    returns (N = B * windows_per_clip): lips (N, 5, 48, 96, 3) uint8, mel (N, 80, 16, 1),
      label (N,) float32 1/0, weight (N,) float32, audio_start (N,) int32,
      face_start (N,) int32.
  """
  faces, mels, n, valid = _batch_fields(batch)
  k = int(windows_per_clip)
  if min_offset < 1:
    raise UserError(f"min_offset must be >= 1 (a negative must be off sync), got {min_offset}")
  rows, weights = _source_rows(n, valid, WINDOW + min_offset)
  size = len(n) * k
  out = {
      "lips": np.zeros((size, WINDOW, FACE - HALF, FACE, 3), np.uint8),
      "mel": np.zeros((size, *mels.shape[2:]), np.float32),
      "label": np.zeros((size,), np.float32),
      "weight": np.repeat(weights, k),
      "audio_start": np.zeros((size,), np.int32),
      "face_start": np.zeros((size,), np.int32),
  }
  for b, src in enumerate(rows):
    last = int(n[src]) - WINDOW  # last window start
    if last < min_offset:
      continue  # nothing usable in the batch at all: zeros, weight 0
    starts = np.arange(last + 1)
    # audio starts that have at least one start far enough away for a negative
    has_negative = starts[(starts >= min_offset) | (starts <= last - min_offset)]
    first_label = int(rng.integers(2))
    for j in range(k):
      i = b * k + j
      positive = (first_label + j) % 2 == 0
      if positive:
        a = int(rng.integers(last + 1))
        f = a
      else:
        a = int(rng.choice(has_negative))
        f = int(rng.choice(starts[np.abs(starts - a) >= min_offset]))
      out["lips"][i] = faces[src, f:f + WINDOW, HALF:]
      out["mel"][i] = mels[src, a]
      out["label"][i] = float(positive)
      out["audio_start"][i] = a
      out["face_start"][i] = f
  return out


def generator_samples(batch: Mapping[str, np.ndarray], rng: np.random.Generator, *,
                      windows_per_clip: int = 1, audio_shift: int = -1,
                      min_ref_offset: int = 1) -> dict[str, np.ndarray]:
  """Generator training windows, as wav2lip_train.py builds them.

  For each clip, `windows_per_clip` windows start at random frames s; the reference window
  starts at a random r with |r - s| >= `min_ref_offset` (official: any other frame, i.e. 1).
  Frame s+t is conditioned on `mel_windows[s + t + audio_shift]` (official training uses the
  window starting one video frame earlier: audio_shift = -1; official inference uses 0), and
  the expert scores the window against `mel_windows[s]`.

  Shapes:
    batch: as `expert_samples`.
    returns (N = B * windows_per_clip): window (N, 5, 96, 96, 3) uint8 (ground truth),
      reference (N, 5, 96, 96, 3) uint8, indiv_mels (N, 5, 80, 16, 1), mel (N, 80, 16, 1),
      weight (N,) float32, start (N,) int32, ref_start (N,) int32.
  """
  faces, mels, n, valid = _batch_fields(batch)
  k = int(windows_per_clip)
  if audio_shift > 0:
    raise UserError(f"audio_shift must be <= 0 (the window's audio may start before it), got "
                    f"{audio_shift}")
  if min_ref_offset < 1:
    raise UserError(f"min_ref_offset must be >= 1 (the reference must be another window), "
                    f"got {min_ref_offset}")
  lo = -audio_shift  # first start whose per-frame audio windows all exist
  rows, weights = _source_rows(n, valid, WINDOW + lo + min_ref_offset)
  size = len(n) * k
  out = {
      "window": np.zeros((size, WINDOW, FACE, FACE, 3), np.uint8),
      "reference": np.zeros((size, WINDOW, FACE, FACE, 3), np.uint8),
      "indiv_mels": np.zeros((size, WINDOW, *mels.shape[2:]), np.float32),
      "mel": np.zeros((size, *mels.shape[2:]), np.float32),
      "weight": np.repeat(weights, k),
      "start": np.zeros((size,), np.int32),
      "ref_start": np.zeros((size,), np.int32),
  }
  for b, src in enumerate(rows):
    last = int(n[src]) - WINDOW
    if last < lo + min_ref_offset:
      continue
    starts = np.arange(last + 1)
    # window starts with audio for every frame and a reference start far enough away
    ok = starts[(starts >= lo) & ((starts >= min_ref_offset) |
                                  (starts <= last - min_ref_offset))]
    for j in range(k):
      i = b * k + j
      s = int(rng.choice(ok))
      r = int(rng.choice(starts[np.abs(starts - s) >= min_ref_offset]))
      out["window"][i] = faces[src, s:s + WINDOW]
      out["reference"][i] = faces[src, r:r + WINDOW]
      out["indiv_mels"][i] = mels[src, s + audio_shift:s + audio_shift + WINDOW]
      out["mel"][i] = mels[src, s]
      out["start"][i] = s
      out["ref_start"][i] = r
  return out


def generator_input(window, reference):
  """The generator's face input: (target with rows 48..95 zeroed | reference) on channels.

  Works on numpy or JAX arrays, uint8 or float (the dtype is kept).

  Shapes:
    window, reference (..., 96, 96, 3) -> (..., 96, 96, 6).
  """
  xp = jnp if isinstance(window, jax.Array) or isinstance(reference, jax.Array) else np
  h = window.shape[-3]
  keep = (xp.arange(h) < h // 2).astype(window.dtype)[:, None, None]
  return xp.concatenate([window * keep, reference], axis=-1)


class WindowIterator:
  """Clip batches -> training samples, with the trainer's checkpointable iterator protocol.

  The random draws of batch i come from `np.random.default_rng([seed, i])`, so a resumed
  iterator (same inner position, same i) produces the same samples, and a fresh iterator over
  held-out clips produces the same validation samples every time.
  """

  def __init__(self, clips, make_samples: Callable[[Mapping[str, np.ndarray],
                                                    np.random.Generator], dict],
               seed: int):
    self._clips, self._make, self._seed, self._count = clips, make_samples, int(seed), 0

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._clips)
    rng = np.random.default_rng([self._seed, self._count])
    self._count += 1
    return self._make(batch, rng)

  def get_state(self) -> dict:
    return {"clips": self._clips.get_state(), "count": self._count}

  def set_state(self, state: Mapping[str, Any]) -> None:
    self._clips.set_state(state["clips"])
    self._count = int(state["count"])


# -- the expert ------------------------------------------------------------------------------

def _lips_input(lips: jax.Array) -> jax.Array:
  """uint8 lower halves (N, 5, 48, 96, 3) -> the expert's (N, 48, 96, 15) float in [0, 1]."""
  x = lips.astype(jnp.float32) / 255.0
  n, t, h, w, c = x.shape
  return jnp.transpose(x, (0, 2, 3, 1, 4)).reshape(n, h, w, t * c)


def _load_into(model: nnx.Module, path, family: str, what: str) -> None:
  """Copies a `save_pretrained` directory or a training workdir's weights into `model`."""
  from taem_jax.models import load_pretrained  # pylint: disable=g-import-not-at-top
  from taem_jax.models import pretrained  # pylint: disable=g-import-not-at-top
  p = pathlib.Path(path).expanduser()
  if (p / "checkpoints").is_dir() or (p.name == "checkpoints" and p.is_dir()):
    from taem_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
    try:
      checkpoint.load_model_weights(model, p / "checkpoints" if p.name != "checkpoints" else p)
    except (KeyError, ValueError, TypeError) as e:
      raise UserError(f"{what} {p} is a training workdir of another model or size "
                      f"({type(e).__name__}); pass the matching run or its export") from None
    return
  meta = pretrained.read_sidecar(p)
  if meta["family"] != family:
    raise UserError(f"{what} {p} holds a {meta['family']} checkpoint, expected {family}")
  loaded = load_pretrained(p, family=family)
  if loaded.get_config().get("width") != model.get_config().get("width"):
    raise UserError(f"{what} {p} has width {loaded.get_config().get('width')}, but the config "
                    f"asks for {model.get_config().get('width')}; set the config's width to "
                    "match")
  nnx.update(model, nnx.state(loaded))


@dataclasses.dataclass
class ExpertTask:
  """SyncNet_color training (color_syncnet_train.py): cosine-similarity BCE on pairs.

  Batch fields (from `expert_samples`): lips, mel, label, weight.
  Metrics: sync_loss (the BCE), accuracy (cos > 0.5 <=> in sync), acc_in_sync, acc_off_sync,
  cos_in_sync, cos_off_sync (mean similarities).
  """
  width: float = 1.0

  trainable = nnx.Param

  def make_model(self, rngs: nnx.Rngs) -> SyncNetColor:
    model = SyncNetColor(width=self.width, rngs=rngs)
    model.train()
    return model

  @staticmethod
  def _metrics(model: SyncNetColor, batch) -> dict[str, jax.Array]:
    audio, face = model(batch["mel"], _lips_input(batch["lips"]))
    mask = batch["weight"] > 0
    label = batch["label"]
    cos = losses.expert_similarity(audio, face)
    pos, neg = mask & (label > 0.5), mask & (label < 0.5)
    correct = ((cos > 0.5) == (label > 0.5)).astype(jnp.float32)
    mean = lambda x, m: jnp.sum(x * m) / jnp.maximum(jnp.sum(m), 1.0)  # noqa: E731
    return {
        "sync_loss": losses.expert_bce(audio, face, label, mask),
        "accuracy": mean(correct, mask),
        "acc_in_sync": mean(correct, pos),
        "acc_off_sync": mean(correct, neg),
        "cos_in_sync": mean(cos, pos),
        "cos_off_sync": mean(cos, neg),
    }

  def loss(self, model: SyncNetColor, batch, rng: jax.Array):
    del rng  # the samples were drawn on the host
    metrics = self._metrics(model, batch)
    return metrics["sync_loss"], metrics

  def eval_metrics(self, model: SyncNetColor, batch):
    model.eval()
    return self._metrics(model, batch)

  def load_init(self, model: SyncNetColor, path: str) -> None:
    """`--init_from`: an expert directory (converted or exported) or an expert workdir."""
    _load_into(model, path, "syncnet_color", "--init_from")
    model.train()

  def export(self, model: SyncNetColor, dst, *, step: int | None = None,
             overwrite: bool = False) -> list[str]:
    """Writes a `load_pretrained` directory (family 'syncnet_color'); returns [dst]."""
    from taem_jax.models import pretrained  # pylint: disable=g-import-not-at-top
    model.eval()
    return [pretrained.save_pretrained(model, dst, family="syncnet_color",
                                       config=model.get_config(), overwrite=overwrite,
                                       extra_meta=_export_meta(step))]


def _export_meta(step: int | None) -> dict:
  return {"source": "taem_jax training", "train_step": step}


# -- the generator ---------------------------------------------------------------------------

class SyncSchedule(nnx.Variable):
  """Training-schedule state kept in the checkpoint (not a parameter)."""


class Wav2LipTrainModel(nnx.Module):
  """The generator, its frozen expert, the optional discriminator and the sync-weight switch.

  Keeping the expert inside makes a generator workdir self-contained (resume needs nothing
  else).

  Shapes: see `Wav2Lip`, `SyncNetColor`, `Wav2LipDiscQual`.
  """

  def __init__(self, generator: dict, expert: dict, disc: dict | None, *, rngs: nnx.Rngs):
    self.generator = Wav2Lip(**generator, rngs=rngs)
    self.expert = SyncNetColor(**expert, rngs=rngs)
    self.disc = nnx.data(None)
    if disc is not None:
      self.disc = Wav2LipDiscQual(**disc, rngs=rngs)
    # 1.0 once the sync loss is switched on (never switched off), and the running mean of the
    # training sync loss that decides it (-1: no step yet).
    self.sync_on = SyncSchedule(jnp.zeros((), jnp.float32))
    self.sync_ema = SyncSchedule(jnp.full((), -1.0, jnp.float32))


@dataclasses.dataclass(frozen=True)
class GeneratorLossConfig:
  """Weights and schedule of the generator loss (defaults: wav2lip_train.py)."""
  sync_weight: float = 0.01  # w_sync once switched on (official: 0.01; 0.03 with the GAN)
  sync_threshold: float = 0.75  # switch w_sync on when the mean sync loss drops below this
  sync_ema_decay: float = 0.9  # decay of the running mean of the training sync loss
  gan: bool = False  # train the visual-quality discriminator and add w_gan L_gan
  disc_weight: float = 0.07  # w_gan (official HQ)
  expert_bn: str = "batch"  # frozen expert's BatchNorm: 'batch' (official) or 'running'

  def __post_init__(self):
    if self.expert_bn not in ("batch", "running"):
      raise UserError(f"expert_bn must be 'batch' or 'running', got {self.expert_bn!r}")
    if self.sync_weight + (self.disc_weight if self.gan else 0.0) >= 1.0:
      raise UserError("sync_weight + disc_weight must stay below 1 (the rest weighs L1)")


def mouth_motion(gen: jax.Array, gt: jax.Array, ref: jax.Array, mask: jax.Array,
                 top: float = 0.05) -> tuple[jax.Array, jax.Array]:
  """Does the generated mouth move as the true one does? (correlation, amplitude ratio).

  L1 and the expert's sync loss can both look good while the mouth barely moves (a blurred
  average mouth, or the reference's mouth copied). This measures the motion itself: in the
  lower half, the pixels where the truth differs most from the reference window (the `top`
  fraction by variance over the batch: lips, jaw, mouth cavity) are averaged per frame, for
  truth - reference and generated - reference. Their correlation over frames says whether the
  mouth opens and closes at the right times (copying the reference gives ~0); the ratio of
  their standard deviations says how far (1 = as much as the truth, ~0.4 = faintly).

  Shapes: gen, gt, ref (N, 5, 96, 96, 3) float; mask (N,) bool (valid windows) -> two scalars.
  """
  n, t = gt.shape[:2]
  d_gt = (gt - ref)[:, :, HALF:].mean(-1).reshape(n * t, -1)  # (F, P) grey differences
  d_gen = (gen - ref)[:, :, HALF:].mean(-1).reshape(n * t, -1)
  w = jnp.repeat(mask.astype(jnp.float32), t)  # (F,)
  wsum = jnp.maximum(w.sum(), 1.0)
  wmean = lambda x: jnp.tensordot(w, x, axes=1) / wsum  # noqa: E731  weighted mean over frames
  var_px = wmean(jnp.square(d_gt - wmean(d_gt)))
  px = (var_px >= jnp.quantile(var_px, 1.0 - top)).astype(jnp.float32)  # (P,)
  a = d_gen @ px / jnp.maximum(px.sum(), 1.0)  # (F,)
  b = d_gt @ px / jnp.maximum(px.sum(), 1.0)
  a, b = a - wmean(a), b - wmean(b)
  sa, sb = jnp.sqrt(wmean(a * a)), jnp.sqrt(wmean(b * b))
  corr = wmean(a * b) / jnp.maximum(sa * sb, 1e-12)
  return corr, sa / jnp.maximum(sb, 1e-12)


@dataclasses.dataclass
class Wav2LipTask:
  """Wav2Lip generator training (wav2lip_train.py, or hq_wav2lip_train.py with `gan`).

  Batch fields (from `generator_samples`): window, reference, indiv_mels, mel, weight.
  Metrics: l1, sync (expert BCE vs 1 on the generated window), sync_weight, gen_loss, and with
  the GAN: adv (generator's BCE(D(g), 1)), disc_real, disc_fake. Validation adds l1_lower and
  mouth_corr / mouth_amp (`mouth_motion`: does the mouth move with the true one, and how far).
  """
  generator: dict  # Wav2Lip keyword config, e.g. {"width": 0.25}
  expert: dict  # SyncNetColor keyword config
  loss_config: GeneratorLossConfig = GeneratorLossConfig()
  disc: dict | None = None  # Wav2LipDiscQual keyword config (required with loss_config.gan)
  expert_dir: str = ""  # trained expert (export dir or expert workdir) loaded by make_model

  def __post_init__(self):
    if self.loss_config.gan and self.disc is None:
      self.disc = {"width": self.generator.get("width", 1.0)}

  @property
  def trainable(self):
    return nnx.All(nnx.Param, nnx.Any(nnx.PathContains("generator"),
                                      nnx.PathContains("disc")))

  def make_model(self, rngs: nnx.Rngs) -> Wav2LipTrainModel:
    model = Wav2LipTrainModel(self.generator, self.expert,
                              self.disc if self.loss_config.gan else None, rngs=rngs)
    if self.expert_dir:
      _load_into(model.expert, self.expert_dir, "syncnet_color", "expert")
    self._set_modes(model, training=True)
    return model

  def _set_modes(self, model: Wav2LipTrainModel, *, training: bool) -> None:
    if training:
      model.generator.train()
    else:
      model.generator.eval()
    if self.loss_config.expert_bn == "batch":
      model.expert.train()  # batch statistics; updates stay on a discarded copy (frozen_call)
    else:
      model.expert.eval()

  def _forward(self, model: Wav2LipTrainModel, batch) -> dict[str, jax.Array]:
    gt = batch["window"].astype(jnp.float32) / 255.0  # (N, 5, 96, 96, 3)
    ref = batch["reference"].astype(jnp.float32) / 255.0
    n, t = gt.shape[:2]
    x = generator_input(gt, ref).reshape(n * t, FACE, FACE, 6)
    mels = batch["indiv_mels"].reshape(n * t, *batch["indiv_mels"].shape[2:])
    gen = model.generator(mels, x).reshape(gt.shape)
    mask = batch["weight"] > 0
    out = {"gen": gen, "gt": gt, "ref": ref, "mask": mask}
    out["l1"] = losses._masked_mean(jnp.abs(gen - gt),  # pylint: disable=protected-access
                                    mask[:, None, None, None, None])
    audio, face = frozen_call(model.expert)(batch["mel"], losses.lower_half_stack(gen))
    out["sync"] = losses.sync_loss(audio, face, mask)
    return out

  def loss(self, model: Wav2LipTrainModel, batch, rng: jax.Array):
    del rng
    cfg = self.loss_config
    out = self._forward(model, batch)
    sync_on = model.sync_on.get_value()
    sync_w = sync_on * cfg.sync_weight  # this step uses the switch as it was before it
    l1, sync = out["l1"], out["sync"]
    metrics = {"l1": l1, "sync": sync, "sync_weight": sync_w}
    gen_loss = sync_w * sync
    l1_w = 1.0 - sync_w
    total_extra = 0.0
    if cfg.gan:
      flat = lambda x: x.reshape(-1, FACE, FACE, 3)  # noqa: E731
      frame_mask = jnp.repeat(out["mask"], WINDOW)
      fake = frozen_call(model.disc)(flat(out["gen"]))[:, 0]
      adv = losses.bce(fake, 1.0, frame_mask)
      d_real = losses.bce(model.disc(flat(out["gt"]))[:, 0], 1.0, frame_mask)
      d_fake = losses.bce(model.disc(jax.lax.stop_gradient(flat(out["gen"])))[:, 0], 0.0,
                          frame_mask)
      gen_loss = gen_loss + cfg.disc_weight * adv
      l1_w = l1_w - cfg.disc_weight
      total_extra = d_real + d_fake
      metrics.update(adv=adv, disc_real=d_real, disc_fake=d_fake)
    gen_loss = gen_loss + l1_w * l1
    metrics["gen_loss"] = gen_loss

    # The official switch looks at the validation sync loss every 3,000 steps; here a running
    # mean of the training sync loss decides, every step (choice: no eval inside the step).
    ema = model.sync_ema.get_value()
    s = jax.lax.stop_gradient(sync)
    ema = jnp.where(ema < 0, s, cfg.sync_ema_decay * ema + (1.0 - cfg.sync_ema_decay) * s)
    model.sync_ema.set_value(ema)
    model.sync_on.set_value(jnp.maximum(sync_on, (ema < cfg.sync_threshold).astype(jnp.float32)))
    metrics["sync_ema"] = ema
    return gen_loss + total_extra, metrics

  def eval_metrics(self, model: Wav2LipTrainModel, batch):
    self._set_modes(model, training=False)
    out = self._forward(model, batch)
    lower = out["mask"][:, None, None, None, None]
    err = jnp.abs(out["gen"] - out["gt"])[:, :, HALF:]
    metrics = {"l1": out["l1"], "sync": out["sync"],
               "l1_lower": losses._masked_mean(err, lower)}  # pylint: disable=protected-access
    metrics["mouth_corr"], metrics["mouth_amp"] = mouth_motion(out["gen"], out["gt"], out["ref"],
                                                               out["mask"])
    return metrics

  def samples(self, model: Wav2LipTrainModel, batch, count: int = 4) -> dict[str, np.ndarray]:
    """Frame grids: per window, rows = reference, masked input, generated, ground truth.

    Shapes: returns {"windows": (count, 4 * 96, 5 * 96, 3) uint8 RGB}.
    """
    self._set_modes(model, training=False)
    sub = {k: np.asarray(batch[k])[:count] for k in ("window", "reference", "indiv_mels")}
    gen = np.asarray(_render(model.generator, sub["indiv_mels"],
                             generator_input(sub["window"], sub["reference"])))
    rows = [sub["reference"], generator_input(sub["window"], sub["reference"])[..., :3],
            (np.clip(gen, 0, 1) * 255 + 0.5).astype(np.uint8), sub["window"]]
    grid = np.stack(rows, axis=1)  # (n, 4, 5, 96, 96, 3)
    n = grid.shape[0]
    grid = grid.transpose(0, 1, 3, 2, 4, 5).reshape(n, 4 * FACE, WINDOW * FACE, 3)
    return {"windows": np.ascontiguousarray(grid[..., ::-1])}  # BGR -> RGB

  def load_init(self, model: Wav2LipTrainModel, path: str) -> None:
    """`--init_from`: comma-separated Wav2Lip / discriminator dirs, or a generator workdir."""
    from taem_jax.models import pretrained  # pylint: disable=g-import-not-at-top
    for part in [p for p in str(path).split(",") if p]:
      p = pathlib.Path(part).expanduser()
      if (p / "checkpoints").is_dir() or (p.name == "checkpoints" and p.is_dir()):
        _load_into(model, p, "", "--init_from")
        continue
      family = pretrained.read_sidecar(p)["family"]
      if family == "wav2lip":
        _load_into(model.generator, p, "wav2lip", "--init_from")
      elif family == "disc_qual" and model.disc is not None:
        _load_into(model.disc, p, "disc_qual", "--init_from")
      else:
        raise UserError(f"--init_from {p} holds a {family} checkpoint; the generator task takes "
                        "wav2lip (and, with gan, disc_qual) directories or a generator workdir "
                        "(the expert goes in config.expert.dir)")
    self._set_modes(model, training=True)

  def export(self, model: Wav2LipTrainModel, dst, *, step: int | None = None,
             overwrite: bool = False) -> list[str]:
    """Writes `dst` (family 'wav2lip') and, with the GAN, `<dst>_disc` ('disc_qual')."""
    from taem_jax.models import pretrained  # pylint: disable=g-import-not-at-top
    model.generator.eval()
    written = [pretrained.save_pretrained(model.generator, dst, family="wav2lip",
                                          config=model.generator.get_config(),
                                          overwrite=overwrite, extra_meta=_export_meta(step))]
    if model.disc is not None:
      written.append(pretrained.save_pretrained(
          model.disc, f"{os.fspath(dst).rstrip('/')}_disc", family="disc_qual",
          config=model.disc.get_config(), overwrite=overwrite, extra_meta=_export_meta(step)))
    return written


@nnx.jit
def _render(generator: Wav2Lip, indiv_mels, window_input):
  """Shapes: indiv_mels (n, 5, 80, 16, 1); window_input (n, 5, 96, 96, 6) uint8 -> floats."""
  n, t = window_input.shape[:2]
  x = window_input.astype(jnp.float32).reshape(n * t, FACE, FACE, 6) / 255.0
  out = generator(indiv_mels.reshape(n * t, *indiv_mels.shape[2:]), x)
  return out.reshape(n, t, FACE, FACE, 3)


# -- synthetic clips (tests, smoke runs) -----------------------------------------------------

def synthetic_clips(n: int, *, frames: int = 24, visemes: int = 6, seed: int = 0
                    ) -> dict[str, np.ndarray]:
  """n clips whose mouth opening and audio spectrum follow the same hidden viseme sequence.

  Each clip has a random background and upper-face colour (its "speaker"); each video frame
  shows one viseme (runs of 1-4 frames): a dark mouth box whose height grows with the viseme
  id. The mel spectrogram (80 fps, 3.2 rows per video frame) holds a fixed random spectrum
  per viseme plus noise, cut into windows with the real `audio.mel_windows`. So the expert can
  learn sync and the generator can learn to draw the mouth from the audio.

  Shapes:
    faces (n, frames, 96, 96, 3) uint8; mel_windows (n, frames, 80, 16, 1) float32;
    n_frames (n,) int32; valid (n,) bool; index (n,) int32; visemes (n, frames) int32.
  """
  from taem_jax import audio  # pylint: disable=g-import-not-at-top
  rs = np.random.RandomState(seed)
  spectra = rs.uniform(-3.5, 2.0, (visemes, audio.N_MELS)).astype(np.float32)
  out = {
      "faces": np.zeros((n, frames, FACE, FACE, 3), np.uint8),
      "mel_windows": np.zeros((n, frames, audio.N_MELS, 16, 1), np.float32),
      "n_frames": np.full((n,), frames, np.int32),
      "valid": np.ones((n,), bool),
      "index": np.arange(n, dtype=np.int32),
      "visemes": np.zeros((n, frames), np.int32),
  }
  yy = np.arange(FACE)[:, None]
  xx = np.arange(FACE)[None, :]
  for i in range(n):
    seq = []
    while len(seq) < frames:
      seq += [rs.randint(visemes)] * rs.randint(1, 5)
    seq = np.array(seq[:frames])
    out["visemes"][i] = seq
    bg = rs.randint(40, 200, 3)
    skin = rs.randint(90, 240, 3)
    face_box = (np.abs(yy - 50) < 40) & (np.abs(xx - 48) < 32)
    for f, v in enumerate(seq):
      img = np.empty((FACE, FACE, 3), np.float32)
      img[:] = bg
      img[face_box] = skin
      img[(np.abs(yy - 30) < 4) & (np.abs(np.abs(xx - 48) - 14) < 5)] = 30  # eyes
      half_h = 1 + 2 * v
      img[(np.abs(yy - 70) <= half_h) & (np.abs(xx - 48) < 14)] = (20, 20, 90)  # mouth
      img += rs.randn(FACE, FACE, 3) * 3.0
      out["faces"][i, f] = np.clip(img, 0, 255).astype(np.uint8)
    n_mel = int(np.ceil(frames * audio.MEL_FPS / 25.0)) + 16
    row_frame = np.minimum((np.arange(n_mel) * 25.0 / audio.MEL_FPS).astype(int), frames - 1)
    mel = spectra[seq[row_frame]] + 0.3 * rs.randn(n_mel, audio.N_MELS).astype(np.float32)
    out["mel_windows"][i] = audio.mel_windows(np.clip(mel, -4, 4), frames)
  return out


# -- config -> (task, data) ------------------------------------------------------------------

def _sampler(config, held_out: bool) -> Callable:
  s, data = config.sampling, config.data
  k = int(data.windows_per_clip)
  if held_out and data.get("eval_windows_per_clip", 0):
    k = int(data.eval_windows_per_clip)
  if config.task == "expert":
    return lambda batch, rng: expert_samples(  # noqa: E731
        batch, rng, windows_per_clip=k, min_offset=s.min_offset)
  return lambda batch, rng: generator_samples(  # noqa: E731
      batch, rng, windows_per_clip=k, audio_shift=s.audio_shift,
      min_ref_offset=s.min_ref_offset)


def make_task(config):
  """ExpertTask or Wav2LipTask from an experiments/configs/wav2lip_*.py config."""
  if config.task == "expert":
    return ExpertTask(width=float(config.model.width))
  if config.task == "wav2lip":
    lc = config.loss
    loss_cfg = GeneratorLossConfig(
        sync_weight=float(lc.sync_weight), sync_threshold=float(lc.sync_threshold),
        sync_ema_decay=float(lc.sync_ema_decay), gan=bool(lc.gan),
        disc_weight=float(lc.disc_weight), expert_bn=str(config.expert.bn))
    expert_dir = str(config.expert.dir or "")
    if expert_dir and not pathlib.Path(expert_dir).expanduser().exists():
      raise UserError(f"config.expert.dir={expert_dir} does not exist; train the expert with "
                      "experiments/configs/wav2lip_expert.py and --export=DIR first")
    return Wav2LipTask(
        generator={"width": float(config.model.width), "convt_impl": str(config.model.convt_impl),
                   "min_channels": int(config.model.get("min_channels", 1))},
        expert={"width": float(config.expert.width)}, loss_config=loss_cfg,
        disc={"width": float(config.model.disc_width)} if lc.gan else None,
        expert_dir=expert_dir)
  raise ValueError(f"not a Wav2Lip task: {config.task!r}")


def build(config, mesh, *, dataset_dir: str | os.PathLike | None = None
          ) -> tuple[Any, WindowIterator, Callable[[], WindowIterator]]:
  """(task, train iterator, eval-iterator factory) for a wav2lip_expert / wav2lip_gen config.

  Args:
    dataset_dir: the built dataset (taem_task.prepared_dataset_dir); unused for 'synthetic'.
  """
  from taem_jax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  data = config.data
  local_clips = mesh_lib.local_batch_size(data.batch_size, mesh)
  task = make_task(config)
  sampler, eval_sampler = _sampler(config, False), _sampler(config, True)
  if data.dataset == "synthetic":
    from taem_jax.train import toy  # pylint: disable=g-import-not-at-top
    clips = synthetic_clips(data.num_train + data.num_eval, frames=data.num_frames,
                            seed=config.seed)
    train = {k: v[:data.num_train] for k, v in clips.items()}
    held = {k: v[data.num_train:] for k, v in clips.items()}
    it = WindowIterator(toy.toy_iterator(train, data.batch_size, seed=config.seed), sampler,
                        config.seed)
    evals = lambda: WindowIterator(  # noqa: E731
        toy.toy_iterator(held, data.batch_size, seed=0, shuffle=False, repeat=False),
        eval_sampler, config.seed + 1)
    return task, it, evals

  from taem_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  if dataset_dir is None:
    raise ValueError(f"dataset {data.dataset!r} needs dataset_dir (see prepared_dataset_dir)")
  train_cfg = pipeline.PipelineConfig(
      batch_size=local_clips, buckets=tuple(tuple(b) for b in data.buckets), seed=config.seed,
      decode_faces=True, with_za=False, worker_count=data.worker_count)
  train_src = pipeline.open_split(dataset_dir, data.train_split)
  it = WindowIterator(pipeline.make_iterator(train_src, train_cfg), sampler, config.seed)
  eval_src = pipeline.open_split(dataset_dir, data.eval_split)
  eval_cfg = dataclasses.replace(train_cfg, shuffle=False, num_epochs=1, drop_remainder=False,
                                 worker_count=0)
  evals = lambda: WindowIterator(pipeline.make_iterator(eval_src, eval_cfg),  # noqa: E731
                                 eval_sampler, config.seed + 1)
  return task, it, evals
