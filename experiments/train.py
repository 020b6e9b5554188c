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
    config), tensorboard/ (scalars: losses, grad norm, lr, step time), metrics.jsonl,
    samples/ (with config.train.sample_every: PNG frame grids and, for TAEM, step_NNNNNN.mp4
    clips: ground truth | Wav2Lip from the audio | TAEM from the text).
  * Held-out metrics are logged at step 0 (before the first update), every
    config.train.eval_every steps and at the end, under the training curves' names.
  * Resume is automatic. Priority: an existing checkpoint in --workdir, then --init_from
    (converted Wav2Lip weights for the frozen target, or a finished TAEM workdir), then scratch.
    A run killed at any moment continues at the step after its last checkpoint, with the same
    data order, so no step is lost or repeated.
  * Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits with status 130.
  * A NaN/inf loss or gradient stops the run (exit 3) and names the step.
  * --export=DIR writes the trained model as a directory that synthesis loads: the Wav2Lip
    expert or generator as taem_jax.models.load_pretrained reads it (like a converted official
    checkpoint), TAEM as taem_jax.models.taem_checkpoint.load_taem reads it (weights plus its
    phoneme vocabulary, speaker embedder, target and loss objective). Rerunning a finished run
    with --export only exports.
  * Devices: all visible ones form a data-parallel mesh (batch split, parameters replicated).
    CPU: XLA_FLAGS=--xla_force_host_platform_device_count=N fakes N devices. Several hosts or
    processes: --distributed (and --coordinator_address/--num_processes/--process_id when
    the cluster is not auto-detected).
"""
from __future__ import annotations

import importlib.util
import pathlib
import sys

_REPO = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

import jax  # noqa: E402
from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from taem_jax.data.prepared import prepared_dataset_dir  # noqa: E402
from taem_jax.errors import UserError, cli_main  # noqa: E402
from taem_jax.models.targets import BACKBONES, DEFAULT_BACKBONE  # noqa: E402
from taem_jax.train import mesh as mesh_lib  # noqa: E402
from taem_jax.train import reporting, tasks  # noqa: E402
from taem_jax.train import trainer as trainer_lib  # noqa: E402

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
                    "checkpoint): a converted Wav2Lip directory (python -m porting.convert) for "
                    "the frozen target, or a finished training workdir.")
flags.DEFINE_string("export", None, "After training, write the model here as a directory "
                    "that synthesis loads (a load_pretrained one for the Wav2Lip expert/generator, "
                    "a TAEM checkpoint for TAEM; replaces an existing one).")
flags.DEFINE_enum("backbone", DEFAULT_BACKBONE, sorted(BACKBONES),
                  "Frozen audio-driven backbone whose latent TAEM learns (sets "
                  "config.target.backbone; TAEM configs only).")
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

def _load_config_file(path: pathlib.Path):
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
    if "target" in config and config.get("task", "taem") == "taem":
      config.target.backbone = FLAGS.backbone
    elif FLAGS.backbone != DEFAULT_BACKBONE:
      raise UserError(f"--backbone={FLAGS.backbone} applies to TAEM training only; this config "
                      f"trains {config.get('task')!r}")
  return config


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
  config = load_config(FLAGS.dataset)
  tasks.check_corpus(config.data.dataset, FLAGS.manual_dir, FLAGS.data_dir)
  if config.task not in tasks.TASKS:
    raise UserError(f"config.task={config.task!r} is not one of {', '.join(tasks.TASKS)}")

  if FLAGS.distributed:
    mesh_lib.initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes,
                                    FLAGS.process_id)

  dataset_dir = None
  if config.data.dataset not in tasks.IN_MEMORY:
    # Before the first device query: building a dataset forks ffmpeg, which must not happen
    # once JAX's threads run.
    dataset_dir = prepared_dataset_dir(config, FLAGS.data_dir, FLAGS.manual_dir,
                                       can_build=not FLAGS.distributed)

  mesh = mesh_lib.make_mesh(config.train.num_devices or None)
  task, train_it, eval_fn = tasks.build(config, mesh, dataset_dir=dataset_dir,
                                        workdir=FLAGS.workdir, init_from=FLAGS.init_from)
  sample_fn = tasks.build_samples(config, task, dataset_dir=dataset_dir,
                                  init_from=FLAGS.init_from)
  hooks = reporting.default_hooks(FLAGS.workdir, progress=FLAGS.progress,
                                  tensorboard=FLAGS.tensorboard)
  trainer = trainer_lib.Trainer(task, config, FLAGS.workdir, train_it, eval_data=eval_fn,
                                sample_data=sample_fn, mesh=mesh, hooks=hooks,
                                init_from=FLAGS.init_from)
  try:
    result = trainer.run()
  except trainer_lib.NonFiniteError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(3)
  finally:
    trainer.close()
  if FLAGS.export and jax.process_index() == 0:
    export = getattr(task, "export", None)
    if export is None:
      raise UserError(f"--export: the {config.task} task has no export format")
    for path in export(result.model, FLAGS.export, step=result.step, overwrite=True):
      print(f"exported {path}")
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
