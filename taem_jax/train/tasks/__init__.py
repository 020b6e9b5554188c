"""The trainer's tasks by name, and a config -> (task, train iterator, eval iterators) builder.

One module per task family: `taem` (TAEM against a frozen Wav2Lip), `wav2lip` (the lip-sync
expert and the Wav2Lip generator), `toy` (a tiny regression that checks the machinery). Each
has a `recipe(config, dataset_dir)` that returns its task and how its batches are made
(`Recipe`); `build` turns that into iterators the same way for every task. `check_corpus` and
the checks inside `build` stop a run early, with instructions, when it cannot succeed.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from taem_jax.data import pipeline
from taem_jax.data.memory import array_iterator
from taem_jax.errors import UserError
from taem_jax.train import checkpoint
from taem_jax.train import mesh as mesh_lib
from taem_jax.train.tasks import taem, toy, wav2lip
from taem_jax.train.tasks.recipe import Recipe

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
