"""TAEM as a trainer task: what is trained, against which target, with which loss, on what data.

The model the trainer holds is `TAEMTrainModel`: the TAEM text encoder (trainable) plus, when
the dataset does not store z_a, the Wav2Lip generator whose audio encoder computes z_a on the
fly (frozen: excluded from the optimizer by `TAEMTask.trainable`, held in BatchNorm eval mode,
and wrapped in stop-gradient by `Wav2LipTarget`). Keeping both in one module keeps the frozen
weights in the checkpoint, so a workdir is self-contained.

`build(config, mesh, ...)` turns an experiments/configs/*.py config into (task, train iterator,
eval-iterator factory) for `taem_jax.train.trainer.Trainer`.
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
from taem_jax.models.taem import MEL_FRAMES_PER_VIDEO_FRAME, TAEM, TAEMConfig
from taem_jax.models.targets import Wav2LipTarget
from taem_jax.train import losses


class TAEMTrainModel(nnx.Module):
  """TAEM + (optionally) the frozen Wav2Lip that defines its target.

  Args:
    taem_config: TAEM hyper-parameters.
    wav2lip_config: `Wav2Lip(**wav2lip_config)` keyword config, or None when z_a comes with
      every batch (datasets built with a `*_za` config).
  """

  def __init__(self, taem_config: TAEMConfig, wav2lip_config: dict | None, *,
               rngs: nnx.Rngs):
    self.taem = TAEM(taem_config, rngs=rngs)
    self.wav2lip = nnx.data(None)  # a module or None: declared as data either way
    if wav2lip_config is not None:
      from taem_jax.models.wav2lip import Wav2Lip  # pylint: disable=g-import-not-at-top
      self.wav2lip = Wav2Lip(**wav2lip_config, rngs=rngs)
      self.wav2lip.eval()


@dataclasses.dataclass
class TAEMTask:
  """L_dis (+ L_dur, + the Table 2 variants of `losses.LossConfig`) for TAEM.

  Batch fields used (see taem_jax/data/pipeline.py): phonemes, phoneme_mask, durations,
  n_frames, frame_mask, speaker, and z_a or mel_windows.
  """
  taem_config: TAEMConfig
  loss_config: losses.LossConfig
  wav2lip_config: dict | None = None

  # Only TAEM learns; Wav2Lip stays as loaded.
  trainable = nnx.All(nnx.Param, nnx.PathContains("taem"))

  def __post_init__(self):
    if "task" in self.loss_config.terms:
      raise UserError("loss objective 'mse+task' (Wav2Lip L1 + sync loss through the frozen "
                      "generator) is not wired into the trainer yet; use 'mse', 'contrastive' "
                      "or 'mse+contrastive'")

  def make_model(self, rngs: nnx.Rngs) -> TAEMTrainModel:
    return TAEMTrainModel(self.taem_config, self.wav2lip_config, rngs=rngs)

  def _z_a(self, model: TAEMTrainModel, batch: Mapping[str, jax.Array]) -> jax.Array:
    if "z_a" in batch:
      return batch["z_a"]
    if model.wav2lip is None:
      raise ValueError("the batch has no z_a and the task has no Wav2Lip target")
    return Wav2LipTarget(model.wav2lip).encode(batch["mel_windows"])

  def _forward(self, model, batch, *, deterministic: bool, teacher: bool = True):
    return model.taem(batch["phonemes"], batch["phoneme_mask"], batch["speaker"],
                      batch["durations"] if teacher else None, batch["n_frames"],
                      deterministic=deterministic, max_frames=batch["frame_mask"].shape[1])

  def loss(self, model: TAEMTrainModel, batch: Mapping[str, jax.Array], rng: jax.Array):
    del rng  # dropout draws from the model's own (per-step reseeded) streams
    out = self._forward(model, batch, deterministic=False)
    total, metrics = losses.combine(self.loss_config, out, self._z_a(model, batch),
                                    batch["durations"], batch["phoneme_mask"],
                                    log_duration=self.taem_config.log_duration)
    return total, metrics

  def eval_metrics(self, model: TAEMTrainModel, batch: Mapping[str, jax.Array]):
    z_a = self._z_a(model, batch)
    out = self._forward(model, batch, deterministic=True)
    _, metrics = losses.combine(self.loss_config, out, z_a, batch["durations"],
                                batch["phoneme_mask"], log_duration=self.taem_config.log_duration)
    # Inference conditions: predicted durations fitted to the clip length.
    pred = self._forward(model, batch, deterministic=True, teacher=False)
    metrics["mse_predicted_durations"] = losses.latent_mse(pred["z"], z_a, pred["frame_mask"])
    return metrics

  def load_init(self, model: TAEMTrainModel, path: str) -> None:
    """`--init_from`: a converted Wav2Lip directory (target) or a TAEM training workdir."""
    p = pathlib.Path(path).expanduser()
    if (p / "checkpoints").is_dir() or (p.name == "checkpoints" and p.is_dir()):
      from taem_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
      checkpoint.load_model_weights(model, p / "checkpoints" if p.name != "checkpoints" else p)
      return
    from taem_jax.models import load_pretrained  # pylint: disable=g-import-not-at-top
    if model.wav2lip is None:
      raise UserError(f"--init_from={path} is a Wav2Lip checkpoint, but this run reads z_a "
                      "from the dataset and has no Wav2Lip to initialise; drop --init_from")
    w2l = load_pretrained(p, family="wav2lip")
    if w2l.get_config() != model.wav2lip.get_config():
      raise UserError(f"--init_from={path} holds Wav2Lip {w2l.get_config()}, but the config "
                      f"asks for {model.wav2lip.get_config()} (config.target.wav2lip_width / "
                      "wav2lip_min_channels)")
    nnx.update(model.wav2lip, nnx.state(w2l))
    model.wav2lip.eval()


# -- synthetic data (tests, smoke runs) ------------------------------------------------------

def synthetic_arrays(n: int, *, max_phonemes: int, max_frames: int, vocab_size: int,
                     speaker_dim: int, latent_dim: int, seed: int = 0,
                     with_mel: bool = False) -> dict[str, np.ndarray]:
  """n padded TAEM examples whose z_a is a learnable function of the phonemes.

  Each phoneme id p lasts 4 (1 + p mod 3) mel frames, i.e. whole video frames (so L_dur can be
  learned and every video frame hears one phoneme), and z_a at video frame f is a fixed random
  vector of the phoneme sounding in it, times a speaker-dependent gain.

  With `with_mel`, `mel_windows` holds a fixed random (80, 16) pattern per phoneme at each
  frame (-4 = silence after the end), for runs where Wav2Lip computes z_a.

  Shapes:
    phonemes, phoneme_mask, durations (n, max_phonemes); n_frames (n,); frame_mask (n,
    max_frames); speaker (n, speaker_dim); z_a (n, max_frames, latent_dim); index (n,);
    mel_windows (n, max_frames, 80, 16, 1) if with_mel.
  """
  rs = np.random.RandomState(seed)
  table = rs.randn(vocab_size, latent_dim).astype(np.float32)
  r = MEL_FRAMES_PER_VIDEO_FRAME
  out = {
      "phonemes": np.zeros((n, max_phonemes), np.int32),
      "phoneme_mask": np.zeros((n, max_phonemes), bool),
      "durations": np.zeros((n, max_phonemes), np.int32),
      "n_frames": np.zeros((n,), np.int32),
      "frame_mask": np.zeros((n, max_frames), bool),
      "speaker": rs.randn(n, speaker_dim).astype(np.float32),
      "z_a": np.zeros((n, max_frames, latent_dim), np.float32),
      "index": np.arange(n, dtype=np.int32),
  }
  if with_mel:
    patterns = np.clip(rs.randn(vocab_size, 80, 16, 1), -4, 4).astype(np.float32)
    out["mel_windows"] = np.full((n, max_frames, 80, 16, 1), -4.0, np.float32)
  for i in range(n):
    while True:
      length = rs.randint(max(2, max_phonemes // 2), max_phonemes + 1)
      ph = rs.randint(1, vocab_size, length)
      d = r * (1 + ph % 3)
      frames = int(d.sum()) // r
      if frames <= max_frames:
        break
    out["phonemes"][i, :length] = ph
    out["phoneme_mask"][i, :length] = True
    out["durations"][i, :length] = d
    out["n_frames"][i] = frames
    out["frame_mask"][i, :frames] = True
    at = np.repeat(ph, d)  # phoneme id per mel frame
    gain = 1.0 + 0.1 * np.tanh(out["speaker"][i, 0])
    per_frame = at[r * np.arange(frames) + r // 2]
    out["z_a"][i, :frames] = gain * table[per_frame]
    if with_mel:
      out["mel_windows"][i, :frames] = patterns[per_frame]
  return out


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


def build(config, mesh, *, dataset_dir: str | os.PathLike | None = None
          ) -> tuple[TAEMTask, Any, Callable[[], Any]]:
  """(task, train iterator, eval-iterator factory) for a TAEM config (see experiments/configs).

  Args:
    dataset_dir: the built dataset (`prepared_dataset_dir`); unused for 'synthetic' data.
  """
  from taem_jax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  data = config.data
  local_bs = mesh_lib.local_batch_size(data.batch_size, mesh)
  if data.dataset == "synthetic":
    spk_dim = int(config.model.get("speaker_dim", 128))
    latent = int(config.model.get("latent_dim", 512))
    taem_cfg = taem_config_from(config, vocab_size=data.vocab_size, speaker_dim=spk_dim)
    w2l = _wav2lip_config(config, with_za=config.target.z_a != "wav2lip")
    arrays = synthetic_arrays(data.num_train + data.num_eval, max_phonemes=data.max_phonemes,
                              max_frames=data.max_frames, vocab_size=data.vocab_size,
                              speaker_dim=spk_dim, latent_dim=latent, seed=config.seed,
                              with_mel=w2l is not None)
    if w2l is not None:
      del arrays["z_a"]  # Wav2Lip computes it from the mel windows
    from taem_jax.train import toy  # pylint: disable=g-import-not-at-top
    train = {k: v[:data.num_train] for k, v in arrays.items()}
    held = {k: v[data.num_train:] for k, v in arrays.items()}
    task = TAEMTask(taem_cfg, _loss_config(config), w2l)
    it = toy.toy_iterator(train, data.batch_size, seed=config.seed)
    evals = lambda: toy.toy_iterator(held, data.batch_size, seed=0, shuffle=False,  # noqa: E731
                                     repeat=False)
    return task, it, evals

  from taem_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from taem_jax.text import PhonemeVocab  # pylint: disable=g-import-not-at-top
  if dataset_dir is None:
    raise ValueError(f"dataset {data.dataset!r} needs dataset_dir (see prepared_dataset_dir)")
  meta = pipeline.dataset_metadata(dataset_dir)
  vocab = PhonemeVocab.from_json(meta["vocab"])
  taem_cfg = taem_config_from(config, vocab=vocab, speaker_dim=int(meta["embed_dim"]))
  task = TAEMTask(taem_cfg, _loss_config(config), _wav2lip_config(config, meta["with_za"]))
  buckets = tuple(tuple(b) for b in data.buckets)
  train_cfg = pipeline.PipelineConfig(batch_size=local_bs, buckets=buckets, seed=config.seed,
                                      decode_faces=False, with_za=task.wav2lip_config is None,
                                      worker_count=data.worker_count)
  train_src = pipeline.open_split(dataset_dir, data.train_split)
  it = pipeline.make_iterator(train_src, train_cfg)
  eval_src = pipeline.open_split(dataset_dir, data.eval_split)
  eval_cfg = dataclasses.replace(train_cfg, shuffle=False, num_epochs=1, drop_remainder=False,
                                 worker_count=0)
  evals = lambda: pipeline.make_iterator(eval_src, eval_cfg)  # noqa: E731
  return task, it, evals


def prepared_dataset_dir(config, data_dir: str | None, manual_dir: str | None, *,
                         can_build: bool = True) -> pathlib.Path:
  """`<data_dir>/<builder>/<builder_config>/<version>`, building it from `manual_dir` if needed.

  The sample corpus is built with the GRID builder (same layout) into `<manual_dir>/_tfds` by
  default, so it can never be mistaken for a real GRID build in a shared data_dir. Call it
  before JAX starts its threads (before the first device query): building forks ffmpeg.

  Args:
    can_build: False in multi-process runs, where a missing dataset is an error instead.
  """
  data = config.data
  builder_name = "grid" if data.dataset == "sample" else data.dataset
  if data_dir is None:
    if data.dataset == "sample" and manual_dir:
      data_dir = os.path.join(os.path.expanduser(manual_dir), "_tfds")
    else:
      data_dir = os.path.expanduser("~/tensorflow_datasets")
  root = pathlib.Path(data_dir).expanduser() / builder_name / data.builder_config
  versions = sorted(p for p in root.glob("*") if (p / "dataset_info.json").is_file())
  if versions:
    return versions[-1]
  if not manual_dir:
    raise UserError(f"no prepared {builder_name}/{data.builder_config} dataset in {data_dir}; "
                    f"pass --manual_dir=<the {data.dataset} folder> to build it")
  if not can_build:
    raise UserError("build the dataset before a multi-process run: experiments/build_dataset.py "
                    f"--dataset {builder_name} --manual_dir {manual_dir} --data_dir {data_dir}")
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from taem_jax.data import builder_class  # pylint: disable=g-import-not-at-top
  builder = builder_class(builder_name)(
      data_dir=str(pathlib.Path(data_dir).expanduser()), config=data.builder_config,
      wav2lip_dir=config.get("target", {}).get("wav2lip_dir") or None)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(pathlib.Path(manual_dir).expanduser())))
  return pathlib.Path(builder.data_dir)
