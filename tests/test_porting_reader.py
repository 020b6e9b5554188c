"""Torch-free checkpoint reader: formats, views, dtypes, TorchScript trees and refusals.

Files are produced by `porting.torchwrite` (a torch-free writer whose output torch.load accepts;
that is checked in test_porting_parity.py when .venv-torch exists).
"""
import json
import os
import pickle
import struct
import subprocess
import zipfile

import numpy as np
import pytest

from porting import torchfile, torchwrite
from taem_jax.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PY = os.path.join(REPO, ".venv-torch", "bin", "python")
RNG = np.random.default_rng(0)
WEIGHTS = {
    "conv.weight": RNG.standard_normal((4, 3, 3, 3)).astype(np.float32),
    "conv.bias": RNG.standard_normal(4).astype(np.float32),
    "half": RNG.standard_normal((2, 5)).astype(np.float16),
    "double": RNG.standard_normal(3),
    "bn.num_batches_tracked": np.array(12345, np.int64),
    "empty": np.zeros((0, 4), np.float32),
}


def _write(tmp_path, obj, fmt, name="ckpt.pth"):
  path = tmp_path / name
  torchwrite.save(obj, path, fmt)
  return path


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_training_checkpoint_roundtrip(tmp_path, fmt):
  optim = {"state": {0: {"step": 7, "exp_avg": np.ones((4, 3, 3, 3), np.float32)}},
           "param_groups": [{"lr": 1e-4, "betas": (0.5, 0.999), "params": [0, 1]}]}
  path = _write(tmp_path, {"state_dict": WEIGHTS, "optimizer": optim, "global_step": 2**40,
                           "global_epoch": 3}, fmt)
  with torchfile.open_torch_file(path) as tf:
    assert tf.format == fmt
    tensors = tf.tensors()
    assert list(tensors) == list(WEIGHTS)
    for k, want in WEIGHTS.items():
      got = tensors[k].numpy()
      assert got.dtype == want.dtype and got.shape == want.shape, k
      np.testing.assert_array_equal(got, want)
    assert tf.obj["global_step"] == 2**40 and tf.obj["global_epoch"] == 3
    assert tf.obj["optimizer"]["param_groups"][0]["betas"] == (0.5, 0.999)
    # The optimizer moments are readable but stay lazy (never loaded unless asked).
    exp_avg = tf.obj["optimizer"]["state"][0]["exp_avg"]
    assert isinstance(exp_avg, torchfile.LazyTensor) and exp_avg.shape == (4, 3, 3, 3)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_plain_mapping_and_views(tmp_path, fmt):
  storage = np.arange(40, dtype=np.float32)
  obj = {
      "transposed": torchwrite.StridedTensor(storage, 0, (5, 8), (1, 5)),
      "offset_slice": torchwrite.StridedTensor(storage, 7, (2, 3), (10, 2)),
      "scalar": torchwrite.StridedTensor(storage, 39, (), ()),
      "plain": WEIGHTS["conv.weight"],
  }
  arrays, tf = torchfile.load_state_dict(_write(tmp_path, obj, fmt))
  np.testing.assert_array_equal(arrays["transposed"], storage.reshape(8, 5).T)
  np.testing.assert_array_equal(arrays["offset_slice"], [[7, 9, 11], [17, 19, 21]])
  assert arrays["scalar"].shape == () and arrays["scalar"] == 39
  np.testing.assert_array_equal(arrays["plain"], WEIGHTS["conv.weight"])
  assert all(a.flags.c_contiguous for a in arrays.values())
  assert tf.format == fmt


def test_torchscript_module_tree_is_flattened_like_state_dict(tmp_path):
  w = RNG.standard_normal((2, 2)).astype(np.float32)
  leaf = torchwrite.ScriptNode("__torch__.torch.nn.modules.conv.Conv2d",
                               {"training": False, "weight": w, "bias": w[0].copy()})
  bn = torchwrite.ScriptNode("__torch__.torch.nn.modules.batchnorm.BatchNorm2d",
                             {"training": False, "running_var": w[1].copy(),
                              "num_batches_tracked": np.array(3, np.int64)})
  seq = torchwrite.ScriptNode("__torch__.torch.nn.modules.container.Sequential",
                              {"training": False, "0": leaf, "1": bn})
  root = torchwrite.ScriptNode("__torch__.models.Wav2Lip",
                               {"training": False, "_is_full_backward_hook": None,
                                "blocks": torchwrite.ScriptNode(
                                    "__torch__.torch.nn.modules.container.ModuleList",
                                    {"0": torchwrite.ScriptNode(
                                        "__torch__.models.Conv2d", {"conv_block": seq})})})
  with torchfile.open_torch_file(_write(tmp_path, root, "zip", "model.pt")) as tf:
    assert tf.format == "torchscript"
    assert tf.obj.torch_type == "__torch__.models.Wav2Lip"
    tensors = tf.tensors()
    assert list(tensors) == ["blocks.0.conv_block.0.weight", "blocks.0.conv_block.0.bias",
                             "blocks.0.conv_block.1.running_var",
                             "blocks.0.conv_block.1.num_batches_tracked"]
    np.testing.assert_array_equal(tensors["blocks.0.conv_block.0.weight"].numpy(), w)


def _marker_pickle(marker):
  """A protocol-2 pickle that would run `os.system('touch marker')` if trusted."""
  cmd = f"touch {marker}".encode()
  return (b"\x80\x02cos\nsystem\n(X" + struct.pack("<I", len(cmd)) + cmd + b"tR.")


class _Evil:

  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("where", ["bare", "dumps", "legacy_payload", "zip_payload"])
def test_malicious_pickle_is_refused_without_running(tmp_path, where):
  marker = tmp_path / "pwned"
  path = tmp_path / "evil.pth"
  if where == "bare":
    path.write_bytes(_marker_pickle(marker))
  elif where == "dumps":
    path.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
  elif where == "legacy_payload":
    path.write_bytes(pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
                     + pickle.dumps(1001, protocol=2)
                     + pickle.dumps({"little_endian": True}, protocol=2)
                     + _marker_pickle(marker))
  else:
    with zipfile.ZipFile(path, "w") as z:
      z.writestr("archive/data.pkl", _marker_pickle(marker))
      z.writestr("archive/byteorder", "little")
  with pytest.raises(UserError, match=r"refusing to load .*evil\.pth: the pickle references "
                                      r"(os|posix)\.system"):
    torchfile.open_torch_file(path)
  assert not marker.exists()


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("keep", [0.3, 0.97])
def test_truncated_file(tmp_path, fmt, keep):
  path = _write(tmp_path, {"state_dict": WEIGHTS, "global_step": 1}, fmt)
  data = path.read_bytes()
  path.write_bytes(data[: int(len(data) * keep)])
  with pytest.raises(UserError, match="truncated|corrupt"):
    with torchfile.open_torch_file(path) as tf:
      [t.numpy() for t in tf.tensors().values()]


@pytest.mark.parametrize("kind", ["text", "empty", "zip", "pickle", "tar"])
def test_not_a_checkpoint(tmp_path, kind):
  path = tmp_path / "model.pth"
  if kind == "text":
    path.write_text("this is just a text file renamed to .pth\n" * 20)
  elif kind == "empty":
    path.write_bytes(b"")
  elif kind == "zip":
    with zipfile.ZipFile(path, "w") as z:
      z.writestr("readme.txt", "hello")
  elif kind == "pickle":
    path.write_bytes(pickle.dumps({"a": [1, 2, 3]}, protocol=2))
  else:
    path.write_bytes(b"\0" * 257 + b"ustar" + b"\0" * 300)
  with pytest.raises(UserError, match=r"cannot read .*model\.pth"):
    torchfile.open_torch_file(path)


def test_missing_file(tmp_path):
  with pytest.raises(UserError, match="not found"):
    torchfile.open_torch_file(tmp_path / "nope.pth")


def test_no_weights_in_file(tmp_path):
  path = _write(tmp_path, {"global_step": 3, "note": "no tensors here"}, "zip")
  with pytest.raises(UserError, match="holds no model weights"):
    torchfile.load_state_dict(path)


def test_tensor_reaching_past_its_storage(tmp_path):
  storage = np.arange(6, dtype=np.float32)
  path = _write(tmp_path, {"bad": torchwrite.StridedTensor(storage, 2, (3, 3), (3, 1))}, "zip")
  with pytest.raises(UserError, match="reaches past its storage"):
    torchfile.load_state_dict(path)


@pytest.mark.torch
@pytest.mark.skipif(not os.path.exists(TORCH_PY), reason=".venv-torch is missing (run `bash "
                    "setup.sh --test`): cannot check the writer against torch.load")
def test_torchwrite_files_load_in_torch(tmp_path):
  """The torch-free writer used by the porting tests produces files torch itself accepts."""
  storage = np.arange(12, dtype=np.float32)
  obj = {"state_dict": {**WEIGHTS, "view": torchwrite.StridedTensor(storage, 1, (3, 2), (1, 4))},
         "global_step": 7}
  for fmt in ("zip", "legacy"):
    torchwrite.save(obj, tmp_path / f"{fmt}.pth", fmt)
  script = (
      "import json, sys, torch\n"
      "out = {}\n"
      "for fmt in ('zip', 'legacy'):\n"
      "  o = torch.load(f'{sys.argv[1]}/{fmt}.pth', weights_only=True)\n"
      "  out[fmt] = {'step': o['global_step'], 'sd': {k: [str(v.dtype), v.double().tolist()]\n"
      "                                               for k, v in o['state_dict'].items()}}\n"
      "print(json.dumps(out))\n")
  r = subprocess.run([TORCH_PY, "-c", script, str(tmp_path)], capture_output=True, text=True,
                     timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  loaded = json.loads(r.stdout)
  want = {**WEIGHTS, "view": np.array([[1, 5], [2, 6], [3, 7]], np.float32)}  # 1 + i + 4j
  for fmt in ("zip", "legacy"):
    assert loaded[fmt]["step"] == 7
    assert set(loaded[fmt]["sd"]) == set(want)
    for k, v in want.items():
      dtype, values = loaded[fmt]["sd"][k]
      assert dtype == f"torch.{v.dtype.name}", (fmt, k)
      np.testing.assert_array_equal(np.array(values, np.float64).reshape(v.shape),
                                    v.astype(np.float64), err_msg=f"{fmt} {k}")
