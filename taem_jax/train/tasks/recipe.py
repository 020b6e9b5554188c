"""What a task family hands to `taem_jax.train.tasks.build`: its task and how to read its data."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import numpy as np


def _unchanged(batches, held_out: bool):
  del held_out
  return batches


@dataclasses.dataclass(frozen=True)
class Recipe:
  """A trainer task and the way its batches are made.

  Attributes:
    task: the `taem_jax.train.trainer.Task`.
    arrays: in-memory examples, the training rows first and then the held-out ones
      (`config.data.num_train` + `num_eval`), or None to read the built dataset.
    decode_faces, with_za: `taem_jax.data.pipeline.PipelineConfig` fields for a built dataset.
    wrap: `wrap(batches, held_out)` turns a batch iterator (training or held-out) into the
      task's iterator, e.g. cutting Wav2Lip windows out of clips; identity by default.
  """
  task: Any
  arrays: Mapping[str, np.ndarray] | None = None
  decode_faces: bool = True
  with_za: bool = False
  wrap: Callable[[Any, bool], Any] = _unchanged
