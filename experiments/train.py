"""Trains TAEM (and, through the same trainer, other tasks) on one or many devices, resumably.

Usage:
  .venv/bin/python experiments/train.py --dataset=grid --manual_dir=~/data/GRID --workdir=runs/grid
  .venv/bin/python experiments/train.py --dataset=sample --manual_dir=data/sample_corpus \\
      --workdir=runs/sample
  .venv/bin/python experiments/train.py --config=experiments/configs/grid.py:tiny \\
      --config.train.num_steps=20 --workdir=/tmp/run
  .venv/bin/python experiments/train.py --config=experiments/configs/toy.py --workdir=/tmp/toy
  # Wav2Lip itself: the lip-sync expert, then the generator (configs name their task)
  .venv/bin/python experiments/train.py --dataset=sample --manual_dir=data/sample_corpus \
      --config=experiments/configs/wav2lip_expert.py:tiny --workdir=runs/expert \
      --export=runs/expert/export
  .venv/bin/python experiments/train.py --dataset=sample --manual_dir=data/sample_corpus \
      --config=experiments/configs/wav2lip_gen.py:tiny --config.expert.dir=runs/expert/export \
      --workdir=runs/gen --export=runs/gen/export

What happens:
  * The config is `experiments/configs/<dataset>.py` unless --config names one (append `:tiny`
    for the test-size variant; override any field with --config.<field>=<value>).
  * Everything goes to --workdir: checkpoints/ (Orbax; model, optimizer, step, data position,
    config), tensorboard/ (scalars: losses, grad norm, lr, step time), metrics.jsonl.
  * Resume is automatic. Priority: an existing checkpoint in --workdir, then --init_from
    (converted Wav2Lip weights for the frozen target, or a finished TAEM workdir), then scratch.
    A run killed at any moment continues at the step after its last checkpoint, with the same
    data order, so no step is lost or repeated.
  * Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits with status 130.
  * A NaN/inf loss or gradient stops the run (exit 3) and names the step.
  * --export=DIR writes the trained model (Wav2Lip expert or generator) as a directory that
    taem_jax.models.load_pretrained reads, like a converted official checkpoint. Rerunning a
    finished run with --export only exports.
  * Devices: all visible ones form a data-parallel mesh (batch split, parameters replicated).
    CPU: XLA_FLAGS=--xla_force_host_platform_device_count=N fakes N devices. Several hosts or
    processes: --distributed (and --coordinator_address/--num_processes/--process_id when
    the cluster is not auto-detected).
"""
from __future__ import annotations

import os
import pathlib
import sys

_REPO = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from taem_jax.errors import UserError, cli_main  # noqa: E402

DATASETS = ("grid", "tcd_timit", "lrs2", "sample", "synthetic", "toy")
CONFIG_DIR = _REPO / "experiments" / "configs"

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", None, DATASETS,
                  "Corpus to train on; picks experiments/configs/<dataset>.py when --config is "
                  "not given. 'sample' is the generated corpus (experiments/make_sample_corpus.py)"
                  "; 'synthetic' is TAEM on in-memory generated batches; 'toy' is an in-memory "
                  "regression that checks the machinery.")
config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally with a variant: experiments/configs/grid.py:tiny. "
    "Fields can be overridden: --config.train.num_steps=100.", lock_config=True)
flags.DEFINE_string("workdir", None, "Run directory (checkpoints, TensorBoard, metrics.jsonl); "
                    "an existing run in it is resumed.")
flags.DEFINE_string("data_dir", None, "TFDS data directory holding (or receiving) the prepared "
                    "dataset.")
flags.DEFINE_string("manual_dir", None, "Folder with the raw corpus you downloaded (GRID, "
                    "TCD-TIMIT, LRS2) or generated (sample corpus).")
flags.DEFINE_string("init_from", None, "Weights for a fresh run (ignored when --workdir holds a "
                    "checkpoint): a converted Wav2Lip directory (python -m porting.convert) for the "
                    "frozen target, or a finished training workdir.")
flags.DEFINE_string("export", None, "After training, write the model as a load_pretrained "
                    "directory here (Wav2Lip expert/generator tasks; replaces an existing one).")
flags.DEFINE_integer("steps", None, "Total training steps (overrides config.train.num_steps).")
flags.DEFINE_integer("batch_size", None, "Global batch size (overrides config.data.batch_size).")
flags.DEFINE_integer("num_devices", None, "Devices in the data mesh (default: all visible; "
                     "overrides config.train.num_devices).")
flags.DEFINE_bool("progress", True, "Show a tqdm progress bar (step/s, ETA, loss).")
flags.DEFINE_bool("tensorboard", True, "Write TensorBoard scalars to <workdir>/tensorboard.")
flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() first (multi-host / "
                  "multi-process); arguments below or cluster auto-detection.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")

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


def _load_config_file(path: pathlib.Path):
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.spec_from_file_location(f"_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.lock()
  return config


def load_config(dataset: str | None):
  """The config object: --config if given, else experiments/configs/<dataset>.py."""
  config = FLAGS.config
  if config is None:
    if dataset is None:
      raise UserError(f"say what to train: --dataset={'|'.join(DATASETS)} or "
                      "--config=experiments/configs/<name>.py[:tiny]")
    config = _load_config_file(CONFIG_DIR / f"{dataset}.py")
  if dataset is not None and dataset != config.data.dataset:
    raise UserError(f"--dataset={dataset} does not match the config's data.dataset="
                    f"{config.data.dataset!r}; drop one of them")
  with config.unlocked():
    if FLAGS.steps is not None:
      config.train.num_steps = FLAGS.steps
    if FLAGS.batch_size is not None:
      config.data.batch_size = FLAGS.batch_size
    if FLAGS.num_devices is not None:
      config.train.num_devices = FLAGS.num_devices
  return config


def check_corpus(dataset: str) -> None:
  """Fails with download instructions when a corpus that needs a folder has none."""
  if dataset in ("toy", "synthetic"):
    return
  have_manual = FLAGS.manual_dir and os.path.isdir(os.path.expanduser(FLAGS.manual_dir))
  have_prepared = FLAGS.data_dir and os.path.isdir(os.path.expanduser(FLAGS.data_dir))
  if have_manual or have_prepared:
    return
  if FLAGS.manual_dir:
    raise UserError(f"--manual_dir={FLAGS.manual_dir} does not exist. " +
                    (GRID_HELP if dataset == "grid" else MISSING_CORPUS_HELP[dataset]))
  raise UserError(GRID_HELP if dataset == "grid" else MISSING_CORPUS_HELP[dataset])


# -- tasks: config -> (task, train iterator, eval-iterator factory) ---------------------------

def build_toy(config, mesh, dataset_dir):
  del dataset_dir  # in-memory data
  from taem_jax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from taem_jax.train import toy  # pylint: disable=g-import-not-at-top
  mesh_lib.local_batch_size(config.data.batch_size, mesh)  # validates divisibility
  task = toy.ToyTask(d_hidden=config.model.d_hidden, dropout=config.model.dropout)
  n_train = config.data.num_train
  # One draw of examples, split: held-out inputs are new, the target map is the same.
  arrays = toy.toy_arrays(n_train + config.data.num_eval, seed=config.seed)
  train = {k: v[:n_train] for k, v in arrays.items()}
  held_out = {k: v[n_train:] for k, v in arrays.items()}
  it = toy.toy_iterator(train, config.data.batch_size, seed=config.seed,
                        load_delay=config.data.load_delay)
  evals = lambda: toy.toy_iterator(held_out, config.data.batch_size, seed=0,  # noqa: E731
                                   shuffle=False, repeat=False)
  return task, it, evals


def build_taem(config, mesh, dataset_dir):
  from taem_jax.train import taem_task  # pylint: disable=g-import-not-at-top
  task, it, evals = taem_task.build(config, mesh, dataset_dir=dataset_dir)
  if (task.wav2lip_config is not None and config.target.require_pretrained
      and not FLAGS.init_from and not _has_checkpoint(FLAGS.workdir)):
    raise UserError(
        "TAEM learns to imitate a pre-trained Wav2Lip's audio latent z_a: pass --init_from=DIR "
        "with converted Wav2Lip weights (python -m porting.convert --src wav2lip.pth --dst DIR), "
        "or build the dataset with cached z_a (experiments/build_dataset.py --config dlib_za); "
        "--config.target.require_pretrained=False trains against a random Wav2Lip (smoke tests)")
  return task, it, evals


def _has_checkpoint(workdir: str) -> bool:
  from taem_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
  d = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(d):
    return False
  store = checkpoint.CheckpointStore(d, async_save=False)
  try:
    return store.latest_step() is not None
  finally:
    store.close()


def build_wav2lip(config, mesh, dataset_dir):
  """The expert or generator task of experiments/configs/wav2lip_{expert,gen}.py."""
  from taem_jax.train import wav2lip_task  # pylint: disable=g-import-not-at-top
  if (config.task == "wav2lip" and not config.expert.dir and config.expert.require_pretrained
      and not _has_checkpoint(FLAGS.workdir)):
    raise UserError(
        "the generator's sync loss needs a trained lip-sync expert: train one with "
        "--config=experiments/configs/wav2lip_expert.py[:variant] --export=DIR and pass "
        "--config.expert.dir=DIR (or a converted lipsync_expert.pth); "
        "--config.expert.require_pretrained=False uses a random expert (smoke tests)")
  return wav2lip_task.build(config, mesh, dataset_dir=dataset_dir)


TASKS = {"toy": build_toy, "taem": build_taem, "expert": build_wav2lip,
         "wav2lip": build_wav2lip}


@cli_main
def main(argv):
  if not FLAGS["verbosity"].present:
    # Orbax logs every save at INFO; keep the terminal to the progress bar and errors.
    absl_logging.set_verbosity(absl_logging.WARNING)
  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
  if not FLAGS.workdir:
    raise UserError("--workdir is required (where checkpoints and logs go; an existing run "
                    "there is resumed)")
  dataset = FLAGS.dataset
  config = load_config(dataset)
  check_corpus(config.data.dataset)
  if config.task not in TASKS:
    raise UserError(f"config.task={config.task!r} is not one of {', '.join(TASKS)}")

  if FLAGS.distributed:
    from taem_jax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
    mesh_lib.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes,
                                    FLAGS.process_id)

  dataset_dir = None
  if config.data.dataset not in ("toy", "synthetic"):
    # Before the first device query: building a dataset forks ffmpeg, which must not happen
    # once JAX's threads run.
    from taem_jax.train import taem_task  # pylint: disable=g-import-not-at-top
    dataset_dir = taem_task.prepared_dataset_dir(config, FLAGS.data_dir, FLAGS.manual_dir,
                                                 can_build=not FLAGS.distributed)

  from taem_jax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from taem_jax.train import reporting  # pylint: disable=g-import-not-at-top
  from taem_jax.train import trainer as trainer_lib  # pylint: disable=g-import-not-at-top

  mesh = mesh_lib.make_mesh(config.train.num_devices or None)
  task, train_it, eval_fn = TASKS[config.task](config, mesh, dataset_dir)
  hooks = reporting.default_hooks(FLAGS.workdir, progress=FLAGS.progress,
                                  tensorboard=FLAGS.tensorboard)
  trainer = trainer_lib.Trainer(task, config, FLAGS.workdir, train_it, eval_data=eval_fn,
                                mesh=mesh, hooks=hooks, init_from=FLAGS.init_from)
  try:
    result = trainer.run()
  except trainer_lib.NonFiniteError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(3)
  finally:
    trainer.close()
  import jax  # pylint: disable=g-import-not-at-top
  if FLAGS.export and jax.process_index() == 0:
    export = getattr(task, "export", None)
    if export is None:
      raise UserError(f"--export: the {config.task} task has no export format")
    for path in export(result.model, FLAGS.export, step=result.step, overwrite=True):
      print(f"exported {path} (taem_jax.models.load_pretrained reads it)")
  if jax.process_index() == 0:
    shown = ", ".join(f"{k}={v:.4g}" for k, v in sorted(result.last_metrics.items()))
    print(f"done: {result.step} steps in {FLAGS.workdir} (started from {result.resumed_from}); "
          f"{shown}")


if __name__ == "__main__":
  if any(a in ("-h", "--help", "--helpshort") for a in sys.argv[1:]):
    # absl's own --help exits with status 1; asking for help is not an error.
    print(__doc__)
    print(FLAGS.main_module_help())
    sys.exit(0)
  app.run(main)
