"""Builds a TFDS dataset (array_record, no TensorFlow) from a downloaded corpus folder.

    .venv/bin/python experiments/build_dataset.py --dataset sample --manual_dir data/sample_corpus
    .venv/bin/python experiments/build_dataset.py --dataset grid --manual_dir ~/data/GRID \
        --data_dir data/tfds
    .venv/bin/python experiments/build_dataset.py --dataset lrs2 --manual_dir /data/mvlrs_v1 \
        --data_dir data/tfds --config dlib_za --wav2lip_dir ckpt/wav2lip
    .venv/bin/python experiments/build_dataset.py --dataset grid --manual_dir ~/data/GRID \
        --data_dir data/tfds --beam_runner DirectRunner --direct_num_workers 2 \
        --direct_running_mode multi_processing

Datasets: grid, tcd_timit, lrs2, and sample (the generated sample corpus, read by the GRID
builder into <manual_dir>/_tfds unless --data_dir is given, where experiments/train.py
--dataset=sample looks for it). --data_dir defaults to ~/tensorflow_datasets. Configs: dlib
(default), dlib_za (adds Wav2Lip z_a targets; needs --wav2lip_dir), arcface, arcface_za (need
an ArcFace ONNX: --arcface_path or TAEM_JAX_ARCFACE). Preparation is cached per clip, so an
interrupted build resumes; unusable clips are skipped, logged and counted. Cost on the 2-core
CPU: about 1-2 s per 3 s clip (face tracking dominates). Prints where the dataset was written
(pass that folder to taem_jax.data.pipeline.open_split).

Scaling out: --workers N prepares clips in N processes (default: this machine's cores); the
examples are the same bit for bit as with --workers 1. --beam_runner RUNNER builds on Apache
Beam instead (.venv/bin/python -m pip install --no-deps -r requirements-beam.txt); every
further --flag is a Beam pipeline option, e.g. --direct_num_workers / --direct_running_mode for
the DirectRunner, or --flink_master, --spark_master_url, --project/--region/--temp_location for
Flink, Spark or Dataflow. On a cluster, --manual_dir, --data_dir and the per-clip cache must be
paths every worker can read. experiments/build_cost.py measures the cost per clip here.
"""
import argparse
import logging
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # this checkout's package, as the other experiments/ scripts do
  sys.path.insert(0, str(ROOT))

from taem_jax.cli import add_backbone_argument  # noqa: E402
from taem_jax.data import builder_class  # noqa: E402
from taem_jax.errors import UserError, cli_main  # noqa: E402


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--dataset", required=True, choices=["grid", "tcd_timit", "lrs2", "sample"],
                 help="corpus ('sample' = the generated corpus, read by the GRID builder)")
  p.add_argument("--manual_dir", required=True, help="the downloaded corpus folder")
  p.add_argument("--data_dir", default=None, help="TFDS data dir to write into (default: "
                 "<manual_dir>/_tfds for sample, ~/tensorflow_datasets otherwise)")
  p.add_argument("--config", default="dlib", help="dlib | dlib_za | arcface | arcface_za")
  p.add_argument("--wav2lip_dir", default=None, help="converted Wav2Lip checkpoint (z_a)")
  add_backbone_argument(p)
  p.add_argument("--arcface_path", default=None, help="ArcFace ONNX (arcface configs)")
  p.add_argument("--detect_stride", type=int, default=5, help="face detection stride, frames")
  p.add_argument("--workers", type=int, default=None,
                 help=f"processes preparing clips (default: this machine's cores, here "
                 f"{default_workers()}); not with --beam_runner")
  p.add_argument("--beam_runner", default=None,
                 help="build on Apache Beam with this runner (DirectRunner, DataflowRunner, "
                 "FlinkRunner, SparkRunner, ...); further --flags go to Beam")
  args, beam_flags = p.parse_known_args(argv)
  if beam_flags and args.beam_runner is None:
    p.error(f"unrecognized arguments: {' '.join(beam_flags)} (Beam pipeline options need "
            "--beam_runner)")
  if args.beam_runner is not None and args.workers is not None:
    p.error("--workers is for builds without Beam; give the Beam runner its own option "
            "(e.g. --direct_num_workers 2)")
  if args.workers is not None and args.workers < 1:
    p.error(f"--workers must be at least 1 (got {args.workers})")
  args.beam_flags = beam_flags
  return args


def default_workers() -> int:
  """The cores this process may run on."""
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:  # not on Linux
    return max(1, os.cpu_count() or 1)


def beam_download_config(manual: pathlib.Path, runner: str, flags: list[str]):
  """A TFDS DownloadConfig that runs the build on Beam's `runner` with pipeline `flags`."""
  # Lazy: TFDS and Beam take seconds to import; Beam is optional.
  import tensorflow_datasets as tfds
  try:
    from apache_beam.options.pipeline_options import PipelineOptions
  except ImportError:
    raise UserError("--beam_runner needs Apache Beam: .venv/bin/python -m pip install "
                    "--no-deps -r requirements-beam.txt") from None
  options = PipelineOptions([f"--runner={runner}", *flags])
  unknown = [f for f in flags if f.startswith("--") and
             f[2:].split("=")[0] not in options.get_all_options(retain_unknown_options=False)]
  if unknown:
    raise UserError(f"unknown Beam pipeline option(s): {' '.join(unknown)}")
  return tfds.download.DownloadConfig(manual_dir=str(manual), beam_options=options)


@cli_main
def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
  manual = pathlib.Path(args.manual_dir).expanduser()
  if not manual.is_dir():
    raise UserError(f"--manual_dir {manual} does not exist or is not a folder")
  # Heavy (TensorFlow's loader): imported once the arguments are known to be sound.
  import tensorflow_datasets as tfds  # lazy: TFDS takes seconds to import
  cls = builder_class("grid" if args.dataset == "sample" else args.dataset)
  names = [c.name for c in cls.BUILDER_CONFIGS]
  if args.config not in names:
    raise UserError(f"unknown --config {args.config!r}: choose one of {', '.join(names)}")
  data_dir = args.data_dir or (manual / "_tfds" if args.dataset == "sample"
                               else "~/tensorflow_datasets")
  beam = args.beam_runner is not None
  if beam:
    download_config = beam_download_config(manual, args.beam_runner, args.beam_flags)
  else:
    download_config = tfds.download.DownloadConfig(manual_dir=str(manual))
  builder = cls(data_dir=str(pathlib.Path(data_dir).expanduser()), config=args.config,
                wav2lip_dir=args.wav2lip_dir, arcface_path=args.arcface_path,
                detect_stride=args.detect_stride, beam=beam, backbone=args.backbone,
                workers=1 if beam else (args.workers or default_workers()))
  builder.download_and_prepare(download_config=download_config)
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  print(f"wrote {builder.data_dir}: {splits}")
  skipped = builder.info.metadata.get("skipped", {})
  if any(skipped.values()):
    print(f"skipped clips: {skipped}")


if __name__ == "__main__":
  main()
