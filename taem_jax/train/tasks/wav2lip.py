"""Wav2Lip itself as trainer tasks: the lip-sync expert (SyncNet_color) and the generator.

Two `taem_jax.train.trainer.Task`s, trained in this order:

* `ExpertTask`: SyncNet_color learns whether the lower halves of 5 consecutive face crops and a
  16-frame mel window (0.2 s) are in sync. Positives pair the window's frames with their own
  audio; negatives pair the audio with frames from elsewhere in the same clip (an offset of at
  least `min_offset` frames). Loss: BCE of the cosine similarity of the two embeddings.
* `Wav2LipTask`: the generator reconstructs a 5-frame window from (the window with its lower half
  masked | a reference window from elsewhere in the clip) and per-frame mel windows. Loss:
  (1 - w_sync - w_gan) L1 + w_sync L_sync (+ w_gan L_gan with the visual-quality discriminator
  when `gan`). L_sync runs the frozen expert on the generated lower halves; w_sync is 0 until
  the sync loss first drops below a threshold, as in the official scripts.

Samples are cut on the host from the data pipeline's clip batches by
`taem_jax.data.windows` (`expert_samples`, `generator_samples`, `WindowIterator`), whose random
draws are a pure function of (seed, step): resuming a run redraws exactly the same windows, and
every validation pass sees the same ones.

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
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from taem_jax.data.synthetic import synthetic_clips
from taem_jax.data.windows import (HALF, WINDOW, WindowIterator, expert_samples,
                                   generator_input, generator_samples)
from taem_jax.errors import UserError
from taem_jax.face.crop import to_uint8
from taem_jax.metrics.image import MOUTH_REGION, mouth_detail_ratio, region_slices
from taem_jax.models import load_pretrained, pretrained
from taem_jax.models.syncnet import SyncNetColor
from taem_jax.models.targets import frozen_call
from taem_jax.models.wav2lip import Wav2Lip, Wav2LipDiscQual
from taem_jax.rates import FACE_SIZE
from taem_jax.train import checkpoint, losses
from taem_jax.train.tasks.recipe import Recipe


# -- the expert ------------------------------------------------------------------------------

def _lips_input(lips: jax.Array, key: jax.Array | None = None) -> jax.Array:
  """uint8 lower halves (N, 5, 48, 96, 3) -> the expert's (N, 48, 96, 15) float in [0, 1]
  (jittered by `augment_lips` when a key is given)."""
  x = lips.astype(jnp.float32) / 255.0
  if key is not None:
    x = augment_lips(x, key)
  n, t, h, w, c = x.shape
  return jnp.transpose(x, (0, 2, 3, 1, 4)).reshape(n, h, w, t * c)


def augment_lips(lips: jax.Array, key: jax.Array, *, gain: float = 0.3,
                 brightness: float = 0.1) -> jax.Array:
  """Label-preserving jitter of expert inputs: the same random mirror, per-channel gain and
  brightness for all 5 frames of a pair, independently per pair.

  Lip sync does not depend on which way a face looks or on its colours, but a small expert
  trained on a dozen faces learns them: without this the demo expert reached 0.85 training
  accuracy but 0.66 on unseen faces, and rated true held-out windows as worse in sync (sync
  loss 1.13) than the generator's blurred output (0.29), which the generator then learned.

  Shapes: lips (N, 5, 48, 96, 3) float in [0, 1] -> the same, in [0, 1].
  """
  k_flip, k_gain, k_bright = jax.random.split(key, 3)
  n = lips.shape[0]
  flip = jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1, 1))
  x = jnp.where(flip, lips[:, :, :, ::-1], lips)
  g = jnp.exp(jax.random.uniform(k_gain, (n, 1, 1, 1, 3), minval=-gain, maxval=gain))
  b = jax.random.uniform(k_bright, (n, 1, 1, 1, 1), minval=-brightness, maxval=brightness)
  return jnp.clip(x * g + b, 0.0, 1.0)


def _load_into(model: nnx.Module, path, family: str, what: str) -> None:
  """Copies a `save_pretrained` directory or a training workdir's weights into `model`."""
  p = pathlib.Path(path).expanduser()
  if (p / "checkpoints").is_dir() or (p.name == "checkpoints" and p.is_dir()):
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
  With `augment`, training pairs are jittered by `augment_lips` (validation never is).
  """
  width: float = 1.0
  augment: bool = False

  trainable = nnx.Param

  def make_model(self, rngs: nnx.Rngs) -> SyncNetColor:
    model = SyncNetColor(width=self.width, rngs=rngs)
    model.train()
    return model

  @staticmethod
  def _metrics(model: SyncNetColor, batch, key: jax.Array | None = None
               ) -> dict[str, jax.Array]:
    audio, face = model(batch["mel"], _lips_input(batch["lips"], key))
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
    # The samples were drawn on the host; the key only jitters them.
    metrics = self._metrics(model, batch, rng if self.augment else None)
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
  # Extra L1 weight on the mouth region (`metrics.image.MOUTH_REGION` of the crop): the L1 term
  # is (l1 + m * l1_mouth) / (1 + m). 0 = official. The mouth is a small part of the frame, so
  # a plain L1 is nearly as low for a blurred average mouth as for the right one.
  mouth_weight: float = 0.0
  expert_bn: str = "batch"  # frozen expert's BatchNorm: 'batch' (official) or 'running'

  def __post_init__(self):
    if self.expert_bn not in ("batch", "running"):
      raise UserError(f"expert_bn must be 'batch' or 'running', got {self.expert_bn!r}")
    if self.sync_weight + (self.disc_weight if self.gan else 0.0) >= 1.0:
      raise UserError("sync_weight + disc_weight must stay below 1 (the rest weighs L1)")
    if self.mouth_weight < 0:
      raise UserError(f"mouth_weight must be >= 0, got {self.mouth_weight}")


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
  Metrics: l1, l1_mouth (the mouth region's), sync (expert BCE vs 1 on the generated window),
  sync_weight, gen_loss, and with the GAN: adv (generator's BCE(D(g), 1)), disc_real,
  disc_fake. Validation adds l1_lower,
  mouth_corr / mouth_amp (`mouth_motion`: does the mouth move with the true one, and how far)
  and mouth_detail (`metrics.mouth_detail_ratio`: the mouth region's Laplacian variance vs the
  truth's; 1 = as sharp).
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
    x = generator_input(gt, ref).reshape(n * t, FACE_SIZE, FACE_SIZE, 6)
    mels = batch["indiv_mels"].reshape(n * t, *batch["indiv_mels"].shape[2:])
    gen = model.generator(mels, x).reshape(gt.shape)
    mask = batch["weight"] > 0
    out = {"gen": gen, "gt": gt, "ref": ref, "mask": mask}
    err, m5 = jnp.abs(gen - gt), mask[:, None, None, None, None]
    out["l1"] = losses.masked_mean(err, m5)
    rows, cols = region_slices(FACE_SIZE, FACE_SIZE, MOUTH_REGION)
    out["l1_mouth"] = losses.masked_mean(err[:, :, rows, cols], m5)
    audio, face = frozen_call(model.expert)(batch["mel"], losses.lower_half_stack(gen))
    out["sync"] = losses.sync_loss(audio, face, mask)
    return out

  def loss(self, model: Wav2LipTrainModel, batch, rng: jax.Array):
    del rng
    cfg = self.loss_config
    out = self._forward(model, batch)
    sync_on = model.sync_on.get_value()
    sync_w = sync_on * cfg.sync_weight  # this step uses the switch as it was before it
    sync = out["sync"]
    metrics = {"l1": out["l1"], "l1_mouth": out["l1_mouth"], "sync": sync,
               "sync_weight": sync_w}
    l1 = (out["l1"] + cfg.mouth_weight * out["l1_mouth"]) / (1.0 + cfg.mouth_weight)
    gen_loss = sync_w * sync
    l1_w = 1.0 - sync_w
    total_extra = 0.0
    if cfg.gan:
      flat = lambda x: x.reshape(-1, FACE_SIZE, FACE_SIZE, 3)  # noqa: E731
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
    metrics = {"l1": out["l1"], "sync": out["sync"], "l1_mouth": out["l1_mouth"],
               "l1_lower": losses.masked_mean(err, lower)}
    metrics["mouth_corr"], metrics["mouth_amp"] = mouth_motion(out["gen"], out["gt"], out["ref"],
                                                               out["mask"])
    # Sharpness of the generated mouth vs the truth's (a blurred mouth keeps ~0.1).
    metrics["mouth_detail"] = mouth_detail_ratio(out["gen"], out["gt"], out["mask"])
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
            to_uint8(gen), sub["window"]]
    grid = np.stack(rows, axis=1)  # (n, 4, 5, 96, 96, 3)
    n = grid.shape[0]
    grid = grid.transpose(0, 1, 3, 2, 4, 5).reshape(n, 4 * FACE_SIZE, WINDOW * FACE_SIZE, 3)
    return {"windows": np.ascontiguousarray(grid[..., ::-1])}  # BGR -> RGB

  def load_init(self, model: Wav2LipTrainModel, path: str) -> None:
    """`--init_from`: comma-separated Wav2Lip / discriminator dirs, or a generator workdir."""
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
  x = window_input.astype(jnp.float32).reshape(n * t, FACE_SIZE, FACE_SIZE, 6) / 255.0
  out = generator(indiv_mels.reshape(n * t, *indiv_mels.shape[2:]), x)
  return out.reshape(n, t, FACE_SIZE, FACE_SIZE, 3)


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
    return ExpertTask(width=float(config.model.width),
                      augment=bool(config.data.get("augment", False)))
  if config.task == "wav2lip":
    lc = config.loss
    loss_cfg = GeneratorLossConfig(
        sync_weight=float(lc.sync_weight), sync_threshold=float(lc.sync_threshold),
        sync_ema_decay=float(lc.sync_ema_decay), gan=bool(lc.gan),
        disc_weight=float(lc.disc_weight), mouth_weight=float(lc.get("mouth_weight", 0.0)),
        expert_bn=str(config.expert.bn))
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


def recipe(config, dataset_dir) -> Recipe:
  """The expert or generator task of a wav2lip_expert / wav2lip_gen config and its data.

  Clip batches (synthetic, or read from the built dataset by `tasks.build`) become training
  windows through `WindowIterator`; held-out ones use `eval_windows_per_clip` and their own
  seed, so every validation pass sees the same windows.

  Args:
    dataset_dir: unused (the clips are read by `tasks.build`).
  """
  del dataset_dir
  data = config.data
  task = make_task(config)
  sampler, eval_sampler = _sampler(config, False), _sampler(config, True)

  def wrap(batches, held_out: bool) -> WindowIterator:
    if held_out:
      return WindowIterator(batches, eval_sampler, config.seed + 1)
    return WindowIterator(batches, sampler, config.seed)

  arrays = None
  if data.dataset == "synthetic":
    arrays = synthetic_clips(data.num_train + data.num_eval, frames=data.num_frames,
                             seed=config.seed)
  return Recipe(task, arrays=arrays, decode_faces=True, with_za=False, wrap=wrap)
