"""TAEM as a trainer task: what is trained, against which target, with which loss, on what data.

The model the trainer holds is `TAEMTrainModel`: the TAEM text encoder (trainable) plus, when
the dataset does not store z_a, the Wav2Lip generator whose audio encoder computes z_a on the
fly (frozen: excluded from the optimizer by `TAEMTask.trainable`, held in BatchNorm eval mode,
and wrapped in stop-gradient by `Wav2LipTarget`). Keeping both in one module keeps the frozen
weights in the checkpoint, so a workdir is self-contained.

`recipe(config, dataset_dir)` turns an experiments/configs/*.py config into the task and the
way its data is read (`taem_jax.train.tasks.build` makes the iterators); `TAEMTask.export`
writes the trained TAEM as a `taem_checkpoint` directory that synthesis loads.

What a person watches: `TAEMTask.eval_metrics` (held-out L_dis with teacher and with predicted
durations, the duration predictor's error in frames) and `TAEMTask.samples` (a held-out clip
rendered from its text next to its ground truth and to Wav2Lip from its real audio).
"""
from __future__ import annotations

import dataclasses
import pathlib
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from taem_jax.data import pipeline
from taem_jax.data.synthetic import synthetic_arrays, synthetic_clips, synthetic_vocab
from taem_jax.data.windows import WINDOW, WindowIterator, generator_input, generator_samples
from taem_jax.errors import UserError
from taem_jax.face.crop import to_uint8
from taem_jax.models import load_pretrained, pretrained
from taem_jax.models.syncnet import SyncNetColor
from taem_jax.models.taem import TAEM, TAEMConfig, predicted_durations
from taem_jax.models.taem_checkpoint import save_taem
from taem_jax.models.targets import (DEFAULT_BACKBONE, backbone_class, check_backbone,
                                     check_pairing, frozen_call)
from taem_jax.models.wav2lip import Wav2Lip
from taem_jax.rates import FACE_SIZE, Z_DIM
from taem_jax.synthesis import runner
from taem_jax.text import PhonemeVocab
from taem_jax.train import checkpoint, losses
from taem_jax.train.tasks.recipe import Recipe


class TAEMTrainModel(nnx.Module):
  """TAEM + (optionally) the frozen Wav2Lip that defines its target (+ the frozen expert).

  Args:
    taem_config: TAEM hyper-parameters.
    wav2lip_config: `Wav2Lip(**wav2lip_config)` keyword config, or None when z_a comes with
      every batch (datasets built with a `*_za` config).
    expert_config: `SyncNetColor(**expert_config)`, the lip-sync expert of the 'mse+task'
      objective's sync loss; None otherwise.
  """

  def __init__(self, taem_config: TAEMConfig, wav2lip_config: dict | None, *,
               expert_config: dict | None = None, rngs: nnx.Rngs):
    self.taem = TAEM(taem_config, rngs=rngs)
    self.wav2lip = nnx.data(None)  # a module or None: declared as data either way
    if wav2lip_config is not None:
      self.wav2lip = Wav2Lip(**wav2lip_config, rngs=rngs)
      self.wav2lip.eval()
    self.expert = nnx.data(None)
    if expert_config is not None:
      self.expert = SyncNetColor(**expert_config, rngs=rngs)
      self.expert.eval()


@dataclasses.dataclass
class TAEMTask:
  """L_dis (+ L_dur, + the Table 2 variants of `losses.LossConfig`) for TAEM.

  Batch fields used (see taem_jax/data/pipeline.py): phonemes, phoneme_mask, durations,
  n_frames, frame_mask, speaker, and z_a or mel_windows. The 'mse+task' objective also needs
  the 5-frame windows that `task_windows` cuts from the clips (window, reference, mel, start,
  weight): the frozen generator renders each window from the window's z_t (teacher-forced
  durations) and (masked real window | reference window), and `losses.task_loss` scores it
  with L1 and the frozen expert's sync loss. Wav2Lip and the expert stay in eval mode and
  outside the optimizer (`trainable`); `frozen_call` keeps gradients off their weights.

  The fields after `wav2lip_config` are what `export` records beside the weights: the phoneme
  vocabulary, the speaker embedder ({"kind", "dim"}), the frozen target ({"name",
  "latent_dim", "config"}, + "fingerprint" and "source" of the Wav2Lip whose z_a it learns:
  the dataset's record when z_a come from the dataset, else the loaded Wav2Lip's, computed at
  export), the dataset trained on and the run's config; `recipe` fills them from the dataset
  and the config. `allow_fingerprint_mismatch` lets `--init_from` name another Wav2Lip than
  the one that made the dataset's z_a (config.target.allow_fingerprint_mismatch). `renderer`
  is a pretrained Wav2Lip used only by `samples` when the model holds none (z_a cached in the
  dataset); `taem_jax.train.tasks.build_samples` loads it.
  """
  taem_config: TAEMConfig
  loss_config: losses.LossConfig
  wav2lip_config: dict | None = None
  vocab: PhonemeVocab | None = None
  speaker_embedding: dict | None = None
  target: dict | None = None
  dataset: dict | None = None
  run_config: dict | None = None
  allow_fingerprint_mismatch: bool = False
  z_a_dataset: str | None = None  # the built dataset whose stored z_a are the targets
  wav2lip_source: str | None = None  # the --init_from Wav2Lip, once loaded
  renderer: Any = None
  expert_config: dict | None = None  # SyncNetColor config ('mse+task' only)
  expert_dir: str = ""  # trained expert loaded by make_model ('mse+task'; empty: random)
  backbone: str = DEFAULT_BACKBONE  # the `targets.BACKBONES` name whose z_a TAEM learns

  # Only TAEM learns; Wav2Lip and the expert stay as loaded.
  trainable = nnx.All(nnx.Param, nnx.PathContains("taem"))

  def __post_init__(self):
    self.backbone = backbone_class(self.backbone).name
    if "task" in self.loss_config.terms:
      if self.wav2lip_config is None or self.expert_config is None:
        raise UserError("loss objective 'mse+task' renders faces with the frozen Wav2Lip and "
                        "scores them with the lip-sync expert: it needs both (set "
                        "config.target.expert_dir=DIR)")
    elif self.expert_config is not None or self.expert_dir:
      raise UserError(f"loss objective {self.loss_config.objective!r} uses no lip-sync expert; "
                      "drop config.target.expert_dir or choose 'mse+task'")

  def make_model(self, rngs: nnx.Rngs) -> TAEMTrainModel:
    model = TAEMTrainModel(self.taem_config, self.wav2lip_config,
                           expert_config=self.expert_config, rngs=rngs)
    if self.expert_dir:
      expert = load_pretrained(self.expert_dir, family="syncnet_color")
      if expert.get_config() != model.expert.get_config():
        raise UserError(f"config.target.expert_dir={self.expert_dir} holds an expert "
                        f"{expert.get_config()}, expected {model.expert.get_config()}")
      nnx.update(model.expert, nnx.state(expert))
      model.expert.eval()
    return model

  def _z_a(self, model: TAEMTrainModel, batch: Mapping[str, jax.Array]) -> jax.Array:
    if "z_a" in batch:
      return batch["z_a"]
    if model.wav2lip is None:
      raise ValueError("the batch has no z_a and the task has no Wav2Lip target")
    return backbone_class(self.backbone)(model.wav2lip).encode(batch["mel_windows"])

  def _forward(self, model, batch, *, deterministic: bool, teacher: bool = True):
    return model.taem(batch["phonemes"], batch["phoneme_mask"], batch["speaker"],
                      batch["durations"] if teacher else None, batch["n_frames"],
                      deterministic=deterministic, max_frames=batch["frame_mask"].shape[1])

  def task_term(self, model: TAEMTrainModel, z: jax.Array, batch: Mapping[str, jax.Array]
                ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """`losses.task_loss` on the batch's windows, rendered from TAEM's latents z (B, Lv, D).

    Windows are those of `task_windows` (N = B k, k windows per clip, row i from clip i // k).
    """
    gt = batch["window"].astype(jnp.float32) / 255.0  # (N, 5, 96, 96, 3)
    ref = batch["reference"].astype(jnp.float32) / 255.0
    k = gt.shape[0] // z.shape[0]
    zw = losses.take_windows(jnp.repeat(z, k, axis=0), batch["start"], WINDOW)  # (N, 5, D)
    mask = batch["weight"] > 0
    return losses.task_loss(zw, generator_input(gt, ref), gt, batch["mel"], mask,
                            decode_fn=frozen_call(model.wav2lip, "decode"),
                            expert_fn=frozen_call(model.expert),
                            sync_weight=self.loss_config.sync_weight)

  def loss(self, model: TAEMTrainModel, batch: Mapping[str, jax.Array], rng: jax.Array):
    del rng  # dropout draws from the model's own (per-step reseeded) streams
    out = self._forward(model, batch, deterministic=False)
    task, parts = None, {}
    if "task" in self.loss_config.terms:
      task, parts = self.task_term(model, out["z"], batch)
    total, metrics = losses.combine(self.loss_config, out, self._z_a(model, batch),
                                    batch["durations"], batch["phoneme_mask"],
                                    log_duration=self.taem_config.log_duration, task=task)
    metrics.update(parts)
    return total, metrics

  def eval_metrics(self, model: TAEMTrainModel, batch: Mapping[str, jax.Array]):
    """Held-out metrics under the training names (so train and eval curves overlay) plus:

    mse_predicted_durations: L_dis with predicted durations fitted to the clip length.
    duration_mae_frames, length_error_frames, length_error_ratio: see `duration_errors`.
    """
    z_a = self._z_a(model, batch)
    out = self._forward(model, batch, deterministic=True)
    task, parts = (self.task_term(model, out["z"], batch) if "task" in self.loss_config.terms
                   else (None, {}))
    _, metrics = losses.combine(self.loss_config, out, z_a, batch["durations"],
                                batch["phoneme_mask"], log_duration=self.taem_config.log_duration,
                                task=task)
    metrics.update(parts)
    metrics["loss"] = metrics["total"]  # the trainer names the training total 'loss'
    # Inference conditions: predicted durations fitted to the clip length.
    pred = self._forward(model, batch, deterministic=True, teacher=False)
    metrics["mse_predicted_durations"] = losses.latent_mse(pred["z"], z_a, pred["frame_mask"])
    metrics.update(duration_errors(out["log_dur_pred"], batch["phonemes"],
                                   batch["phoneme_mask"], batch["durations"], self.taem_config))
    return metrics

  def samples(self, model: TAEMTrainModel, batch: Mapping[str, np.ndarray]
              ) -> dict[str, np.ndarray]:
    """The first clip of `batch` side by side: ground truth | Wav2Lip from the clip's audio |
    TAEM from the clip's text, through the frozen generator (the model's, else `renderer`).

    TAEM runs as at inference: phonemes + speaker only, its own rounded predicted durations
    setting the length, so a clip TAEM makes too long or too short shows as one column ending
    before the others (black after a column's end; past the clip's end the face crops cycle).
    Returns {} (nothing to show) when there is no generator, the batch has no face crops, or
    the run spans several processes (the weights are not all on this host).

    Shapes:
      batch: a pipeline batch with faces (B, Lv, 96, 96, 3) BGR uint8 and mel_windows
        (B, Lv, 80, 16, 1) (the audio column is black without them).
      returns {"clip": (1, T, 96, 3 * 96, 3) uint8 RGB}, T = max(clip frames, TAEM frames).
    """
    generator = model.wav2lip if model.wav2lip is not None else self.renderer
    if generator is None or "faces" not in batch or jax.process_count() > 1:
      return {}
    b = {k: np.asarray(v)[:1] for k, v in batch.items()}
    n = max(int(b["n_frames"][0]), 1)
    faces = b["faces"][0, :n]
    # Twice the clip's bucket bounds what a badly trained predictor can ask for.
    z, frame_mask = _text_latents(model.taem, jnp.asarray(b["phonemes"]),
                                  jnp.asarray(b["phoneme_mask"]), jnp.asarray(b["speaker"]),
                                  2 * b["frame_mask"].shape[1])
    m = int(np.sum(np.asarray(frame_mask[0])))
    t = max(n, m)
    faces6 = backbone_class(self.backbone).prepare_faces(faces[np.arange(t) % n])
    columns = [faces, None, None]
    if "mel_windows" in b:
      columns[1] = runner.run_batched(generator, b["mel_windows"][0, :n], faces6[:n])
    if m:
      columns[2] = runner.run_batched(generator, np.asarray(z[0, :m]), faces6[:m],
                                      method="decode")
    clip = np.zeros((t, FACE_SIZE, 3 * FACE_SIZE, 3), np.uint8)
    for j, col in enumerate(columns):
      if col is not None:
        clip[:len(col), :, j * FACE_SIZE:(j + 1) * FACE_SIZE] = to_uint8(col)
    return {"clip": clip[None, ..., ::-1].copy()}  # BGR -> RGB

  def load_init(self, model: TAEMTrainModel, path: str) -> None:
    """`--init_from`: a converted Wav2Lip directory (target) or a TAEM training workdir."""
    p = pathlib.Path(path).expanduser()
    if (p / "checkpoints").is_dir() or (p.name == "checkpoints" and p.is_dir()):
      checkpoint.load_model_weights(model, p / "checkpoints" if p.name != "checkpoints" else p)
      return
    if model.wav2lip is None and self.z_a_dataset is None:
      raise UserError(f"--init_from={path} is a Wav2Lip checkpoint, but this run reads z_a "
                      "from the dataset and has no Wav2Lip to initialise; drop --init_from")
    loaded = backbone_class(self.backbone).load(p)
    w2l = loaded.model
    if self.z_a_dataset is not None:
      # z_a come from the dataset: the --init_from Wav2Lip (the TAEM's target, or for mse+task
      # also the generator it trains through) must be the one that made them.
      check_pairing(self.target, loaded.record(path), made=f"dataset {self.z_a_dataset}",
                    loaded=f"--init_from Wav2Lip {path}", force=self.allow_fingerprint_mismatch,
                    force_hint="set --config.target.allow_fingerprint_mismatch=True")
    if model.wav2lip is None:
      return
    if w2l.get_config() != model.wav2lip.get_config():
      raise UserError(f"--init_from={path} holds Wav2Lip {w2l.get_config()}, but the config "
                      f"asks for {model.wav2lip.get_config()} (config.target.wav2lip_width / "
                      "wav2lip_min_channels)")
    nnx.update(model.wav2lip, nnx.state(w2l))
    model.wav2lip.eval()
    self.wav2lip_source = str(path)

  def export(self, model: TAEMTrainModel, dst, *, step: int | None = None,
             overwrite: bool = False) -> list[str]:
    """Writes a TAEM directory (`taem_checkpoint.load_taem` reads it); returns [dst].

    Besides the weights it records the vocabulary, speaker embedder, target (with the
    fingerprint of the audio encoder whose z_a it learned) and {"objective": the loss
    objective, "step": `step`, "dataset", "config"}.
    """
    if self.vocab is None or self.speaker_embedding is None:
      raise UserError("this TAEM task does not know its phoneme vocabulary and speaker "
                      "embedder (build it with taem_jax.train.tasks.build) and cannot export")
    target = self.target
    if model.wav2lip is not None and self.z_a_dataset is None:  # z_a computed on the fly
      target = dict(target or {"name": self.backbone,
                               "latent_dim": self.taem_config.latent_dim,
                               "config": self.wav2lip_config})
      target.update(fingerprint=backbone_class(self.backbone)(model.wav2lip).fingerprint(),
                    source=self.wav2lip_source)
    training = {"objective": self.loss_config.objective, "step": step}
    if self.dataset is not None:
      training["dataset"] = dict(self.dataset)
    if self.run_config is not None:
      training["config"] = self.run_config
    return [save_taem(model.taem, dst, vocab=self.vocab,
                      speaker_embedding=self.speaker_embedding, target=target,
                      training=training, overwrite=overwrite)]


def duration_errors(log_dur_pred: jax.Array, phonemes: jax.Array, phoneme_mask: jax.Array,
                    durations: jax.Array, config: TAEMConfig) -> dict[str, jax.Array]:
  """The duration predictor's error in 100 fps frames, after the rounding inference uses.

  duration_mae_frames: mean |predicted - true| frames over real phonemes.
  length_error_frames: mean over utterances of |sum predicted - sum true| frames.
  length_error_ratio: the same divided by each utterance's true length.
  Rows without phonemes (filler rows of a padded batch) count in neither.

  Shapes: log_dur_pred, phonemes, phoneme_mask, durations (B, l_t) -> scalars.
  """
  mask = phoneme_mask.astype(bool)
  _, rounded, _ = predicted_durations(log_dur_pred, phonemes, mask, config)
  true = jnp.where(mask, durations, 0).astype(jnp.float32)
  pred = jnp.where(mask, rounded, 0).astype(jnp.float32)
  rows = jnp.any(mask, axis=1)
  total_true, total_err = jnp.sum(true, axis=1), jnp.abs(jnp.sum(pred - true, axis=1))
  return {"duration_mae_frames": losses.masked_mean(jnp.abs(pred - true), mask),
          "length_error_frames": losses.masked_mean(total_err, rows),
          "length_error_ratio": losses.masked_mean(total_err / jnp.maximum(total_true, 1.0),
                                                   rows)}


@nnx.jit(static_argnums=4)
def _text_latents(taem: TAEM, phonemes, phoneme_mask, speaker, max_frames: int):
  """TAEM from text alone (predicted durations, no length given), compiled once per shape.

  Shapes: phonemes, phoneme_mask (B, l_t); speaker (B, S) -> z (B, max_frames, D),
  frame_mask (B, max_frames).
  """
  out = taem(phonemes, phoneme_mask, speaker, None, None, deterministic=True,
             max_frames=max_frames)
  return out["z"], out["frame_mask"]


# -- config -> (task, data) ------------------------------------------------------------------

def taem_config_from(config, *, speaker_dim: int, vocab=None,
                     vocab_size: int | None = None) -> TAEMConfig:
  """TAEMConfig from `config.model` (paper defaults or `tiny`) + the dataset's vocab/embedder.

  Args:
    vocab: the dataset's `PhonemeVocab` (sets vocab_size and the pause ids), or None with
      `vocab_size` for synthetic data.
  """
  fields = dict(config.model.to_dict())
  tiny = fields.pop("tiny", False)
  if vocab is not None:
    from_vocab = TAEMConfig.from_vocab(vocab)
    fields.update(vocab_size=from_vocab.vocab_size, pause_ids=from_vocab.pause_ids)
  else:
    fields.update(vocab_size=int(vocab_size))
  fields["speaker_dim"] = int(speaker_dim)
  for k in ("ffn_kernels", "pause_ids"):
    if k in fields:
      fields[k] = tuple(fields[k])
  return TAEMConfig.tiny(**fields) if tiny else TAEMConfig(**fields)


def _loss_config(config) -> losses.LossConfig:
  return losses.LossConfig(**config.loss.to_dict())


def _wav2lip_config(config, with_za: bool) -> dict | None:
  backbone = backbone_class(config.target.get("backbone", DEFAULT_BACKBONE)).name
  if backbone != "wav2lip" and ("task" in _loss_config(config).terms or config.target.z_a == "wav2lip"
                                or not with_za):
    # The model computes z_a on the fly and renders for the task loss with a Wav2Lip only.
    raise UserError(f"the {backbone} backbone trains TAEM on z_a stored in the dataset with the "
                    f"'mse' or contrastive objectives: build it with a *_za config and "
                    f"config.target.wav2lip_dir=<converted {backbone} directory> "
                    "(--config.data.builder_config=dlib_za)")
  if "task" in _loss_config(config).terms:
    return target_wav2lip_config(config.target)  # the task loss renders with the generator
  mode = config.target.z_a
  if mode not in ("auto", "dataset", "wav2lip"):
    raise UserError(f"config.target.z_a must be auto, dataset or wav2lip, got {mode!r}")
  if mode == "dataset" and not with_za:
    raise UserError("config.target.z_a='dataset' but the dataset stores no z_a; build it with "
                    "a *_za config (experiments/build_dataset.py --config dlib_za) or set "
                    "config.target.z_a='wav2lip'")
  if mode == "dataset" or (mode == "auto" and with_za):
    return None
  return target_wav2lip_config(config.target)


def target_wav2lip_config(target) -> dict:
  """The frozen Wav2Lip's keyword config from a config's `target` section (dict or ConfigDict).

  Matches `Wav2Lip.get_config()` of the generator it was trained against (convt_impl aside).
  """
  cfg = {"width": float(target.get("wav2lip_width", 1.0))}
  floor = int(target.get("wav2lip_min_channels", 1))
  if floor > 1:
    cfg["min_channels"] = floor
  return cfg


def expert_of(config) -> tuple[dict | None, str]:
  """(SyncNetColor config, directory) of the 'mse+task' objective's expert; (None, '') else.

  The expert is `config.target.expert_dir` (an exported or converted 'syncnet_color'
  directory); its width is read from the directory.
  """
  loss_cfg = _loss_config(config)
  expert_dir = str(config.target.get("expert_dir", "") or "")
  if "task" not in loss_cfg.terms:
    if expert_dir:
      raise UserError(f"config.target.expert_dir is only used by loss objective 'mse+task' "
                      f"(this config trains {loss_cfg.objective!r}); drop it")
    return None, ""
  if not expert_dir:
    raise UserError("loss objective 'mse+task' needs the lip-sync expert: pass "
                    "--config.target.expert_dir=DIR (an experiments/configs/wav2lip_expert.py "
                    "export or a converted lipsync_expert.pth)")
  meta = pretrained.read_sidecar(expert_dir)
  if meta.get("family") != "syncnet_color":
    raise UserError(f"config.target.expert_dir={expert_dir} holds a {meta.get('family')} "
                    "checkpoint, expected a syncnet_color (lip-sync expert) one")
  return {"width": float(meta.get("config", {}).get("width", 1.0))}, expert_dir


def task_windows(config) -> Callable[[Any, bool], Any]:
  """`Recipe.wrap` of the 'mse+task' objective: clip batches + the task loss' windows.

  Each clip gives `config.loss.task_windows` random 5-frame windows and a reference window
  (`taem_jax.data.windows.generator_samples`, audio_shift 0: frame j is rendered from z_t[j],
  as at inference); the decoded face frames are then dropped from the batch, so only the
  windows reach the device. Held-out batches draw with their own seed (the same every pass).
  """
  k = int(config.loss.get("task_windows", 1))
  if k < 1:
    raise UserError(f"config.loss.task_windows must be >= 1, got {k}")

  def sample(batch, rng):
    out = {key: v for key, v in batch.items() if key != "faces"}
    win = generator_samples(batch, rng, windows_per_clip=k, audio_shift=0)
    out.update({key: win[key] for key in ("window", "reference", "mel", "start", "weight")})
    return out

  def wrap(batches, held_out: bool) -> WindowIterator:
    return WindowIterator(batches, sample, config.seed + (1 if held_out else 0))

  return wrap


def _task(config, taem_cfg: TAEMConfig, w2l: dict | None, vocab: PhonemeVocab,
          embedder: str, dataset: dict | None = None) -> TAEMTask:
  backbone = backbone_class(config.target.get("backbone", DEFAULT_BACKBONE)).name
  target = {"name": backbone, "latent_dim": taem_cfg.latent_dim,
            "config": target_wav2lip_config(config.target)}
  expert_cfg, expert_dir = expert_of(config)
  return TAEMTask(taem_cfg, _loss_config(config), w2l, vocab,
                  {"kind": embedder, "dim": taem_cfg.speaker_dim}, target, dataset=dataset,
                  run_config=config.to_dict(),
                  allow_fingerprint_mismatch=bool(
                      config.target.get("allow_fingerprint_mismatch", False)),
                  expert_config=expert_cfg, expert_dir=expert_dir, backbone=backbone)


def _dataset_target(config, task: TAEMTask, meta: dict, dataset_dir) -> None:
  """When z_a come from the dataset: record its Wav2Lip as the target, refuse another one.

  The dataset's record (`pipeline.z_a_target`) becomes the TAEM's target fingerprint; a
  `config.target.wav2lip_dir` naming another Wav2Lip (the one meant to build the dataset) is
  refused, as is a TAEM latent width that does not fit the stored z_a.
  """
  za = pipeline.z_a_target(meta)
  check_backbone(za, task.backbone, made=f"dataset {dataset_dir}")
  if int(za["latent_dim"]) != task.taem_config.latent_dim:
    raise UserError(f"{dataset_dir} stores {za['latent_dim']}-d z_a but the TAEM is "
                    f"{task.taem_config.latent_dim}-d: set --config.model.latent_dim="
                    f"{za['latent_dim']} (= 512 * config.target.wav2lip_width)")
  task.target.update(fingerprint=za["fingerprint"], source=za["source"])
  task.z_a_dataset = str(dataset_dir)
  w2l_dir = config.target.get("wav2lip_dir") or ""
  if w2l_dir:
    check_pairing(za, backbone_class(task.backbone).load(w2l_dir).record(w2l_dir),
                  made=f"dataset {dataset_dir}", loaded=f"config.target.wav2lip_dir {w2l_dir}",
                  force=task.allow_fingerprint_mismatch,
                  force_hint="set --config.target.allow_fingerprint_mismatch=True")


def recipe(config, dataset_dir) -> Recipe:
  """The TAEM task of a TAEM config and how its data is read (see `tasks.build`).

  Args:
    dataset_dir: the built dataset (`taem_jax.data.prepared.prepared_dataset_dir`); None for
      'synthetic' data.
  """
  data = config.data
  if data.dataset == "synthetic":
    spk_dim = int(config.model.get("speaker_dim", 128))
    latent = int(config.model.get("latent_dim", Z_DIM))
    taem_cfg = taem_config_from(config, vocab_size=data.vocab_size, speaker_dim=spk_dim)
    w2l = _wav2lip_config(config, with_za=config.target.z_a != "wav2lip")
    arrays = synthetic_arrays(data.num_train + data.num_eval, max_phonemes=data.max_phonemes,
                              max_frames=data.max_frames, vocab_size=data.vocab_size,
                              speaker_dim=spk_dim, latent_dim=latent, seed=config.seed,
                              with_mel=w2l is not None)
    if w2l is not None and config.target.z_a == "wav2lip":
      del arrays["z_a"]  # Wav2Lip computes it from the mel windows
    task = _task(config, taem_cfg, w2l, synthetic_vocab(data.vocab_size), "synthetic")
    if task.expert_config is None:
      return Recipe(task, arrays=arrays)
    # The task loss needs faces: synthetic clips' frames (unrelated to the phonemes: smoke only).
    arrays["faces"] = synthetic_clips(len(arrays["n_frames"]), frames=data.max_frames,
                                      seed=config.seed)["faces"]
    return Recipe(task, arrays=arrays, wrap=task_windows(config))

  meta = pipeline.dataset_metadata(dataset_dir)
  vocab = PhonemeVocab.from_json(meta["vocab"])
  taem_cfg = taem_config_from(config, vocab=vocab, speaker_dim=int(meta["embed_dim"]))
  dataset = {"name": data.dataset, **pipeline.dataset_identity(dataset_dir),
             "split": data.train_split}
  w2l = _wav2lip_config(config, meta["with_za"])
  task = _task(config, taem_cfg, w2l, vocab, meta["embedder"], dataset)
  # mse+task holds the generator even when z_a are read from the dataset.
  with_za = w2l is None or (task.expert_config is not None and meta["with_za"]
                            and config.target.z_a != "wav2lip")
  if with_za:
    _dataset_target(config, task, meta, dataset_dir)
  if task.expert_config is None:
    return Recipe(task, decode_faces=False, with_za=with_za)
  return Recipe(task, decode_faces=True, with_za=with_za, wrap=task_windows(config))
