"""A small torch-free writer of `torch.save`-compatible files (zip and legacy formats).

It exists so that tests (and users without torch) can produce real checkpoint files: the
output loads with `torch.load(..., weights_only=True)` and with `porting.torchfile`. It writes
the pickle opcodes by hand, so it needs no fake torch module.

Supported objects: dict (written as a plain dict), list, tuple, str, int, float, bool, None,
numpy arrays (-> tensors, float32/float16/float64/int64/int32/uint8/bool), `StridedTensor`
(a view into a shared storage, to exercise offsets/strides) and `ScriptNode` (an object
pickled as a TorchScript `__torch__.*` module; such files get a `code/` entry so readers see
a TorchScript archive — torch itself cannot load those, they are for reader tests only).
"""
from __future__ import annotations

import dataclasses
import io
import os
import pickle
import struct
import zipfile

import numpy as np

_STORAGE_NAMES = {
    np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
    np.dtype("float16"): "HalfStorage", np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage", np.dtype("int16"): "ShortStorage",
    np.dtype("int8"): "CharStorage", np.dtype("uint8"): "ByteStorage",
    np.dtype("bool"): "BoolStorage",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


@dataclasses.dataclass
class StridedTensor:
  """A tensor viewing `storage` (1-D array) at element `offset` with `shape`/`stride`."""
  storage: np.ndarray
  offset: int
  shape: tuple
  stride: tuple


@dataclasses.dataclass
class ScriptNode:
  """A TorchScript module object `qualname` (e.g. '__torch__.models.Wav2Lip') with attrs."""
  qualname: str
  attrs: dict


class _Writer:
  """Emits protocol-2 pickle opcodes; collects storages keyed by id of their numpy array."""

  def __init__(self, legacy: bool):
    self.out = io.BytesIO()
    self.legacy = legacy
    self.storages: dict[int, tuple[str, np.ndarray]] = {}

  def w(self, b: bytes):
    self.out.write(b)

  def global_(self, module: str, name: str):
    self.w(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

  def str_(self, s: str):
    b = s.encode("utf-8")
    self.w(b"X" + struct.pack("<I", len(b)) + b)

  def int_(self, v: int):
    if 0 <= v < 256:
      self.w(b"K" + bytes([v]))
    elif -2**31 <= v < 2**31:
      self.w(b"J" + struct.pack("<i", v))
    else:
      raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
      self.w(b"\x8a" + bytes([len(raw)]) + raw)

  def tuple_(self, items):
    self.w(b"(")
    for x in items:
      self.obj(x)
    self.w(b"t")

  def storage(self, arr: np.ndarray) -> None:
    arr = arr.reshape(-1)
    key = self.storages.setdefault(id(arr), (str(len(self.storages)), arr))[0]
    name = _STORAGE_NAMES.get(arr.dtype)
    if name is None:
      raise TypeError(f"unsupported dtype {arr.dtype}")
    # persistent id: ('storage', torch.<X>Storage, key, 'cpu', numel[, None for legacy])
    self.w(b"(")
    self.str_("storage")
    self.global_("torch", name)
    self.str_(key)
    self.str_("cpu")
    self.int_(arr.size)
    if self.legacy:
      self.w(b"N")
    self.w(b"tQ")

  def tensor(self, storage: np.ndarray, offset: int, shape, stride):
    self.global_("torch._utils", "_rebuild_tensor_v2")
    self.w(b"(")
    self.storage(storage)
    self.int_(offset)
    self.tuple_(shape)
    self.tuple_(stride)
    self.w(b"\x89")  # requires_grad False
    self.global_("collections", "OrderedDict")
    self.w(b")R")
    self.w(b"tR")

  def obj(self, x):
    if x is None:
      self.w(b"N")
    elif x is True or x is False:
      self.w(b"\x88" if x else b"\x89")
    elif isinstance(x, (int, np.integer)):
      self.int_(int(x))
    elif isinstance(x, float):
      self.w(b"G" + struct.pack(">d", x))
    elif isinstance(x, str):
      self.str_(x)
    elif isinstance(x, np.ndarray):
      arr = x if x.flags.c_contiguous else x.copy(order="C")  # keeps 0-d arrays 0-d
      strides = tuple(s // arr.itemsize for s in arr.strides) if arr.ndim else ()
      flat = arr.reshape(-1)
      self.tensor(flat, 0, arr.shape, strides)
    elif isinstance(x, StridedTensor):
      self.tensor(x.storage, x.offset, x.shape, x.stride)
    elif isinstance(x, ScriptNode):
      module, _, name = x.qualname.rpartition(".")
      self.global_(module, name)
      self.w(b")\x81")  # EMPTY_TUPLE NEWOBJ
      self.obj(dict(x.attrs))
      self.w(b"b")  # BUILD
    elif isinstance(x, dict):
      self.w(b"}")
      if x:
        self.w(b"(")
        for k, v in x.items():
          self.obj(k)
          self.obj(v)
        self.w(b"u")
    elif isinstance(x, list):
      self.w(b"]")
      if x:
        self.w(b"(")
        for v in x:
          self.obj(v)
        self.w(b"e")
    elif isinstance(x, tuple):
      self.tuple_(x)
    else:
      raise TypeError(f"cannot write {type(x).__name__}")

  def dump(self, x) -> bytes:
    self.w(b"\x80\x02")
    self.obj(x)
    self.w(b".")
    return self.out.getvalue()


def save(obj, path, fmt: str = "zip") -> None:
  """Writes `obj` like `torch.save` (fmt 'zip' or 'legacy'); TorchScript if it has ScriptNodes
  at the top (fmt must be 'zip'). Writes to a temporary name and renames at the end."""
  if fmt not in ("zip", "legacy"):
    raise ValueError("fmt must be 'zip' or 'legacy'")
  path = os.fspath(path)
  writer = _Writer(legacy=fmt == "legacy")
  data = writer.dump(obj)
  tmp = path + ".tmp"
  if fmt == "legacy":
    with open(tmp, "wb") as f:
      f.write(pickle.dumps(_LEGACY_MAGIC, protocol=2))
      f.write(pickle.dumps(1001, protocol=2))
      f.write(pickle.dumps({"protocol_version": 1001, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2))
      f.write(data)
      keys = [k for k, _ in writer.storages.values()]
      f.write(pickle.dumps(keys, protocol=2))
      for _, arr in writer.storages.values():
        f.write(struct.pack("<q", arr.size))
        f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
  else:
    name = "archive"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
      z.writestr(f"{name}/data.pkl", data)
      z.writestr(f"{name}/byteorder", "little")
      for key, arr in writer.storages.values():
        z.writestr(f"{name}/data/{key}", arr.astype(arr.dtype.newbyteorder("<")).tobytes())
      if isinstance(obj, ScriptNode):
        z.writestr(f"{name}/code/__torch__/model.py", "# placeholder\n")
        z.writestr(f"{name}/constants.pkl", b"\x80\x02).")
      z.writestr(f"{name}/version", "3\n")
  os.replace(tmp, path)
