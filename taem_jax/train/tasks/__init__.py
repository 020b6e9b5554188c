"""The trainer's tasks by name, and a config -> (task, train iterator, eval iterators) builder.

One module per task family: `taem` (TAEM against a frozen Wav2Lip), `wav2lip` (the lip-sync
expert and the Wav2Lip generator), `toy` (a tiny regression that checks the machinery). Each
has a `recipe(config, dataset_dir)` that returns its task and how its batches are made
(`Recipe`); `build` turns that into iterators the same way for every task; `build_samples` makes the
held-out batch a task's `samples` renders when the training batches cannot serve (TAEM's carry
no faces). `check_corpus` and the checks inside `build` stop a run early, with instructions,
when it cannot succeed.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable

import numpy as np

from taem_jax.data import pipeline
from taem_jax.data.memory import array_iterator
from taem_jax.data.synthetic import synthetic_clips
from taem_jax.errors import UserError
from taem_jax.models import load_pretrained, pretrained
from taem_jax.train import checkpoint
from taem_jax.train import mesh as mesh_lib
from taem_jax.train.tasks import taem, toy, wav2lip
from taem_jax.train.tasks.recipe import Recipe

log = logging.getLogger(__name__)

# config.task -> the family's recipe(config, dataset_dir).
TASKS: dict[str, Callable[[Any, Any], Recipe]] = {
    "toy": toy.recipe, "taem": taem.recipe, "expert": wav2lip.recipe,
    "wav2lip": wav2lip.recipe}

# Datasets generated in memory (no corpus, no built dataset).
IN_MEMORY = ("toy", "synthetic")

GRID_HELP = """\
the GRID corpus is not included and cannot be downloaded by this program.
  To train on the real GRID corpus: download the per-speaker videos and the word alignments
  from the GRID audio-visual sentence corpus page (Cooke, Barker, Cunningham & Shao, University
  of Sheffield: spandh.dcs.shef.ac.uk/gridcorpus, also Zenodo record 3625687), unpack them so
  the folder holds s1/*.mpg ... s34/*.mpg and alignments/s1/*.align ... (full layout:
  taem_jax/data/grid/README.md), then run
      .venv/bin/python experiments/train.py --dataset=grid --manual_dir=GRID_DIR \\
          --init_from=WAV2LIP_DIR --workdir=runs/grid
  To try everything without GRID, generate the built-in sample corpus (same layout, synthetic
  speech and animated photos; it is not GRID) and train on it:
      .venv/bin/python experiments/make_sample_corpus.py --out data/sample_corpus
      .venv/bin/python experiments/train.py --dataset=sample --manual_dir=data/sample_corpus \\
          --workdir=runs/sample"""

MISSING_CORPUS_HELP = {
    "tcd_timit": "TCD-TIMIT is not included: request it from the TCD-TIMIT site (Trinity College "
                 "Dublin, sigmedia), unpack the 'volunteers' straight-camera videos, and pass "
                 "--manual_dir=/path/to/TCD-TIMIT",
    "lrs2": "LRS2 is not included: request it from the BBC/Oxford VGG LRS2 page (licence form), "
            "unpack main/ and pretrain/, and pass --manual_dir=/path/to/LRS2",
    "sample": "the sample corpus folder is missing: generate it with "
              ".venv/bin/python experiments/make_sample_corpus.py --out data/sample_corpus and "
              "pass --manual_dir=data/sample_corpus",
}


def check_corpus(dataset: str, manual_dir: str | None, data_dir: str | None) -> None:
  """Fails with download instructions when a corpus that needs a folder has none."""
  if dataset in IN_MEMORY:
    return
  have_manual = manual_dir and os.path.isdir(os.path.expanduser(manual_dir))
  have_prepared = data_dir and os.path.isdir(os.path.expanduser(data_dir))
  if have_manual or have_prepared:
    return
  if manual_dir:
    raise UserError(f"--manual_dir={manual_dir} does not exist. " +
                    (GRID_HELP if dataset == "grid" else MISSING_CORPUS_HELP[dataset]))
  raise UserError(GRID_HELP if dataset == "grid" else MISSING_CORPUS_HELP[dataset])


def has_checkpoint(workdir: str | os.PathLike | None) -> bool:
  """Whether `workdir` holds a complete training checkpoint (a run to resume)."""
  if not workdir:
    return False
  d = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(d):
    return False
  store = checkpoint.CheckpointStore(d, async_save=False)
  try:
    return store.latest_step() is not None
  finally:
    store.close()


def _check_pretrained(config, task, workdir, init_from) -> None:
  """Refuses to train against a random frozen network unless the config allows it."""
  if (config.task == "taem" and task.wav2lip_config is not None
      and config.target.require_pretrained and not init_from and not has_checkpoint(workdir)):
    raise UserError(
        "TAEM learns to imitate a pre-trained Wav2Lip's audio latent z_a: pass --init_from=DIR "
        "with converted Wav2Lip weights (python -m porting.convert --src wav2lip.pth --dst DIR), "
        "or build the dataset with cached z_a (experiments/build_dataset.py --config dlib_za); "
        "--config.target.require_pretrained=False trains against a random Wav2Lip (smoke tests)")
  if (config.task == "wav2lip" and not config.expert.dir and config.expert.require_pretrained
      and not has_checkpoint(workdir)):
    raise UserError(
        "the generator's sync loss needs a trained lip-sync expert: train one with "
        "--config=experiments/configs/wav2lip_expert.py[:variant] --export=DIR and pass "
        "--config.expert.dir=DIR (or a converted lipsync_expert.pth); "
        "--config.expert.require_pretrained=False uses a random expert (smoke tests)")


def build(config, mesh, *, dataset_dir: str | os.PathLike | None = None,
          workdir: str | os.PathLike | None = None, init_from: str | None = None
          ) -> tuple[Any, Any, Callable[[], Any]]:
  """(task, train iterator, eval-iterator factory) of a config, for `trainer.Trainer`.

  Args:
    config: an experiments/configs/*.py config; `config.task` names the family (`TASKS`).
    mesh: the device mesh (the global batch must split over it).
    dataset_dir: the built dataset (`taem_jax.data.prepared.prepared_dataset_dir`); unused
      for in-memory data ('toy', 'synthetic').
    workdir, init_from: the run's, for the check that a frozen network is pretrained (a run
      resumed from `workdir` or started from `init_from` has its weights).
  """
  if config.task not in TASKS:
    raise UserError(f"config.task={config.task!r} is not one of {', '.join(TASKS)}")
  data = config.data
  local_bs = mesh_lib.local_batch_size(data.batch_size, mesh)  # validates divisibility
  if data.dataset not in IN_MEMORY and dataset_dir is None:
    raise ValueError(f"dataset {data.dataset!r} needs dataset_dir (see prepared_dataset_dir)")
  recipe = TASKS[config.task](config, dataset_dir)
  _check_pretrained(config, recipe.task, workdir, init_from)

  if recipe.arrays is not None:
    n = data.num_train
    train = {k: v[:n] for k, v in recipe.arrays.items()}
    held = {k: v[n:] for k, v in recipe.arrays.items()}
    it = array_iterator(train, data.batch_size, seed=config.seed,
                        load_delay=float(data.get("load_delay", 0.0)))
    evals = lambda: recipe.wrap(array_iterator(  # noqa: E731
        held, data.batch_size, seed=0, shuffle=False, repeat=False), True)
    return recipe.task, recipe.wrap(it, False), evals

  train_cfg = pipeline.PipelineConfig(
      batch_size=local_bs, buckets=tuple(tuple(b) for b in data.buckets), seed=config.seed,
      decode_faces=recipe.decode_faces, with_za=recipe.with_za, worker_count=data.worker_count)
  train_src = pipeline.open_split(dataset_dir, data.train_split)
  it = pipeline.make_iterator(train_src, train_cfg)
  eval_src = pipeline.open_split(dataset_dir, data.eval_split)
  eval_cfg = dataclasses.replace(train_cfg, shuffle=False, num_epochs=1, drop_remainder=False,
                                 worker_count=0)
  evals = lambda: recipe.wrap(pipeline.make_iterator(eval_src, eval_cfg), True)  # noqa: E731
  return recipe.task, recipe.wrap(it, False), evals


def build_samples(config, task, *, dataset_dir: str | os.PathLike | None = None,
                  init_from: str | None = None) -> Callable[[], Any] | None:
  """The held-out batch `task.samples` renders, as a factory for `Trainer(sample_data=...)`.

  None when the task's own held-out iterator serves (every task but TAEM) or there is nothing
  to render (`config.train.sample_every` is 0, or no generator: logged once). For TAEM it is
  the first clip of the eval split with its face crops decoded (the training batches carry
  none), read once and kept; on synthetic data, whose examples have no faces, the first
  held-out example with the faces of a synthetic clip (`synthetic_clips`, unrelated to the
  phonemes: it only exercises the rendering). With z_a cached in the dataset the model holds
  no Wav2Lip, so the generator comes from `init_from` (a converted Wav2Lip directory) or
  `config.target.wav2lip_dir` and is stored as `task.renderer`.

  Args:
    task: the task `build` returned (its renderer is set here).
    dataset_dir, init_from: as for `build`.
  """
  if config.task != "taem" or not config.train.get("sample_every", 0):
    return None
  if task.wav2lip_config is None and task.renderer is None:
    task.renderer = _sample_generator(config, task, init_from)
    if task.renderer is None:
      log.warning("no sample clips: z_a comes from the dataset and no Wav2Lip generator is "
                  "known; pass --init_from or --config.target.wav2lip_dir=DIR (converted "
                  "Wav2Lip) to render them")
      return None
  data = config.data
  if data.dataset in IN_MEMORY:
    arrays = TASKS[config.task](config, dataset_dir).arrays
    n = data.num_train
    batch = {k: v[n:n + 1] for k, v in arrays.items()}
    frames = batch["frame_mask"].shape[1]
    batch["faces"] = synthetic_clips(1, frames=frames, seed=config.seed)["faces"]
    return lambda: iter([batch])
  cfg = pipeline.PipelineConfig(
      batch_size=1, buckets=tuple(tuple(b) for b in data.buckets), seed=config.seed,
      shuffle=False, num_epochs=1, drop_remainder=False, decode_faces=True, with_za=False)
  cache: list = []

  def first_clip():
    if not cache:  # decoded on first use and kept: every sample shows the same clip
      it = pipeline.make_iterator(pipeline.open_split(dataset_dir, data.eval_split), cfg)
      batch = next(it, None)
      if batch is not None:
        cache.append({k: np.asarray(v) for k, v in batch.items()})
    return iter(cache)

  return first_clip


def _sample_generator(config, task, init_from):
  """The converted Wav2Lip that renders TAEM's samples when the model has none, or None."""
  for source in (init_from, config.target.get("wav2lip_dir", "")):
    if not source or not os.path.isdir(os.path.expanduser(source)):
      continue
    try:
      family = pretrained.read_sidecar(source)["family"]
    except UserError:
      continue  # e.g. a TAEM workdir given as --init_from: not a generator
    if family != "wav2lip":
      continue
    generator = load_pretrained(source, family="wav2lip")
    if int(generator.embed_dim) != task.taem_config.latent_dim:
      raise UserError(f"{source} is a Wav2Lip with {generator.embed_dim}-d z_a, but TAEM makes "
                      f"{task.taem_config.latent_dim}-d latents; give the Wav2Lip the dataset's "
                      "z_a came from")
    return generator
  return None
