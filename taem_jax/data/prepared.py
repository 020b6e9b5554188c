"""Where a config's built dataset lives, building it from the raw corpus when it is missing."""
from __future__ import annotations

import os
import pathlib

from taem_jax.data import builder_class
from taem_jax.errors import UserError
from taem_jax.models.targets import DEFAULT_BACKBONE


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
  # Heavy (TensorFlow): imported only when a dataset has to be built.
  import tensorflow_datasets as tfds  # lazy: TFDS takes seconds to import
  builder = builder_class(builder_name)(
      data_dir=str(pathlib.Path(data_dir).expanduser()), config=data.builder_config,
      wav2lip_dir=config.get("target", {}).get("wav2lip_dir") or None,
      backbone=config.get("target", {}).get("backbone") or DEFAULT_BACKBONE)
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(pathlib.Path(manual_dir).expanduser())))
  return pathlib.Path(builder.data_dir)
