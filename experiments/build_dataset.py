"""Builds a TFDS dataset (array_record, no TensorFlow) from a downloaded corpus folder.

    .venv/bin/python experiments/build_dataset.py --dataset sample --manual_dir data/sample_corpus
    .venv/bin/python experiments/build_dataset.py --dataset grid --manual_dir ~/data/GRID \
        --data_dir data/tfds
    .venv/bin/python experiments/build_dataset.py --dataset lrs2 --manual_dir /data/mvlrs_v1 \
        --data_dir data/tfds --config dlib_za --wav2lip_dir ckpt/wav2lip

Datasets: grid, tcd_timit, lrs2, and sample (the generated sample corpus, read by the GRID
builder into <manual_dir>/_tfds unless --data_dir is given, where experiments/train.py
--dataset=sample looks for it). --data_dir defaults to ~/tensorflow_datasets. Configs: dlib
(default), dlib_za (adds Wav2Lip z_a targets; needs --wav2lip_dir), arcface, arcface_za (need
an ArcFace ONNX: --arcface_path or TAEM_JAX_ARCFACE). Preparation is cached per clip, so an
interrupted build resumes; unusable clips are skipped, logged and counted. Cost on the 2-core
CPU: about 1-2 s per 3 s clip (face tracking dominates). Prints where the dataset was written
(pass that folder to taem_jax.data.pipeline.open_split).
"""
import argparse
import logging
import pathlib
import sys

from taem_jax.data import builder_class
from taem_jax.errors import UserError, cli_main


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--dataset", required=True, choices=["grid", "tcd_timit", "lrs2", "sample"],
                 help="corpus ('sample' = the generated corpus, read by the GRID builder)")
  p.add_argument("--manual_dir", required=True, help="the downloaded corpus folder")
  p.add_argument("--data_dir", default=None, help="TFDS data dir to write into (default: "
                 "<manual_dir>/_tfds for sample, ~/tensorflow_datasets otherwise)")
  p.add_argument("--config", default="dlib", help="dlib | dlib_za | arcface | arcface_za")
  p.add_argument("--wav2lip_dir", default=None, help="converted Wav2Lip checkpoint (z_a)")
  p.add_argument("--arcface_path", default=None, help="ArcFace ONNX (arcface configs)")
  p.add_argument("--detect_stride", type=int, default=5, help="face detection stride, frames")
  return p.parse_args(argv)


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
  builder = cls(data_dir=str(pathlib.Path(data_dir).expanduser()), config=args.config,
                wav2lip_dir=args.wav2lip_dir, arcface_path=args.arcface_path,
                detect_stride=args.detect_stride)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  splits = {k: v.num_examples for k, v in builder.info.splits.items()}
  print(f"wrote {builder.data_dir}: {splits}")
  skipped = builder.info.metadata.get("skipped", {})
  if any(skipped.values()):
    print(f"skipped clips: {skipped}")


if __name__ == "__main__":
  main()
