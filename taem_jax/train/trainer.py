"""The project's one trainer: data-parallel `jax.jit` steps, Orbax resume, hooks for logging.

It is generic over a *task* (see `Task`; the project's live in `taem_jax.train.tasks`): TAEM
and the Wav2Lip expert/generator differ only in the model they build, the loss they compute,
which parameters are trainable and how they export. Everything else lives here:

* **Optimizer**: optax AdamW (β1, β2, ε, weight decay from `config.optim`) with linear warm-up,
  an optional cosine decay and global-norm clipping.
* **Parallelism**: a 1-D `('data',)` mesh (`taem_jax.train.mesh`); the train state is replicated,
  each batch is sharded on its leading axis and its buffers are donated to the step.
* **Randomness**: every RNG stream of the model is reseeded inside the step from
  `fold_in(seed, step)`, so step *s* draws the same dropout masks whether or not the run was
  interrupted before it.
* **Resume priority** (first that applies):
  1. the latest complete checkpoint in `<workdir>/checkpoints` (model, optimizer, step,
     data-iterator position; a killed run continues without losing or repeating a step);
  2. `init_from`: the task loads pretrained weights (e.g. converted Wav2Lip for the frozen
     parts) into a fresh model;
  3. a fresh model from `config.seed`.
* **Guards**: a non-finite loss or gradient norm stops the run with `NonFiniteError` naming the
  step (no checkpoint is written from the bad state); Ctrl-C / SIGTERM finish the current step,
  write a checkpoint and raise `KeyboardInterrupt`. In a multi-process run the signal must reach
  every process (as cluster schedulers do), since saving is a collective.

Library rule: no printing here. Progress bars, TensorBoard and JSONL logs are hooks
(`taem_jax.train.reporting`) that the command-line layer passes in.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import signal
import threading
import time
import zlib
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from taem_jax.train import checkpoint as ckpt_lib
from taem_jax.train import mesh as mesh_lib

log = logging.getLogger(__name__)

Batch = Mapping[str, np.ndarray]
Metrics = dict[str, jax.Array]


class NonFiniteError(FloatingPointError):
  """Loss or gradient norm became NaN/inf; the message names the step."""


class DataIterator(Protocol):
  """What the trainer needs from a data pipeline (a grain `DatasetIterator` qualifies).

  `__next__` returns this process's rows of the next global batch as numpy arrays;
  `get_state()` returns a JSON-able position and `set_state()` restores it exactly.
  """

  def __next__(self) -> Batch: ...

  def get_state(self) -> Any: ...

  def set_state(self, state: Any) -> None: ...


class Task(Protocol):
  """What a model family plugs into the trainer.

  Attributes:
    trainable: an `nnx` filter selecting the parameters that are optimised (e.g. `nnx.Param`,
      or `nnx.All(nnx.Param, nnx.PathContains('taem'))` to keep a pretrained part frozen).
  """

  trainable: Any

  def make_model(self, rngs: nnx.Rngs) -> nnx.Module:
    """Builds the model with fresh parameters."""

  def loss(self, model: nnx.Module, batch: Mapping[str, jax.Array],
           rng: jax.Array) -> tuple[jax.Array, Metrics]:
    """Scalar training loss and named scalar metrics (runs inside `jit`, training mode)."""

  # Optional methods (looked up with getattr):
  #   eval_metrics(model, batch) -> Metrics             held-out metrics (inside jit, eval mode)
  #   samples(model, batch) -> dict[str, np.ndarray]    images (N,H,W,C) / videos (N,T,H,W,C)
  #                                                     uint8 or [0,1] float, for the writers
  #   load_init(model, path) -> None                    pretrained weights for --init_from
  #   export(model, dst, *, step=None, overwrite=False) -> list[str]
  #                                                     writes the trained model where
  #                                                     synthesis loads it (--export); the
  #                                                     toy task has none


class Hook(Protocol):
  """Receives what the run produces; every method is optional (looked up with getattr).

  on_start(step, total_steps, origin)         once, after resume: completed steps, target, and
                                              where the state came from (see TrainResult)
  on_step(step, dict[str, float])             every step (metrics read one step late)
  on_train_metrics(step, dict[str, float])    every `log_every` steps (+ 'steps_per_sec')
  on_eval_metrics(step, dict[str, float])     after each validation pass (step 0 = before the
                                              first update, see `Trainer`)
  on_samples(step, dict[str, np.ndarray])     every `sample_every` steps (and at step 0)
  on_checkpoint(step)                         after each checkpoint write is started
  on_end(step)                                when the loop stops for any reason
  """


@dataclasses.dataclass
class TrainResult:
  """What `Trainer.run` returns."""
  step: int                      # completed steps
  model: nnx.Module              # trained model (host-side NNX object with replicated arrays)
  last_metrics: dict[str, float]  # the last logged training metrics
  resumed_from: str               # 'checkpoint@<step>', 'init_from', or 'scratch'


def make_optimizer(optim, num_steps: int | None = None
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """AdamW with warm-up, optional cosine decay and gradient clipping, from `config.optim`.

  Fields: learning_rate, b1, b2, eps, weight_decay, warmup_steps, schedule ('constant' or
  'cosine'), decay_steps (cosine only; 0 = `num_steps`, the run's length), final_lr_fraction
  (cosine only), clip_grad_norm (0 = off).
  """
  warmup = int(optim.warmup_steps)
  if optim.schedule == "constant":
    schedule = optax.join_schedules(
        [optax.linear_schedule(0.0, optim.learning_rate, max(warmup, 1)),
         optax.constant_schedule(optim.learning_rate)], [warmup]) if warmup else \
        optax.constant_schedule(optim.learning_rate)
  elif optim.schedule == "cosine":
    decay = int(optim.decay_steps) or int(num_steps or 0)
    if decay <= 0:
      raise ValueError("config.optim.decay_steps is 0 and the run's length is unknown")
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, optim.learning_rate, warmup, decay,
        end_value=optim.learning_rate * optim.final_lr_fraction)
  else:
    raise ValueError(f"config.optim.schedule must be 'constant' or 'cosine', got "
                     f"{optim.schedule!r}")
  parts = []
  if optim.clip_grad_norm:
    parts.append(optax.clip_by_global_norm(optim.clip_grad_norm))
  parts.append(optax.adamw(schedule, b1=optim.b1, b2=optim.b2, eps=optim.eps,
                           weight_decay=optim.weight_decay))
  return optax.chain(*parts), schedule


def _stream_tags(model: nnx.Module) -> list[str]:
  tags = {stream.key.tag for _, stream in nnx.graph.iter_graph(model)
          if isinstance(stream, nnx.RngStream)}
  return sorted(tags)


def _reseed(model: nnx.Module, tags: Sequence[str], key: jax.Array) -> None:
  # crc32, not hash(): Python's string hash changes between processes.
  if tags:
    nnx.reseed(model, **{t: jax.random.fold_in(key, zlib.crc32(t.encode())) for t in tags})


def _to_float(tree: Mapping[str, Any]) -> dict[str, float]:
  return {k: float(v) for k, v in jax.device_get(dict(tree)).items()}


class _StopSignals:
  """Turns SIGINT/SIGTERM into a flag checked between steps (main thread only)."""

  def __init__(self):
    self.received: int | None = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._old[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    if self.received is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C does not wait for the checkpoint
    self.received = signum

  def __exit__(self, *exc):
    for sig, old in self._old.items():
      signal.signal(sig, old)


class Trainer:
  """Runs one training job in `workdir` (see the module docstring for behaviour).

  Args:
    task: the model family (see `Task`).
    config: a ConfigDict (or any attribute tree) with `seed`, `optim.*` (see `make_optimizer`)
      and `train.*`: num_steps, log_every, checkpoint_every, keep_checkpoints,
      async_checkpointing, eval_every, eval_batches, sample_every, and optionally
      eval_at_start. Validation runs every `eval_every` steps, after the last step, and, in a
      fresh run with eval_at_start (default: on whenever eval_every is), once at step 0 before
      the first update, with samples too when sample_every is set (the untrained baseline; a
      resumed run does not redo it).
    workdir: run directory; checkpoints go to `<workdir>/checkpoints`.
    train_data: this process's training iterator (see `DataIterator`).
    eval_data: optional zero-argument callable returning a fresh held-out iterator.
    sample_data: optional zero-argument callable returning an iterator whose first batch is
      handed to `task.samples` (default: `eval_data`), e.g. held-out clips with their faces
      decoded when training batches carry none.
    mesh: the device mesh; all visible devices by default.
    hooks: objects receiving metrics, samples and progress (see `Hook`).
    init_from: optional path handed to `task.load_init` when there is no checkpoint yet.
  """

  def __init__(self, task: Task, config, workdir: str | os.PathLike, train_data: DataIterator,
               *, eval_data: Callable[[], Iterator[Batch]] | None = None,
               sample_data: Callable[[], Iterator[Batch]] | None = None,
               mesh: jax.sharding.Mesh | None = None, hooks: Sequence[Any] = (),
               init_from: str | None = None):
    self.task = task
    self.config = config
    self.workdir = os.fspath(workdir)
    self.train_data = train_data
    self.eval_data = eval_data
    self.sample_data = sample_data if sample_data is not None else eval_data
    self.mesh = mesh if mesh is not None else mesh_lib.make_mesh()
    self.hooks = list(hooks)
    self.init_from = init_from
    self.tx, self.schedule = make_optimizer(config.optim, config.train.num_steps)
    self.store = ckpt_lib.CheckpointStore(
        os.path.join(self.workdir, "checkpoints"), max_to_keep=config.train.keep_checkpoints,
        async_save=config.train.async_checkpointing)
    self._key = jax.random.key(config.seed)

  # -- hooks -------------------------------------------------------------------------------
  def _emit(self, name: str, *args) -> None:
    for hook in self.hooks:
      fn = getattr(hook, name, None)
      if fn is not None:
        fn(*args)

  # -- state -------------------------------------------------------------------------------
  def _build(self) -> tuple[int, str]:
    """Creates model + optimizer, restores or initialises them; returns (step, origin)."""
    model = self.task.make_model(nnx.Rngs(self.config.seed))
    step = self.store.latest_step()
    self._last_saved = step
    origin = "scratch"
    if step is None and self.init_from:
      self.task.load_init(model, self.init_from)
      origin = "init_from"
    optimizer = nnx.Optimizer(model, self.tx, wrt=self.task.trainable)
    self._stream_names = _stream_tags(model)
    self._graphdef, rng_state, state = nnx.split((model, optimizer), nnx.RngState, ...)
    # Every process built identical host values from the same seed/weights; place a full copy
    # on every device of the mesh.
    self._rng_state = mesh_lib.replicate(
        jax.tree.map(lambda k: jax.random.key_data(k) if _is_key(k) else k, rng_state),
        self.mesh)
    self._rng_is_key = jax.tree.map(_is_key, rng_state)
    self._state = mesh_lib.replicate(state, self.mesh)
    if step is not None:
      target = ckpt_lib.abstract_like(self._pure(self._state))
      restored, meta = self.store.restore(step, target)
      nnx.replace_by_pure_dict(self._state, {0: restored["model"], 1: restored["optimizer"]})
      self.train_data.set_state(meta["data_iterator"])
      origin = f"checkpoint@{step}"
      saved_step = int(np.asarray(restored["optimizer"]["step"].addressable_data(0)))
      if saved_step != step:
        raise RuntimeError(f"checkpoint {step} holds optimizer step {saved_step}")
    return (step or 0), origin

  @staticmethod
  def _pure(state) -> dict[str, Any]:
    return {"model": nnx.to_pure_dict(state[0]), "optimizer": nnx.to_pure_dict(state[1])}

  def _merge(self, rng_raw, state):
    rng_state = jax.tree.map(lambda v, is_key: jax.random.wrap_key_data(v) if is_key else v,
                             rng_raw, self._rng_is_key)
    return nnx.merge(self._graphdef, rng_state, state)

  def model(self) -> nnx.Module:
    """The current model (shares arrays with the train state; do not mutate)."""
    return self._merge(self._rng_state, self._state)[0]

  # -- compiled steps ----------------------------------------------------------------------
  def _compile(self) -> None:
    repl = mesh_lib.replicated(self.mesh)
    data = mesh_lib.data_sharded(self.mesh)
    task, key, tags, schedule = self.task, self._key, self._stream_names, self.schedule

    def train_step(rng_raw, state, batch):
      model, optimizer = self._merge(rng_raw, state)
      step = optimizer.step.get_value()
      step_key = jax.random.fold_in(key, step)
      _reseed(model, tags, step_key)

      def loss_fn(m):
        return task.loss(m, batch, step_key)

      grad_fn = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, task.trainable),
                                   has_aux=True)
      (loss, metrics), grads = grad_fn(model)
      optimizer.update(model, grads)
      metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads),
                     lr=schedule(step))
      _, _, new_state = nnx.split((model, optimizer), nnx.RngState, ...)
      return new_state, metrics

    def eval_step(rng_raw, state, batch):
      model, _ = self._merge(rng_raw, state)
      return task.eval_metrics(model, batch)

    self._train_step = jax.jit(train_step, in_shardings=(repl, repl, data),
                               out_shardings=(repl, repl), donate_argnums=(1,))
    self._eval_step = None
    if getattr(task, "eval_metrics", None) is not None:
      self._eval_step = jax.jit(eval_step, in_shardings=(repl, repl, data), out_shardings=repl)

  # -- pieces of the loop ------------------------------------------------------------------
  def _save(self, step: int) -> None:
    if step == self._last_saved:
      return
    self._last_saved = step
    self.store.save(step, self._pure(self._state), self.train_data.get_state(),
                    _config_dict(self.config))
    self._emit("on_checkpoint", step)

  def evaluate(self, step: int) -> dict[str, float]:
    """Mean of `task.eval_metrics` over `config.train.eval_batches` held-out batches."""
    if self.eval_data is None or self._eval_step is None:
      return {}
    totals, n = {}, 0
    it = self.eval_data()
    for _ in range(self.config.train.eval_batches):
      try:
        batch = next(it)
      except StopIteration:
        break
      m = self._eval_step(self._rng_state, self._state, mesh_lib.shard_batch(batch, self.mesh))
      for k, v in _to_float(m).items():
        totals[k] = totals.get(k, 0.0) + v
      n += 1
    result = {k: v / n for k, v in totals.items()} if n else {}
    self._emit("on_eval_metrics", step, result)
    return result

  def _samples(self, step: int) -> None:
    fn = getattr(self.task, "samples", None)
    if fn is None or self.sample_data is None:
      return
    batch = next(iter(self.sample_data()), None)
    if batch is None:  # an empty held-out split: nothing to show
      return
    samples = fn(self.model(), batch)
    if samples:  # a task may have nothing to render with (it logs why)
      self._emit("on_samples", step, samples)

  def _check_finite(self, step: int, metrics: dict[str, float]) -> None:
    bad = [k for k in ("loss", "grad_norm") if not math.isfinite(metrics.get(k, 0.0))]
    if bad:
      detail = ", ".join(f"{k}={metrics[k]}" for k in sorted(metrics))
      raise NonFiniteError(
          f"non-finite {' and '.join(bad)} at step {step} ({detail}); the last checkpoint "
          f"before it is kept in {self.store.directory}. Lower config.optim.learning_rate or "
          "enable config.optim.clip_grad_norm, then rerun to resume from it")

  # -- the loop ----------------------------------------------------------------------------
  def run(self) -> TrainResult:
    """Trains until `config.train.num_steps` completed steps (resuming if possible)."""
    tc = self.config.train
    total = int(tc.num_steps)
    step, origin = self._build()
    log.info("training from %s at step %d of %d on %d device(s), %d process(es)", origin,
             step, total, self.mesh.devices.size, jax.process_count())
    self._compile()
    self._emit("on_start", step, total, origin)
    eval_every = int(getattr(tc, "eval_every", 0) or 0)
    if step == 0 and step < total and getattr(tc, "eval_at_start", bool(eval_every)):
      # The untrained baseline, so held-out curves start where the training curves do. Only a
      # fresh run gets here: a resumed one already logged it.
      self.evaluate(0)
      if tc.sample_every:
        self._samples(0)
    self._last = {}
    self._window = (time.perf_counter(), step)
    # Metrics of step s are read after step s+1 has been dispatched, so the host does not
    # stall the device; they are settled early when a checkpoint, eval or stop needs step s.
    pending: tuple[int, Metrics] | None = None
    try:
      with _StopSignals() as stop:
        while step < total:
          batch = mesh_lib.shard_batch(next(self.train_data), self.mesh)
          self._state, metrics = self._train_step(self._rng_state, self._state, batch)
          step += 1
          if pending is not None:
            self._settle(*pending, total)
          pending = (step, metrics)
          must_save = bool(tc.checkpoint_every and step % tc.checkpoint_every == 0)
          # The last step is validated too, so the held-out curve ends where training does.
          must_eval = bool(eval_every and (step % eval_every == 0 or step == total))
          must_sample = bool(tc.sample_every and step % tc.sample_every == 0)
          stopping = stop.received is not None
          if must_save or must_eval or must_sample or stopping or step == total:
            self._settle(*pending, total)
            pending = None
          if must_save or stopping or step == total:
            self._save(step)
          if must_eval:
            self.evaluate(step)
          if must_sample:
            self._samples(step)
          if must_eval or must_sample:  # steps_per_sec measures training only
            self._window = (time.perf_counter(), step)
          if stopping:
            raise KeyboardInterrupt(f"stopped by signal {stop.received} after step {step}; "
                                    "checkpoint saved")
    finally:
      self.store.wait()
      self._emit("on_end", step)
    return TrainResult(step=step, model=self.model(), last_metrics=dict(self._last),
                       resumed_from=origin)

  def _settle(self, step: int, metrics: Metrics, total: int) -> None:
    """Reads step `step`'s metrics: non-finite guard, progress, periodic logging."""
    values = _to_float(metrics)
    self._check_finite(step, values)
    self._last = values
    self._emit("on_step", step, values)
    if step % self.config.train.log_every == 0 or step == total:
      t0, s0 = self._window
      now = time.perf_counter()
      values = dict(values, steps_per_sec=(step - s0) / max(now - t0, 1e-9))
      self._window = (now, step)
      self._emit("on_train_metrics", step, values)

  def close(self) -> None:
    self.store.close()


def _is_key(x) -> bool:
  return isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _config_dict(config) -> dict[str, Any]:
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  return _jsonable(config)


def _jsonable(x):
  if isinstance(x, Mapping):
    return {str(k): _jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_jsonable(v) for v in x]
  if isinstance(x, (str, int, float, bool)) or x is None:
    return x
  return repr(x)

