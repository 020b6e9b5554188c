"""Pretrained model directories: an Orbax checkpoint of the model state plus a JSON sidecar.

Layout of a directory written by `save_pretrained`:

  <dir>/taem_jax.json   {"format": 1, "family": ..., "config": {...}, "num_params": ...,
                         "num_batch_stats": ..., "num_arrays": ..., + the caller's extra_meta}
  <dir>/state/          Orbax StandardCheckpointer output of nnx.to_pure_dict(nnx.state(model))
                        (params and BatchNorm running statistics; dropout RNG streams are
                        not saved and restart from seed 0 on load)

The directory is assembled under a temporary name next to the destination and renamed at the
end, so a half-written directory never carries the final name.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import uuid

import jax
import numpy as np
from flax import nnx

from taem_jax.errors import UserError
from taem_jax.models.registry import FAMILIES
from taem_jax.models.taem import TAEM

SIDECAR = "taem_jax.json"
STATE_DIR = "state"
FORMAT_VERSION = 1


def _families():
  """Every family a directory can hold: the Wav2Lip family (FAMILIES) plus TAEM."""
  return {**FAMILIES, TAEM.family: TAEM}


def _build(cls, config: dict, rngs):
  """cls from its stored keyword config (a class may define `from_config(config, rngs=)`)."""
  if hasattr(cls, "from_config"):
    return cls.from_config(config, rngs=rngs)
  return cls(**config, rngs=rngs)


def _count(model, var_type) -> int:
  return int(sum(np.size(x) for x in jax.tree.leaves(nnx.state(model, var_type))))


def _json_ready(obj, what: str):
  try:
    return json.loads(json.dumps(obj))
  except (TypeError, ValueError) as e:
    raise ValueError(f"{what} must be JSON-serialisable: {e}") from None


def save_pretrained(model: nnx.Module, dst_dir, *, family: str, config: dict,
                    extra_meta: dict | None = None, overwrite: bool = False) -> str:
  """Writes `model`'s params + batch stats and a sidecar describing how to rebuild it.

  Args:
    model: a module of `family`, built as FAMILIES[family](**config, rngs=...).
    dst_dir: destination directory (must not exist unless `overwrite`).
    family: key of `taem_jax.models.FAMILIES`, or 'taem'.
    config: the constructor keyword config (JSON-serialisable).
    extra_meta: extra sidecar fields (e.g. source sha256, converter version, key count).
    overwrite: replace an existing directory (the old one is removed only after the new one is
      complete).
  Returns:
    the destination path as a string.
  """
  import orbax.checkpoint as ocp  # lazy: orbax takes seconds to import

  families = _families()
  if family not in families:
    raise ValueError(f"unknown family {family!r}; known: {sorted(families)}")
  if not isinstance(model, families[family]):
    raise ValueError(f"model is a {type(model).__name__}, not a {family} model")
  meta = {"format": FORMAT_VERSION, "family": family,
          "config": _json_ready(dict(config), "config")}
  for k, v in _json_ready(dict(extra_meta or {}), "extra_meta").items():
    if k in meta:
      raise ValueError(f"extra_meta may not override {k!r}")
    meta[k] = v

  dst = pathlib.Path(dst_dir).expanduser().absolute()
  if dst.exists() and not overwrite:
    raise UserError(f"{dst} already exists; choose another directory or pass overwrite")
  dst.parent.mkdir(parents=True, exist_ok=True)

  state = nnx.state(model, nnx.Not(nnx.RngState))
  meta["num_params"] = _count(model, nnx.Param)
  meta["num_batch_stats"] = _count(model, nnx.BatchStat)
  meta["num_arrays"] = len(jax.tree.leaves(state))
  pure = nnx.to_pure_dict(state)

  tmp = dst.parent / f".{dst.name}.tmp-{uuid.uuid4().hex[:8]}"
  try:
    tmp.mkdir()
    ckptr = ocp.StandardCheckpointer()
    ckptr.save(tmp / STATE_DIR, pure)
    ckptr.wait_until_finished()
    ckptr.close()
    with open(tmp / SIDECAR, "w") as f:
      json.dump(meta, f, indent=2, sort_keys=True)
      f.write("\n")
    if dst.exists():
      old = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
      os.rename(dst, old)
      os.rename(tmp, dst)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.rename(tmp, dst)
  finally:
    if tmp.exists():
      shutil.rmtree(tmp, ignore_errors=True)
  return str(dst)


def read_sidecar(path) -> dict:
  """The sidecar of a pretrained directory (raises UserError with one line if unusable)."""
  d = pathlib.Path(path).expanduser()
  if not d.exists():
    raise UserError(f"checkpoint directory not found: {d}")
  if not d.is_dir():
    raise UserError(f"{d} is a file, not a taem_jax checkpoint directory (convert .pth files "
                    "with `python -m porting.convert --src FILE --dst DIR` first)")
  side = d / SIDECAR
  if not side.is_file():
    raise UserError(f"{d} has no {SIDECAR}: not a taem_jax checkpoint directory (or an "
                    "incomplete one); convert or save it again")
  try:
    meta = json.loads(side.read_text())
  except (OSError, ValueError) as e:
    raise UserError(f"{side} is unreadable or corrupted ({e.__class__.__name__}); save or "
                    "convert the checkpoint again") from None
  if not isinstance(meta, dict) or "family" not in meta or not isinstance(
      meta.get("config", {}), dict):
    raise UserError(f"{side} lacks 'family'/'config': not a taem_jax checkpoint sidecar")
  return meta


def load_pretrained(path, family: str | None = None) -> nnx.Module:
  """Rebuilds the model stored in `path` (from `save_pretrained`), in eval mode.

  Args:
    path: the checkpoint directory.
    family: if given, refuse a checkpoint of any other family.
  Returns:
    the module (BatchNorm on running statistics; call `.train()` to fine-tune), with
    `.family` set.
  Raises:
    UserError: missing directory, no sidecar, unknown or unexpected family, corrupted or
      partial checkpoint.
  """
  import orbax.checkpoint as ocp  # lazy: orbax takes seconds to import

  d = pathlib.Path(path).expanduser().absolute()
  meta = read_sidecar(d)
  families = _families()
  fam = meta["family"]
  if fam not in families:
    raise UserError(f"{d} holds an unknown model family {fam!r} (known: "
                    f"{', '.join(sorted(families))}); is taem_jax too old for it?")
  if family is not None and family != fam:
    raise UserError(f"{d} holds a {fam} checkpoint, expected {family}")
  cls = families[fam]
  try:
    abstract = nnx.eval_shape(lambda: _build(cls, meta.get("config", {}), nnx.Rngs(0)))
  except (TypeError, ValueError) as e:
    raise UserError(f"{d}: config in {SIDECAR} does not fit {cls.__name__} ({e})") from None
  graphdef, abstract_state, abstract_rng = nnx.split(abstract, nnx.Not(nnx.RngState), ...)
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                        nnx.to_pure_dict(abstract_state))
  state_dir = d / STATE_DIR
  if not state_dir.is_dir():
    raise UserError(f"{d} has no {STATE_DIR}/ checkpoint: partial or corrupted; save or "
                    "convert it again")
  def by_path(tree, is_leaf=None):
    flat = jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]
    return {tuple(str(getattr(k, "key", getattr(k, "idx", k))) for k in p): tuple(x.shape)
            for p, x in flat}

  ckptr = ocp.StandardCheckpointer()
  try:
    # Compare the stored array shapes first: a clean message instead of orbax's async errors.
    stored = ckptr.metadata(state_dir)
    stored = getattr(stored, "item_metadata", stored)
    stored = by_path(getattr(stored, "tree", stored), is_leaf=lambda x: hasattr(x, "shape"))
  except Exception as e:  # orbax/tensorstore raise many types for a damaged checkpoint
    ckptr.close()
    raise UserError(f"{d}: cannot read the checkpoint (corrupted or partial: {_first_line(e)}); "
                    "save or convert it again") from None
  if not stored:
    ckptr.close()
    raise UserError(f"{d}: cannot read the checkpoint's metadata (corrupted or partial); save or "
                    "convert it again")
  want = by_path(target)
  if stored != want:
    diff = sorted(set(stored.items()) ^ set(want.items()))
    ckptr.close()
    raise UserError(f"{d}: stored arrays do not match the {fam} architecture of its sidecar "
                    f"(e.g. {'/'.join(diff[0][0])}); the checkpoint is corrupted")
  try:
    restored = ckptr.restore(state_dir, target)
  except Exception as e:
    raise UserError(f"{d}: cannot restore the checkpoint (corrupted or partial: "
                    f"{_first_line(e)}); save or convert it again") from None
  finally:
    ckptr.close()
  nnx.replace_by_pure_dict(abstract_state, restored)
  model = nnx.merge(graphdef, abstract_state, jax.tree.map(_fresh_rng, abstract_rng))
  model.eval()
  return model



def _fresh_rng(x):
  """A concrete RNG-stream leaf (seed 0 key or zero count) for an abstract one."""
  if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    return jax.random.key(0)
  return jax.numpy.zeros(x.shape, x.dtype)


def _first_line(e: Exception) -> str:
  text = str(e).strip()
  return text.splitlines()[0][:200] if text else type(e).__name__
