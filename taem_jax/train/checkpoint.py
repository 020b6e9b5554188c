"""Orbax checkpoints of a training run: one directory per step, everything needed to resume.

Each step directory `<workdir>/checkpoints/<step>/` holds two Orbax items written together:

* `state`: `{'model': ..., 'optimizer': ...}` as pure dicts of arrays (`nnx.to_pure_dict`);
  RNG stream state is left out on purpose: the trainer reseeds every stream from the step
  number, so it carries no information.
* `meta` (JSON): the step, the number of processes, every process's data-iterator state and
  the run's config.

Atomicity: Orbax writes a step to `<step>.orbax-checkpoint-tmp-*` and renames it when every
item is on disk, so a run killed at any moment leaves either a complete step or a temporary
directory that is never listed. As a second line of defence `complete_steps` also ignores any
step directory without Orbax's `_CHECKPOINT_METADATA` file or one of the two items.
"""
from __future__ import annotations

import json
import logging
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp  # noqa: TID253 - this module is the Orbax checkpoint layer
from flax import nnx
from jax.experimental import multihost_utils

from taem_jax.errors import UserError

STATE_ITEM = "state"
META_ITEM = "meta"
_FINAL_MARKER = "_CHECKPOINT_METADATA"

log = logging.getLogger(__name__)


def _gather_process_states(state: Any) -> list[Any]:
  """Every process's JSON-able iterator state, in process order (a collective if multi-host)."""
  if jax.process_count() == 1:
    return [state]
  raw = np.frombuffer(json.dumps(state).encode(), np.uint8)
  sizes = multihost_utils.process_allgather(np.array([raw.size], np.int64)).reshape(-1)
  padded = np.zeros(int(sizes.max()), np.uint8)
  padded[:raw.size] = raw
  every = multihost_utils.process_allgather(padded)
  return [json.loads(every[i, :sizes[i]].tobytes().decode()) for i in range(len(sizes))]


class CheckpointStore:
  """Saves and restores training checkpoints in one directory (a thin Orbax wrapper).

  Args:
    directory: where step directories live; created when missing.
    max_to_keep: how many most recent checkpoints to keep.
    async_save: write in a background thread (the device-to-host copy still happens before
      `save` returns, so the next jitted step may donate the state's buffers).
  """

  def __init__(self, directory: str | os.PathLike, *, max_to_keep: int = 3,
               async_save: bool = True):
    self.directory = os.path.abspath(os.fspath(directory))
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=True, enable_async_checkpointing=async_save,
        cleanup_tmp_directories=True)
    self._mngr = ocp.CheckpointManager(
        self.directory, options=options,
        item_handlers={STATE_ITEM: ocp.StandardCheckpointHandler(),
                       META_ITEM: ocp.JsonCheckpointHandler()})

  def complete_steps(self) -> list[int]:
    """Steps whose directory is finished (Orbax-finalised and holding both items)."""
    steps = []
    for step in self._mngr.all_steps():
      d = os.path.join(self.directory, str(step))
      if all(os.path.exists(os.path.join(d, f)) for f in (_FINAL_MARKER, STATE_ITEM, META_ITEM)):
        steps.append(step)
      else:
        log.warning("ignoring incomplete checkpoint directory %s", d)
    return sorted(steps)

  def latest_step(self) -> int | None:
    steps = self.complete_steps()
    return steps[-1] if steps else None

  def save(self, step: int, state: dict[str, Any], data_state: Any,
           config: dict[str, Any]) -> None:
    """Writes one checkpoint (call on every process at the same step).

    Args:
      step: number of completed training steps.
      state: `{'model': pure dict, 'optimizer': pure dict}` of (replicated) arrays.
      data_state: this process's JSON-able data-iterator state after `step` batches.
      config: the run's config as a JSON-able dict.
    """
    meta = {"step": int(step), "process_count": jax.process_count(),
            "data_iterator": _gather_process_states(data_state), "config": config}
    self._mngr.save(step, args=ocp.args.Composite(
        **{STATE_ITEM: ocp.args.StandardSave(state), META_ITEM: ocp.args.JsonSave(meta)}))

  def restore(self, step: int, abstract_state: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Restores step `step` into the structure, dtypes and shardings of `abstract_state`.

    Returns:
      (state, meta) where meta['data_iterator'] is *this* process's iterator state.
    """
    meta = self.restore_meta(step)
    if meta["process_count"] != jax.process_count():
      raise UserError(
          f"checkpoint {self.directory}/{step} was written by {meta['process_count']} "
          f"processes but this run has {jax.process_count()}; resume with the same number "
          "(each process's data-iterator position is stored separately)")
    self._check_fits(step, abstract_state)
    restored = self._mngr.restore(step, args=ocp.args.Composite(
        **{STATE_ITEM: ocp.args.StandardRestore(abstract_state)}))
    meta["data_iterator"] = meta["data_iterator"][jax.process_index()]
    return restored[STATE_ITEM], meta

  def _check_fits(self, step: int, abstract_state: Any) -> None:
    """UserError naming the first array that differs (a run resumed with another config)."""
    saved = _shapes(self._mngr.item_metadata(step)[STATE_ITEM].tree)
    wanted = _shapes(abstract_state)
    problems = [f"{k} missing from the checkpoint" for k in sorted(wanted.keys() - saved.keys())]
    problems += [f"{k} not in this model" for k in sorted(saved.keys() - wanted.keys())]
    problems += [f"{k} is {saved[k][0]} {saved[k][1]} in the checkpoint, {wanted[k][0]} "
                 f"{wanted[k][1]} here" for k in sorted(wanted.keys() & saved.keys())
                 if saved[k] != wanted[k]]
    if problems:
      raise UserError(
          f"checkpoint {self.directory}/{step} does not fit this run's model/optimizer "
          f"({len(problems)} differences, e.g. {problems[0]}); resume with the config it was "
          "written with (stored in its meta/ item) or use a new --workdir")

  def restore_meta(self, step: int) -> dict:
    return self._mngr.restore(step, args=ocp.args.Composite(
        **{META_ITEM: ocp.args.JsonRestore()}))[META_ITEM]

  def wait(self) -> None:
    """Blocks until any background write has finished."""
    self._mngr.wait_until_finished()

  def close(self) -> None:
    self._mngr.wait_until_finished()
    self._mngr.close()


def _shapes(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {"/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path):
          (tuple(leaf.shape), str(np.dtype(leaf.dtype))) for path, leaf in flat}


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with sharding) matching a tree of arrays: an Orbax restore target."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
      tree)


def load_arrays(directory: str | os.PathLike, step: int | None = None
                ) -> tuple[dict[str, Any], dict]:
  """Reads a checkpoint as host numpy arrays, without knowing the model (tools, tests).

  Args:
    directory: a `CheckpointStore` directory (e.g. `<workdir>/checkpoints`).
    step: which step; the latest complete one by default.

  Returns:
    (state, meta): state is `{'model': ..., 'optimizer': ...}` with string keys.

  Raises:
    UserError: when the directory holds no complete checkpoint.
  """
  store = CheckpointStore(directory, async_save=False)
  try:
    step = store.latest_step() if step is None else step
    if step is None:
      raise UserError(f"no complete checkpoint in {directory}; train first or pass the "
                      "workdir of a finished run")
    meta = store.restore_meta(step)
    # A target of plain numpy shapes keeps the restore on the host and silences Orbax's
    # "sharding info not provided" warning.
    metadata = store._mngr.item_metadata(step)[STATE_ITEM]  # pylint: disable=protected-access
    target = jax.tree.map(lambda m: np.zeros(m.shape, m.dtype), metadata.tree)
    state = store._mngr.restore(step, args=ocp.args.Composite(  # pylint: disable=protected-access
        **{STATE_ITEM: ocp.args.StandardRestore(target)}))[STATE_ITEM]
  finally:
    store.close()
  return jax.tree.map(np.asarray, state), meta


def load_model_weights(model: nnx.Module, directory: str | os.PathLike,
                       step: int | None = None) -> int:
  """Copies the model part of a training checkpoint into `model` (in place).

  For inference and for `--init_from` of a trained run. Returns the step that was loaded.
  """
  state, meta = load_arrays(directory, step)
  graph_state = nnx.state(model, nnx.Not(nnx.RngState))
  nnx.replace_by_pure_dict(graph_state, state["model"])
  nnx.update(model, graph_state)
  return int(meta["step"])
