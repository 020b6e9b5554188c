"""Datasets: the generated sample corpus (`sample/`), TFDS builders for GRID, TCD-TIMIT and LRS2
(one folder each, sharing `corpus.py` and the front ends in `prepare.py`), the grain input
pipeline (`pipeline.py`), the lookup of a config's built dataset (`prepared.py`), and the
training-side helpers: Wav2Lip window sampling (`windows.py`), synthetic data
(`synthetic.py`) and in-memory iterators (`memory.py`).

Builders by name: `builder_class("grid")` etc. (imports tensorflow_datasets lazily).
"""
import importlib

from taem_jax.errors import UserError

BUILDERS = {
    "grid": "taem_jax.data.grid.grid_dataset_builder",
    "tcd_timit": "taem_jax.data.tcd_timit.tcd_timit_dataset_builder",
    "lrs2": "taem_jax.data.lrs2.lrs2_dataset_builder",
}


def builder_class(name: str):
  """The TFDS builder class of dataset `name` ('grid', 'tcd_timit', 'lrs2')."""
  if name not in BUILDERS:
    raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(BUILDERS)}")
  return importlib.import_module(BUILDERS[name]).Builder
