"""Convert official PyTorch checkpoints of the Wav2Lip family into taem_jax checkpoints.

  python -m porting.convert --src wav2lip_gan.pth --dst ckpt/wav2lip_gan [--family auto]

Understands every official file form, without torch:
  wav2lip.pth, wav2lip_gan.pth     dict with 'state_dict' (+ optimizer, global_step, ...),
                                   keys with or without a leading 'module.'
  Wav2Lip-SD-GAN.pt / -NOGAN.pt    TorchScript archives (weights read, no code run)
  lipsync_expert.pth               Wav2Lip's lip-sync expert (SyncNet_color)
  visual_quality_disc.pth          Wav2Lip's visual-quality discriminator
  syncnet_v2.model                 joonson/syncnet_python's SyncNet (LSE-D/LSE-C metric)
  s3fd-619a316812.pth              the S3FD face detector official Wav2Lip runs (bare state_dict)
  <epoch>_net_G.pth                PC-AVS's generator netG (bare state_dict)
  <epoch>_net_V.pth, _net_E.pth    PC-AVS identity (ResNeXt-50) and pose (FAN) encoders
                                   (bare state_dicts; grouped convs keep the usual transform)
  <epoch>_net_A_sync.pth           PC-AVS audio content encoder netA_sync
  a PC-AVS checkpoint folder       (e.g. checkpoints/demo/) holding latest_net_G.pth, _V, _E
                                   and _A_sync: --src FOLDER writes ONE family `pcavs`
                                   directory (`taem_jax.models.pcavs.PCAVS`, the PC-AVS backbone)
in the legacy (torch < 1.6) and zip serialisations alike. The family is recognised from the
key set; every key must be present with its exact shape (`num_batches_tracked` may be absent),
and nothing unexpected may be left over. The destination directory (Orbax state + sidecar
`taem_jax.json`, load it with `taem_jax.models.load_pretrained`) is only written once all
checks have passed.

Library use: `porting.convert(src, dst_dir, family="auto") -> str` (a folder: `convert_pcavs_folder`); the pure-numpy core is
`convert_state_dict(arrays, family) -> (family, {nnx path: array})` and `build_model`.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import time

import numpy as np

from porting import families as fam_lib
from porting import torchfile
from taem_jax.errors import UserError, cli_main

CONVERTER_VERSION = "1"

FAMILY_CHOICES = ("auto",) + fam_lib.FAMILY_NAMES + ("pcavs",)  # pcavs: a folder of four files

# torch leaf name per entry kind -> NNX variable name.
_LEAF = {"conv": "kernel", "convT": "kernel", "conv3d": "kernel", "linear": "kernel",
         "conv1d": "kernel",
         "bias": "bias", "bn_scale": "scale", "bn_bias": "bias", "bn_mean": "mean",
         "bn_var": "var", "l2norm": "scale",
         # pcavs_G; None keeps the torch leaf name (`input.input`, `noises.noise_3`).
         "eqlinear": "kernel", "modconv": "kernel", "mod_bias": "bias", "act_bias": "bias",
         "noise_strength": "strength", "const": None, "noise_buf": None}
# Buffers that carry no information (num_batches_tracked; pcavs_G's constant FIR kernels):
# they may be absent; a FIR kernel that is present must equal the architecture's.
_DROPPED = ("bn_count", "fir")

# Layout transform per kind (PyTorch -> the layouts documented in taem_jax/models/layers.py).
_TRANSFORMS = {
    "conv": lambda w: w.transpose(2, 3, 1, 0),          # (O, I, H, W) -> HWIO
    "convT": lambda w: w.transpose(2, 3, 0, 1),         # (I, O, H, W) -> (H, W, I, O), no flip
    "conv3d": lambda w: w.transpose(2, 3, 4, 1, 0),     # (O, I, T, H, W) -> THWIO
    "linear": lambda w: w.T,                            # (out, in) -> (in, out)
    "eqlinear": lambda w: w.T,                          # unscaled, (out, in) -> (in, out)
    "modconv": lambda w: w[0].transpose(2, 3, 1, 0),    # (1, O, I, H, W) -> HWIO, unscaled
    "act_bias": lambda b: b.reshape(-1),                # (1, C, 1, 1) -> (C,)
    "const": lambda x: x.transpose(0, 2, 3, 1),         # (1, C, H, W) -> (1, H, W, C)
    "noise_buf": lambda x: x.transpose(0, 2, 3, 1),     # (1, 1, H, W) -> (1, H, W, 1)
    "conv1d": lambda w: w.transpose(2, 1, 0),           # (O, I, K) -> (K, I, O)
}


def nnx_path(key: str, kind: str) -> tuple:
  """The NNX state path of an official torch key, e.g.

  'face_encoder_blocks.1.2.conv_block.0.weight' -> ('face_encoder_blocks', 1, 2, 'conv', 'kernel')
  'netcnnaud.1.running_var' -> ('netcnnaud', 1, 'var'). Wrapper children `conv_block.0` and
  `conv_block.1` become `conv` and `bn`; list indices become ints.
  """
  parts = key.split(".")
  out: list = []
  i = 0
  while i < len(parts) - 1:
    if parts[i] == "conv_block" and parts[i + 1] in ("0", "1"):
      out.append("conv" if parts[i + 1] == "0" else "bn")
      i += 2
      continue
    out.append(int(parts[i]) if parts[i].isdigit() else parts[i])
    i += 1
  return tuple(out) + (_LEAF[kind] or parts[-1],)


def mapping_table(family: str) -> list[tuple[str, tuple, tuple, str]]:
  """(torch key, torch shape, NNX path, transform kind) for every converted entry of `family`
  (BatchNorm `num_batches_tracked` counters are dropped and not listed)."""
  return [(e.key, e.shape, nnx_path(e.key, e.kind), e.kind)
          for e in fam_lib.official_entries(family) if e.kind not in _DROPPED]


def _strip_prefix(keys: list[str]) -> tuple[dict[str, str], str]:
  """Maps file keys to official keys by dropping a DataParallel-style `module.` prefix."""
  if keys and all(k.startswith("module.") for k in keys):
    return {k: k[len("module."):] for k in keys}, "module."
  return {k: k for k in keys}, ""


def _required(family: str) -> set[str]:
  return {e.key for e in fam_lib.official_entries(family) if e.kind not in _DROPPED}


def detect_family(keys) -> tuple[str | None, dict[str, float]]:
  """Best-matching family for a key set (None if nothing matches half its keys) + scores."""
  keys = {k for k in keys if not k.endswith("num_batches_tracked")}
  scores = {}
  for fam in fam_lib.FAMILY_NAMES:
    req = _required(fam)
    scores[fam] = len(keys & req) / max(1, len(keys | req))
  best = max(scores, key=scores.get)
  return (best if scores[best] >= 0.5 else None), scores


def convert_state_dict(arrays: dict[str, np.ndarray], family: str = "auto",
                       source: str = "checkpoint") -> tuple[str, dict[tuple, np.ndarray]]:
  """Validates an official state dict and converts it to NNX layout (numpy only).

  Args:
    arrays: torch key -> array (PyTorch layout), optionally with a leading `module.`.
    family: 'auto' or one of porting.families.FAMILY_NAMES.
    source: what to call the input in error messages (e.g. the file name).
  Returns:
    (family, {NNX path tuple: float32 array in NNX layout}).
  Raises:
    UserError: unknown/wrong family, missing, unexpected or wrong-shaped key, non-finite
      or non-numeric values (one line naming the first offending key).
  """
  if family not in ("auto",) + fam_lib.FAMILY_NAMES:
    raise UserError(f"unknown family {family!r} for one state dict; use one of auto, "
                    f"{', '.join(fam_lib.FAMILY_NAMES)}")
  rename, _ = _strip_prefix(list(arrays))
  official = {rename[k]: v for k, v in arrays.items()}
  detected, scores = detect_family(official)
  if family == "auto":
    if detected is None:
      best = max(scores, key=scores.get)
      raise UserError(
          f"{source}: cannot tell which model these {len(official)} weights belong to (closest "
          f"is {best} with {scores[best]:.0%} of its keys, e.g. first key "
          f"{next(iter(official), '<none>')!r}); is it a Wav2Lip/SyncNet checkpoint?")
    family = detected
  elif detected is not None and detected != family:
    raise UserError(f"{source} is a {detected} checkpoint ({fam_lib.FAMILY_FILES[detected]}), "
                    f"not {family}; pass --family {detected} or --family auto")

  entries = {e.key: e for e in fam_lib.official_entries(family)}
  missing = [k for k in entries if k not in official and entries[k].kind not in _DROPPED]
  if missing:
    raise UserError(f"{source}: missing key {missing[0]!r} for {family} "
                    f"({len(missing)} of {len(_required(family))} missing)")
  extra = [k for k in official if k not in entries]
  if extra:
    raise UserError(f"{source}: unexpected key {extra[0]!r} for {family} ({len(extra)} "
                    "unexpected); is it a modified architecture?")
  out = {}
  for key, arr in official.items():
    e = entries[key]
    arr = np.asarray(arr)
    if tuple(arr.shape) != tuple(e.shape):
      raise UserError(f"{source}: key {key!r} has shape {tuple(arr.shape)}, expected "
                      f"{tuple(e.shape)} for {family}")
    if e.kind == "bn_count":
      continue
    if e.kind == "fir":
      if not np.allclose(arr, fam_lib.pcavs_fir_kernel(), rtol=0, atol=1e-6):
        raise UserError(f"{source}: key {key!r} is not the standard [1, 3, 3, 1] blur kernel; "
                        "this generator variant is not supported")
      continue
    if arr.dtype.kind != "f":
      raise UserError(f"{source}: key {key!r} has dtype {arr.dtype}, expected floating point")
    if not np.all(np.isfinite(arr)):
      raise UserError(f"{source}: key {key!r} contains NaN or Inf values; the checkpoint is "
                      "damaged")
    fn = _TRANSFORMS.get(e.kind)
    arr = arr.astype(np.float32)
    out[nnx_path(key, e.kind)] = np.ascontiguousarray(fn(arr) if fn else arr)
  return family, out


def build_model(family: str, params: dict[tuple, np.ndarray], config: dict | None = None):
  """An eval-mode NNX model of `family` holding `params` (from `convert_state_dict`).

  Raises:
    UserError: the NNX model's variables do not match the converted set (a converter/model
      mismatch: names the first differing path).
  """
  # Lazy (here and in `convert`): reading and checking a file needs no jax, so a bad file fails
  # in well under a second instead of after jax's import.
  import jax  # noqa: PLC0415
  import jax.numpy as jnp  # noqa: PLC0415
  from flax import nnx  # noqa: PLC0415

  from taem_jax.models import FAMILIES  # noqa: PLC0415

  cls = FAMILIES[family]
  abstract = nnx.eval_shape(lambda: cls(**(config or {}), rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(abstract)
  pure = nnx.to_pure_dict(state)
  flat = {tuple(k.key if hasattr(k, "key") else k.idx for k in path): leaf
          for path, leaf in jax.tree_util.tree_flatten_with_path(pure)[0]}
  flat = {tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in k): v
          for k, v in flat.items()}
  missing = sorted(set(flat) - set(params), key=str)
  extra = sorted(set(params) - set(flat), key=str)
  if missing or extra:
    which = f"model variable {missing[0]} has no source" if missing else (
        f"converted {extra[0]} has no model variable")
    raise UserError(f"{family}: converter and model disagree: {which}")
  for path, leaf in flat.items():
    if tuple(leaf.shape) != tuple(params[path].shape):
      raise UserError(f"{family}: converted {path} has shape {params[path].shape}, the model "
                      f"expects {tuple(leaf.shape)}")

  def fill(tree, prefix=()):
    out = {}
    for k, v in tree.items():
      path = prefix + (int(k) if isinstance(k, str) and k.isdigit() else k,)
      out[k] = fill(v, path) if isinstance(v, dict) else jnp.asarray(params[path])
    return out

  nnx.replace_by_pure_dict(state, fill(pure))
  model = nnx.merge(graphdef, state)
  model.eval()
  return model


def _sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 22), b""):
      h.update(chunk)
  return h.hexdigest()


def read_checkpoint(src) -> tuple[dict[str, np.ndarray], str]:
  """Model weights of a torch checkpoint file (torch-free) and its format name."""
  with torchfile.open_torch_file(src) as tf:
    tensors = tf.tensors()
    arrays = {k: v.numpy() for k, v in tensors.items()}
    return arrays, tf.format


def convert(src, dst_dir, family: str = "auto", *, overwrite: bool = False,
            stats: dict | None = None) -> str:
  """Converts the PyTorch checkpoint `src` into a taem_jax checkpoint directory `dst_dir`.

  Args:
    src: a .pth / .pt / .model file of the Wav2Lip family (see the module docstring), or a
      PC-AVS checkpoint folder (`convert_pcavs_folder`).
    dst_dir: output directory; must not exist unless `overwrite`. Nothing is written there
      unless the whole conversion succeeds.
    family: 'auto' (recognise from the keys) or a family name to insist on.
    overwrite: replace an existing `dst_dir`.
    stats: if a dict is given, it is filled with family, num_params, num_keys, format, seconds.
  Returns:
    the destination path as a string.
  Raises:
    UserError: unreadable/malicious/truncated file, wrong family, missing/extra/mis-shaped key.
  """
  if os.path.isdir(src):
    if family not in ("auto", "pcavs"):
      raise UserError(f"{src} is a folder (a PC-AVS checkpoint folder); --family {family} "
                      "takes a single file")
    return convert_pcavs_folder(src, dst_dir, overwrite=overwrite, stats=stats)
  if family == "pcavs":
    raise UserError(f"--family pcavs converts a PC-AVS checkpoint folder (latest_net_G.pth, _V, "
                    f"_E, _A_sync), not the file {src}; pass the folder as --src")
  t0 = time.perf_counter()
  src = os.fspath(src)
  dst_dir = os.fspath(dst_dir)
  if os.path.exists(dst_dir) and not overwrite:
    raise UserError(f"{dst_dir} already exists; choose a new --dst or delete it first")
  arrays, fmt = read_checkpoint(src)
  name = os.path.basename(src)
  family, params = convert_state_dict(arrays, family, source=name)
  # jax/flax/orbax are imported only now, so a bad file fails fast.
  from taem_jax.models.pretrained import save_pretrained  # noqa: PLC0415

  model = build_model(family, params)
  _, prefix = _strip_prefix(list(arrays))
  meta = {
      "source_file": name,
      "source_sha256": _sha256(src),
      "source_format": fmt,
      "source_keys": len(arrays),
      "source_prefix_stripped": prefix,
      "converter": "porting.convert",
      "converter_version": CONVERTER_VERSION,
  }
  out = save_pretrained(model, dst_dir, family=family, config=model.get_config(),
                        extra_meta=meta, overwrite=overwrite)
  if stats is not None:
    stats.update(family=family, format=fmt, num_keys=len(arrays),
                 num_params=fam_lib.num_params(family), seconds=time.perf_counter() - t0)
  return out


PCAVS_EPOCH = "latest"  # official test options' --which_epoch


def convert_pcavs_folder(src_dir, dst_dir, *, epoch: str = PCAVS_EPOCH, overwrite: bool = False,
                         stats: dict | None = None) -> str:
  """Converts an official PC-AVS checkpoint folder into one `pcavs` checkpoint directory.

  Args:
    src_dir: the folder holding `<epoch>_net_G.pth`, `_V`, `_E` and `_A_sync` (official
      `checkpoints/<name>/`; other files there are ignored).
    dst_dir, overwrite, stats: as `convert` (stats' num_params / num_keys over all four).
  Returns:
    the destination path (load it with `taem_jax.models.targets.PCAVSTarget.load`).
  Raises:
    UserError: a missing file (one line naming it) or any error `convert` raises for a file.
  """
  t0 = time.perf_counter()
  src_dir, dst_dir = os.fspath(src_dir), os.fspath(dst_dir)
  if os.path.exists(dst_dir) and not overwrite:
    raise UserError(f"{dst_dir} already exists; choose a new --dst or delete it first")
  from taem_jax.models.pcavs import NETS  # noqa: PLC0415 - jax only once the files are read

  files = {net: os.path.join(src_dir, f"{epoch}_net_{suffix}.pth") for net, suffix in NETS.items()}
  missing = [f for f in files.values() if not os.path.isfile(f)]
  if missing:
    raise UserError(f"{src_dir} is not a PC-AVS checkpoint folder: {os.path.basename(missing[0])} "
                    f"is missing (it needs {', '.join(os.path.basename(f) for f in files.values())})")
  params, meta, keys, formats = {}, {}, 0, set()
  for net, path in files.items():
    arrays, fmt = read_checkpoint(path)
    name = os.path.basename(path)
    family, converted = convert_state_dict(arrays, f"pcavs_{NETS[net]}", source=name)
    params.update({(net,) + k: v for k, v in converted.items()})
    _, prefix = _strip_prefix(list(arrays))
    meta[net] = {"source_file": name, "source_sha256": _sha256(path), "source_format": fmt,
                 "source_keys": len(arrays), "source_prefix_stripped": prefix}
    keys += len(arrays)
    formats.add(fmt)
  from taem_jax.models.pretrained import save_pretrained  # noqa: PLC0415

  model = build_model("pcavs", params)
  out = save_pretrained(model, dst_dir, family="pcavs", config=model.get_config(),
                        extra_meta={"sources": meta, "converter": "porting.convert",
                                    "converter_version": CONVERTER_VERSION},
                        overwrite=overwrite)
  if stats is not None:
    stats.update(family="pcavs", format="+".join(sorted(formats)), num_keys=keys,
                 num_params=sum(fam_lib.num_params(f"pcavs_{s}") for s in NETS.values()),
                 seconds=time.perf_counter() - t0)
  return out


@cli_main
def main(argv=None):
  parser = argparse.ArgumentParser(
      prog="python -m porting.convert",
      description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--src", required=True,
                      help="PyTorch checkpoint file (.pth, .pt TorchScript, syncnet_v2.model), "
                           "or a PC-AVS checkpoint folder (latest_net_{G,V,E,A_sync}.pth)")
  parser.add_argument("--dst", required=True,
                      help="output directory to create (load it with "
                           "taem_jax.models.load_pretrained)")
  parser.add_argument("--family", default="auto", choices=FAMILY_CHOICES,
                      help="model family; 'auto' recognises it from the key names (default)")
  parser.add_argument("--overwrite", action="store_true",
                      help="replace --dst if it exists (only after the new one is complete)")
  args = parser.parse_args(argv)
  stats: dict = {}
  out = convert(args.src, args.dst, args.family, overwrite=args.overwrite, stats=stats)
  print(f"converted {stats['family']}: {stats['num_params']:,} params from {stats['num_keys']} "
        f"{stats['format']} keys in {stats['seconds']:.1f} s -> {out}")
  return 0


if __name__ == "__main__":
  main()
