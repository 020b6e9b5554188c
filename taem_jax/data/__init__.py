"""Datasets: the generated sample corpus (`sample/`), TFDS builders for GRID, TCD-TIMIT and LRS2
(one folder each, sharing `corpus.py` and the front ends in `prepare.py`), and the grain input
pipeline (`pipeline.py`).

Builders by name: `builder_class("grid")` etc. (imports tensorflow_datasets lazily).
"""

BUILDERS = {
    "grid": "taem_jax.data.grid.grid_dataset_builder",
    "tcd_timit": "taem_jax.data.tcd_timit.tcd_timit_dataset_builder",
    "lrs2": "taem_jax.data.lrs2.lrs2_dataset_builder",
}


def builder_class(name: str):
  """The TFDS builder class of dataset `name` ('grid', 'tcd_timit', 'lrs2')."""
  import importlib  # pylint: disable=g-import-not-at-top
  from taem_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  if name not in BUILDERS:
    raise UserError(f"unknown dataset {name!r}: choose one of {', '.join(BUILDERS)}")
  return importlib.import_module(BUILDERS[name]).Builder
