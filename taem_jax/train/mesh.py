"""Device mesh and batch sharding for data-parallel training.

One code path for 1 CPU device, N forced host devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`), N GPUs, or several processes joined by
`jax.distributed.initialize()`: a 1-D mesh with a `'data'` axis, parameters and optimizer state
replicated (`P()`), every batch leaf sharded on its leading axis (`P('data')`), and `jax.jit`
inserting the gradient all-reduce. `jax.pmap` is not used (it is in maintenance mode and built on
the same machinery now).
"""
from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from taem_jax.errors import UserError

DATA_AXIS = "data"


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Joins a multi-process run (must be called before any other JAX call).

  With no arguments JAX auto-detects the cluster (SLURM, Cloud TPU, Open MPI, or the
  `JAX_COORDINATOR_ADDRESS` / `JAX_NUM_PROCESSES` / `JAX_PROCESS_ID` environment variables).
  On CPU the cross-process collectives run over gloo (jax 0.12's default
  `jax_cpu_collectives_implementation`); each process then sees its local CPU device(s) and the
  mesh spans all of them.
  """
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D `('data',)` mesh over all (or the first `num_devices`) global devices.

  `AxisType.Auto` is passed on purpose: `jax.make_mesh` defaults to Explicit axes, which break
  NNX modules and some optax losses under plain data parallelism.
  """
  n = jax.device_count() if num_devices is None else num_devices
  if n > jax.device_count():
    raise UserError(f"asked for {n} devices but only {jax.device_count()} are visible; on CPU "
                    f"set XLA_FLAGS=--xla_force_host_platform_device_count={n} before start-up")
  devices = jax.devices()[:n]
  return jax.make_mesh((n,), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Sharding for parameters, optimizer state and metrics: a full copy on every device."""
  return NamedSharding(mesh, P())


def data_sharded(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Sharding for batch leaves: split along the leading (batch) axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def local_batch_size(global_batch_size: int, mesh: jax.sharding.Mesh) -> int:
  """The rows of each global batch that this process must load.

  Raises:
    UserError: when the batch does not split evenly over devices.
  """
  n = mesh.devices.size
  if global_batch_size % n:
    raise UserError(f"batch size {global_batch_size} is not divisible by the {n} devices of "
                    f"the mesh; pick a multiple of {n}")
  return global_batch_size // jax.process_count()


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Places identical host values (same on every process) on every device of the mesh.

  Works across processes too, where `jax.device_put` cannot address remote devices.
  """
  sharding = replicated(mesh)

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

  return jax.tree.map(put, tree)


def shard_batch(local_batch: dict[str, Any], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """Assembles one global batch from every process's local rows.

  Shapes:
    local_batch: leaves (B / process_count, ...); returns leaves (B, ...) sharded on 'data'.
    Process p's rows become rows [p * B/P, (p+1) * B/P) of the global batch.
  """
  sharding = data_sharded(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)
