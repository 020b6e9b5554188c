"""Torch-free reader for files written by `torch.save` and `torch.jit.save`.

Three on-disk forms are understood, all without importing torch:

* **zip** (torch >= 1.6 default): a zip archive `<name>/data.pkl` + `<name>/data/<key>` raw
  storages + `<name>/byteorder`.
* **legacy** (torch < 1.6, or `_use_new_zipfile_serialization=False`): one stream of pickles:
  magic number, protocol version, sys_info, the object pickle (storages as persistent ids), the
  list of storage keys, then each storage as an int64 element count followed by its raw bytes.
* **torchscript** (`torch.jit.save`, e.g. `Wav2Lip-SD-GAN.pt`): a zip like the above plus
  `code/` and `constants.pkl`. `data.pkl` pickles the module objects as `__torch__.*` classes
  whose attributes hold the parameters; they are rebuilt as inert `ScriptObject`s and their
  tensors named the way `state_dict()` names them. No TorchScript code is ever run.

Pickles are read with a restricted unpickler: only tensor/storage rebuild functions,
`collections.OrderedDict` and a few inert torch helpers resolve; any other global (say
`os.system`) raises a `UserError` before anything is called, so a malicious file cannot run
code. Tensors come back as `LazyTensor`s that read their bytes only when `.numpy()` is called,
so an optimizer state that is never used is never loaded.

Public API: `open_torch_file(path) -> TorchFile` (a context manager), `TorchFile.tensors()`
(flat name -> LazyTensor of the model weights), `load_state_dict(path)`.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Callable

import numpy as np

from taem_jax.errors import UserError

FORMAT_ZIP = "zip"
FORMAT_LEGACY = "legacy"
FORMAT_TORCHSCRIPT = "torchscript"

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch's legacy typed-storage class names -> numpy dtype of one element ('bfloat16' is
# widened to float32 on read because numpy has no bfloat16).
_STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "UntypedStorage": "u1",
}


class _Refused(Exception):
  """Raised inside the unpickler when the pickle names a global that is not allowed."""


def _itemsize(dtype: str) -> int:
  return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


class _StorageType:
  """Stand-in for `torch.FloatStorage` & co.: only carries the element dtype."""

  def __init__(self, name: str):
    self.name = name
    self.dtype = _STORAGE_DTYPES[name]

  def __call__(self, *args, **kwargs):
    raise _Refused(f"torch.{self.name} called directly")


class _Storage:
  """A storage named by a persistent id; `offset`/`numel` select a view of the root storage."""

  def __init__(self, key: str, dtype: str, numel: int, offset: int = 0):
    self.key, self.dtype, self.numel, self.offset = key, dtype, numel, offset


class LazyTensor:
  """A tensor whose data is read from the file on `.numpy()`.

  Attributes: `shape`, `stride` (in elements), `offset` (elements into the storage), `dtype`
  (numpy dtype string, 'bfloat16' for bf16).
  """

  def __init__(self, reader: "TorchFile", storage: _Storage, offset: int, shape, stride):
    self._reader = reader
    self.storage = storage
    self.offset = int(offset)
    self.shape = tuple(int(s) for s in shape)
    self.stride = tuple(int(s) for s in stride)
    self.dtype = storage.dtype
    if len(self.shape) != len(self.stride) or min(self.shape + (0,)) < 0:
      raise ValueError(f"bad tensor geometry size={self.shape} stride={self.stride}")

  @property
  def ndim(self) -> int:
    return len(self.shape)

  def __repr__(self):
    return f"LazyTensor(shape={self.shape}, dtype={self.dtype})"

  def numpy(self) -> np.ndarray:
    """A fresh C-contiguous native-endian array (bf16 widened to float32)."""
    return self._reader._materialize(self)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
  """Handles `torch._utils._rebuild_tensor` and `_rebuild_tensor_v2` (extra args ignored)."""
  if not isinstance(storage, _Storage):
    raise _Refused("a tensor rebuild without a storage")
  return _CURRENT_READER[-1]._new_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
  return data


def _identity_first(value, *unused):
  return value


def _torch_device(*args):
  return ":".join(str(a) for a in args)


def _ordered_dict(*args):
  return collections.OrderedDict(*args)


# (module, name) -> callable that the pickle may use. Everything here is inert.
_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch", "device"): _torch_device,
    ("torch", "Size"): tuple,
    # TorchScript wraps typed containers in these; they return their first argument.
    ("torch.jit._pickle", "restore_type_tag"): _identity_first,
    ("torch.jit._pickle", "build_intlist"): _identity_first,
    ("torch.jit._pickle", "build_doublelist"): _identity_first,
    ("torch.jit._pickle", "build_boollist"): _identity_first,
    ("torch.jit._pickle", "build_tensorlist"): _identity_first,
}

# Stack of readers being unpickled (rebuild functions are module-level so they can be
# handed to pickle; they find their reader here).
_CURRENT_READER: list["TorchFile"] = []


class ScriptObject:
  """An inert stand-in for a pickled TorchScript object (`__torch__.<module>.<Class>`).

  `torch_type` is the qualified class name; `attrs` the pickled attribute dict (or whatever
  state the object pickled).
  """

  torch_type = "?"

  def __init__(self, *unused):
    self.attrs = {}

  def __setstate__(self, state):
    self.attrs = state

  def __repr__(self):
    return f"ScriptObject({self.torch_type})"


_SCRIPT_CLASSES: dict[str, type] = {}


def _script_class(qualname: str) -> type:
  if qualname not in _SCRIPT_CLASSES:
    _SCRIPT_CLASSES[qualname] = type("ScriptObject", (ScriptObject,), {"torch_type": qualname})
  return _SCRIPT_CLASSES[qualname]


class _RestrictedUnpickler(pickle.Unpickler):
  """An unpickler that resolves only the globals in `_ALLOWED`, storage types and, when
  `allow_script` is set, TorchScript class names (as inert ScriptObjects)."""

  def __init__(self, f, persistent_load: Callable | None, allow_script: bool = False):
    super().__init__(f, encoding="utf-8")
    self._persistent = persistent_load
    self._allow_script = allow_script

  def find_class(self, module, name):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(name)
    if (self._allow_script and module.startswith("__torch__.")
        and not module.startswith("__torch__.torch.classes")):
      return _script_class(f"{module}.{name}")
    raise _Refused(f"{module}.{name}")

  def persistent_load(self, pid):
    if self._persistent is None:
      raise pickle.UnpicklingError("unexpected persistent id")
    return self._persistent(pid)


def _parse_storage_pid(pid) -> tuple[str, str, int, Any]:
  """Checks a ('storage', type, key, location, numel[, view]) id; returns its parts."""
  if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
          and isinstance(pid[1], _StorageType) and isinstance(pid[4], int) and pid[4] >= 0):
    raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
  view = pid[5] if len(pid) == 6 else None
  return str(pid[2]), pid[1].dtype, pid[4], view


class TorchFile:
  """An opened torch file. Use as a context manager (it keeps the file open for lazy reads).

  Attributes:
    path: the file path.
    format: 'zip', 'legacy' or 'torchscript'.
    obj: the unpickled top-level object (dicts/lists/numbers; tensors as LazyTensor;
      TorchScript modules as ScriptObject).
  """

  def __init__(self, path: str):
    self.path = os.fspath(path)
    self.format = ""
    self.obj = None
    self._file = None
    self._zip = None
    self._prefix = ""
    self._big_endian = False
    self._legacy_index: dict[str, tuple[int, int]] = {}
    self._legacy_dtypes: dict[str, str] = {}
    self._open()

  # ---- opening -------------------------------------------------------------------------

  def _fail(self, why: str) -> UserError:
    return UserError(f"cannot read {self.path}: {why}")

  def _open(self):
    if not os.path.isfile(self.path):
      raise UserError(f"checkpoint file not found: {self.path}")
    self._file = open(self.path, "rb")
    head = self._file.read(512)
    self._file.seek(0)
    try:
      if head[:4] == b"PK\x03\x04":
        self._open_zip()
      elif head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        self._open_legacy()
      elif len(head) > 262 and head[257:262] == b"ustar":
        raise self._fail("this is the tar-based torch format of torch < 0.4, which is not "
                         "supported; load and re-save it with a newer torch")
      else:
        raise self._fail("not a PyTorch checkpoint (no zip or pickle header)")
    except _Refused as e:
      self.close()
      raise UserError(f"refusing to load {self.path}: the pickle references {e} "
                      "(only tensor data is allowed; the file may be malicious)") from None
    except UserError:
      self.close()
      raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, KeyError,
            TypeError, AttributeError, IndexError, struct.error, UnicodeDecodeError,
            OverflowError, MemoryError) as e:
      self.close()
      raise self._fail(f"truncated or not a PyTorch checkpoint ({type(e).__name__}: "
                       f"{str(e)[:120]})") from None

  def _unpickle(self, data_or_file, persistent_load, allow_script=False):
    f = io.BytesIO(data_or_file) if isinstance(data_or_file, bytes) else data_or_file
    _CURRENT_READER.append(self)
    try:
      return _RestrictedUnpickler(f, persistent_load, allow_script).load()
    finally:
      _CURRENT_READER.pop()

  def _open_zip(self):
    try:
      self._zip = zipfile.ZipFile(self._file)
    except zipfile.BadZipFile:
      raise self._fail("truncated or corrupt zip archive") from None
    names = self._zip.namelist()
    pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if not pkls:
      if any(n.endswith("model.json") for n in names):
        raise self._fail("old TorchScript format (model.json, torch < 1.4) is not "
                         "supported; load and re-save it with a newer torch")
      raise self._fail("a zip archive but not a PyTorch checkpoint (no <name>/data.pkl)")
    self._prefix = pkls[0][: -len("data.pkl")]
    scripted = any(n.startswith(self._prefix + "code/") for n in names) or (
        self._prefix + "constants.pkl" in names)
    self.format = FORMAT_TORCHSCRIPT if scripted else FORMAT_ZIP
    byteorder = self._prefix + "byteorder"
    if byteorder in names:
      self._big_endian = self._zip.read(byteorder).strip() == b"big"

    def persistent_load(pid):
      key, dtype, numel, _ = _parse_storage_pid(pid)
      return _Storage(key, dtype, numel)

    self.obj = self._unpickle(self._zip.read(pkls[0]), persistent_load, allow_script=scripted)

  def _open_legacy(self):
    f = self._file
    magic = self._unpickle(f, None)
    if magic != _LEGACY_MAGIC:
      raise self._fail("a pickle file but not a PyTorch checkpoint (wrong magic number)")
    protocol = self._unpickle(f, None)
    if protocol != _LEGACY_PROTOCOL:
      raise self._fail(f"unsupported legacy torch protocol version {protocol!r}")
    sys_info = self._unpickle(f, None)
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
      self._big_endian = True
    self.format = FORMAT_LEGACY
    roots: dict[str, _Storage] = {}

    def persistent_load(pid):
      key, dtype, numel, view = _parse_storage_pid(pid)
      if key in self._legacy_dtypes and self._legacy_dtypes[key] != dtype:
        raise pickle.UnpicklingError(f"storage {key} used with two dtypes")
      self._legacy_dtypes[key] = dtype
      root = roots.setdefault(key, _Storage(key, dtype, numel))
      if view is None:
        return root
      _, view_offset, view_numel = view
      return _Storage(key, dtype, int(view_numel), int(view_offset))

    self.obj = self._unpickle(f, persistent_load)
    keys = self._unpickle(f, None)
    if not isinstance(keys, list):
      raise self._fail("legacy checkpoint without a storage key list")
    size = os.fstat(f.fileno()).st_size
    for key in keys:
      key = str(key)
      header = f.read(8)
      if len(header) != 8:
        raise self._fail("truncated file (storage data missing)")
      (numel,) = struct.unpack("<q", header)
      dtype = self._legacy_dtypes.get(key)
      if dtype is None or numel < 0:
        raise self._fail(f"storage {key} has no known dtype or a bad size")
      nbytes = numel * _itemsize(dtype)
      start = f.tell()
      if start + nbytes > size:
        raise self._fail("truncated file (storage data cut short)")
      self._legacy_index[key] = (start, numel)
      f.seek(nbytes, io.SEEK_CUR)
    missing = set(self._legacy_dtypes) - set(self._legacy_index)
    if missing:
      raise self._fail(f"storage {sorted(missing)[0]} is referenced but not stored")

  # ---- tensors -------------------------------------------------------------------------

  def _new_tensor(self, storage, offset, size, stride) -> LazyTensor:
    if not isinstance(offset, int):
      raise pickle.UnpicklingError("bad tensor storage offset")
    return LazyTensor(self, storage, offset, size, stride)

  def _storage_bytes(self, storage: _Storage) -> bytes:
    itemsize = _itemsize(storage.dtype)
    if self.format == FORMAT_LEGACY:
      start, numel = self._legacy_index[storage.key]
      if storage.offset + storage.numel > numel:
        raise self._fail(f"storage {storage.key} view out of range")
      self._file.seek(start + storage.offset * itemsize)
      data = self._file.read(storage.numel * itemsize)
    else:
      name = f"{self._prefix}data/{storage.key}"
      try:
        data = self._zip.read(name)
      except KeyError:
        raise self._fail(f"storage {name} missing from the archive") from None
      data = data[storage.offset * itemsize:(storage.offset + storage.numel) * itemsize]
    if len(data) < storage.numel * itemsize:
      raise self._fail(f"storage {storage.key} is truncated")
    return data

  def _materialize(self, t: LazyTensor) -> np.ndarray:
    if self._file is None:
      raise RuntimeError("TorchFile is closed")
    s = t.storage
    if 0 in t.shape:
      return np.zeros(t.shape, np.float32 if s.dtype == "bfloat16" else s.dtype)
    last = t.offset + sum((n - 1) * st for n, st in zip(t.shape, t.stride))
    if t.offset < 0 or min(t.stride + (0,)) < 0 or last >= s.numel:
      raise self._fail(f"tensor of shape {t.shape} reaches past its storage")
    raw = self._storage_bytes(s)
    if s.dtype == "bfloat16":
      bits = np.frombuffer(raw, ">u2" if self._big_endian else "<u2").astype(np.uint32)
      flat = (bits << 16).view(np.float32)
    else:
      dtype = np.dtype(s.dtype)
      if self._big_endian and dtype.itemsize > 1:
        dtype = dtype.newbyteorder(">")
      flat = np.frombuffer(raw, dtype)
    view = np.lib.stride_tricks.as_strided(
        flat[t.offset:], shape=t.shape, strides=[st * flat.itemsize for st in t.stride],
        writeable=False)
    # np.array, not ascontiguousarray: the latter turns 0-d scalars into shape (1,).
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C", copy=True)

  # ---- structure -----------------------------------------------------------------------

  def tensors(self) -> dict[str, LazyTensor]:
    """The model weights as flat `state_dict()`-style names -> LazyTensor.

    Plain mapping: itself. Dict with a `state_dict` (or `model`/`model_state_dict`/`net`)
    mapping: that mapping. TorchScript: every tensor attribute of the module tree, named by
    its attribute path.
    """
    obj = self.obj
    if isinstance(obj, ScriptObject):
      out: dict[str, LazyTensor] = {}
      _walk_script(obj, "", out, set())
      return out
    if isinstance(obj, dict):
      if obj and all(isinstance(v, LazyTensor) for v in obj.values()):
        return dict(obj)
      for name in ("state_dict", "model_state_dict", "model", "net"):
        sd = obj.get(name)
        if isinstance(sd, dict) and sd and all(isinstance(v, LazyTensor) for v in sd.values()):
          return dict(sd)
    raise UserError(
        f"{self.path} holds no model weights: expected a name -> tensor mapping, a dict with "
        f"'state_dict', or a TorchScript module (top-level object is {_describe(obj)})")

  def close(self):
    if self._zip is not None:
      self._zip.close()
      self._zip = None
    if self._file is not None:
      self._file.close()
      self._file = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def _walk_script(obj: ScriptObject, prefix: str, out: dict, seen: set):
  if id(obj) in seen:
    return
  seen.add(id(obj))
  attrs = obj.attrs if isinstance(obj.attrs, dict) else {}
  for name, value in attrs.items():
    if isinstance(value, LazyTensor):
      out[prefix + str(name)] = value
    elif isinstance(value, ScriptObject):
      _walk_script(value, f"{prefix}{name}.", out, seen)


def _describe(obj) -> str:
  if isinstance(obj, dict):
    keys = ", ".join(repr(k) for k in list(obj)[:5])
    return f"a dict with keys {keys}{', ...' if len(obj) > 5 else ''}"
  return type(obj).__name__


def open_torch_file(path) -> TorchFile:
  """Opens a torch.save / torch.jit.save file without torch. Raises UserError if unreadable."""
  return TorchFile(path)


def load_state_dict(path) -> tuple[dict[str, np.ndarray], TorchFile]:
  """Reads the model weights of a checkpoint as numpy arrays.

  Returns (name -> array, the closed TorchFile whose `.format` and `.obj` describe the file;
  `.obj` keeps non-tensor entries such as `global_step`).
  """
  with open_torch_file(path) as tf:
    arrays = {k: v.numpy() for k, v in tf.tensors().items()}
  return arrays, tf
