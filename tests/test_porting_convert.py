"""Converter: key mapping, layout transforms, file forms, sidecar, refusals and the CLI.

Torch-free: checkpoints are written with `porting.torchwrite` from the seeded official-named
weights of `porting.families`. Numerical parity with PyTorch is in test_porting_golden.py and
test_porting_parity.py.
"""
import hashlib
import importlib
import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

import porting
from porting import converter, families, torchwrite
from taem_jax.errors import UserError
from taem_jax.models import load_pretrained

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = "disc_qual"  # the quickest family to build; used where the family does not matter


@pytest.fixture(scope="module")
def state_dicts():
  return {f: families.random_state_dict(f, seed=i) for i, f in enumerate(families.FAMILY_NAMES)}


def _pure_flat(model):
  pure = nnx.to_pure_dict(nnx.state(model))
  return {tuple(getattr(k, "key", getattr(k, "idx", None)) for k in path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(pure)[0]}


def test_official_tables_match_spec_counts():
  # Parameter counts of the official checkpoints.
  want = {"wav2lip": (352, 36_298_035), "syncnet_color": (217, 16_435_072),
          "disc_qual": (28, 14_113_793), "syncnet_v2": (102, 13_631_616),
          "pcavs_G": (117, 89_570_205), "pcavs_A_sync": (294, 10_364_434)}
  for fam, (keys, params) in want.items():
    assert len(families.official_entries(fam)) == keys, fam
    assert families.num_params(fam) == params, fam


@pytest.mark.parametrize("family", families.FAMILY_NAMES)
def test_every_model_variable_is_mapped_with_the_documented_layout(family, state_dicts):
  sd = state_dicts[family]
  fam, params = converter.convert_state_dict(sd, family)
  model = converter.build_model(fam, params)
  flat = _pure_flat(model)
  assert set(flat) == {path for _, _, path, _ in converter.mapping_table(family)}
  n_params = sum(np.size(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert n_params == families.num_params(family)
  # Check each transform kind on one element by index arithmetic (independent of transpose).
  seen = set()
  for key, shape, path, kind in converter.mapping_table(family):
    if kind in seen:
      continue
    seen.add(kind)
    w, got = sd[key], flat[path]
    idx = tuple(int(i) for i in np.array(shape) - 1 - np.arange(len(shape)) % 2)
    if kind == "conv":
      o, i, h, x = idx
      assert got[h, x, i, o] == w[o, i, h, x]
    elif kind == "convT":
      i, o, h, x = idx
      assert got[h, x, i, o] == w[i, o, h, x]
    elif kind == "conv3d":
      o, i, t, h, x = idx
      assert got[t, h, x, i, o] == w[o, i, t, h, x]
    elif kind in ("linear", "eqlinear"):
      o, i = idx
      assert got[i, o] == w[o, i]
    elif kind == "modconv":
      _, o, i, h, x = idx
      assert got[h, x, i, o] == w[0, o, i, h, x]
    elif kind in ("const", "noise_buf"):
      _, c, h, x = idx
      assert got[0, h, x, c] == w[0, c, h, x]
    elif kind == "act_bias":
      np.testing.assert_array_equal(got, w.reshape(-1))
    elif kind == "conv1d":
      o, i, k = idx
      assert got[k, i, o] == w[o, i, k]
    else:
      np.testing.assert_array_equal(got, w)


def test_nnx_paths():
  assert converter.nnx_path("face_encoder_blocks.1.2.conv_block.0.weight", "conv") == (
      "face_encoder_blocks", 1, 2, "conv", "kernel")
  assert converter.nnx_path("audio_encoder.3.conv_block.1.running_var", "bn_var") == (
      "audio_encoder", 3, "bn", "var")
  assert converter.nnx_path("output_block.1.weight", "conv") == ("output_block", 1, "kernel")
  assert converter.nnx_path("netfclip.3.weight", "linear") == ("netfclip", 3, "kernel")


@pytest.mark.parametrize("family", families.FAMILY_NAMES)
def test_family_detection(family, state_dicts):
  assert converter.detect_family(state_dicts[family])[0] == family


FORMS = {
    # name: (family, fmt, builder(sd) -> object to save)
    "legacy_training_dict": (SMALL, "legacy", lambda sd: {
        "state_dict": sd,
        "optimizer": {"state": {0: {"step": 5, "exp_avg": np.ones(3, np.float32)}},
                      "param_groups": [{"lr": 1e-4}]},
        "global_step": 3000, "global_epoch": 2}),
    "zip_module_prefix": (SMALL, "zip", lambda sd: {
        "state_dict": {"module." + k: v for k, v in sd.items()}, "global_step": 1}),
    "plain_no_batches_tracked": ("syncnet_v2", "legacy", lambda sd: {
        k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}),
    "torchscript_tree": (SMALL, "zip", lambda sd: _script_tree(sd)),
}


def _script_tree(sd):
  """Nests a flat state dict into TorchScript-style module objects."""
  root: dict = {}
  for key, value in sd.items():
    node = root
    *mods, leaf = key.split(".")
    for m in mods:
      node = node.setdefault(m, {})
    node[leaf] = value

  def to_node(d, name):
    return torchwrite.ScriptNode(f"__torch__.m.{name}", {
        "training": False, **{k: to_node(v, k) if isinstance(v, dict) else v
                              for k, v in d.items()}})
  return to_node(root, "Wav2Lip_disc_qual")


@pytest.mark.parametrize("form", list(FORMS))
def test_convert_file_forms(tmp_path, state_dicts, form):
  family, fmt, build = FORMS[form]
  sd = state_dicts[family]
  src = tmp_path / f"{form}.pth"
  torchwrite.save(build(sd), src, fmt)
  dst = tmp_path / "out"
  stats = {}
  out = porting.convert(src, dst, stats=stats)
  assert out == str(dst.absolute())
  assert stats["family"] == family and stats["num_params"] == families.num_params(family)
  model = load_pretrained(dst, family=family)
  _, want = converter.convert_state_dict(sd, family)
  got = _pure_flat(model)
  assert set(got) == set(want)
  for path, arr in want.items():
    np.testing.assert_array_equal(got[path], arr, err_msg=str(path))
  meta = json.loads((dst / "taem_jax.json").read_text())
  assert meta["family"] == family
  assert meta["source_file"] == src.name
  assert meta["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
  assert meta["source_format"] == ("torchscript" if form == "torchscript_tree" else fmt)
  n_keys = len(sd) - (14 if form == "plain_no_batches_tracked" else 0)  # 14 BN counters
  assert meta["source_keys"] == n_keys
  assert meta["converter_version"] == converter.CONVERTER_VERSION
  assert meta["source_prefix_stripped"] == ("module." if form == "zip_module_prefix" else "")


def _corrupt(kind, sd_all, tmp_path):
  """(path to a bad checkpoint, family flag, expected message regex)."""
  sd = dict(sd_all[SMALL])
  path = tmp_path / "bad.pth"
  family = "auto"
  if kind == "wrong_family":
    torchwrite.save({"state_dict": sd}, path, "zip")
    family, msg = "wav2lip", r"bad\.pth is a disc_qual checkpoint .*not wav2lip"
  elif kind == "missing_key":
    del sd["face_encoder_blocks.3.1.conv_block.0.bias"]
    torchwrite.save({"state_dict": sd}, path, "zip")
    msg = r"missing key 'face_encoder_blocks\.3\.1\.conv_block\.0\.bias'"
  elif kind == "extra_key":
    sd["face_encoder_blocks.7.0.conv_block.0.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    torchwrite.save({"state_dict": sd}, path, "legacy")
    msg = r"unexpected key 'face_encoder_blocks\.7\.0\.conv_block\.0\.weight'"
  elif kind == "wrong_shape":
    sd["binary_pred.0.weight"] = np.zeros((1, 512, 3, 3), np.float32)
    torchwrite.save({"state_dict": sd}, path, "zip")
    msg = r"key 'binary_pred\.0\.weight' has shape \(1, 512, 3, 3\), expected \(1, 512, 1, 1\)"
  elif kind == "nan":
    sd["binary_pred.0.bias"] = np.array([np.nan], np.float32)
    torchwrite.save({"state_dict": sd}, path, "zip")
    msg = r"'binary_pred\.0\.bias' contains NaN"
  elif kind == "unknown_model":
    torchwrite.save({"state_dict": {"fc.weight": np.zeros((2, 2), np.float32)}}, path, "zip")
    msg = r"cannot tell which model"
  elif kind == "truncated":
    torchwrite.save({"state_dict": sd}, path, "legacy")
    path.write_bytes(path.read_bytes()[:-1000])
    msg = r"truncated"
  elif kind == "not_checkpoint":
    path.write_text("definitely not a checkpoint\n")
    msg = r"not a PyTorch checkpoint"
  elif kind == "malicious":
    path.write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueX\x00\x00\x00\x00\x86R.")
    msg = r"refusing to load .*os\.system"
  else:
    raise AssertionError(kind)
  return path, family, msg


BAD = ["wrong_family", "missing_key", "extra_key", "wrong_shape", "nan", "unknown_model",
       "truncated", "not_checkpoint", "malicious"]


@pytest.mark.parametrize("kind", BAD)
def test_refusals_leave_no_output(tmp_path, state_dicts, kind):
  path, family, msg = _corrupt(kind, state_dicts, tmp_path)
  dst = tmp_path / "out" / "ckpt"
  with pytest.raises(UserError, match=msg) as info:
    porting.convert(path, dst, family=family)
  assert "\n" not in str(info.value)
  assert not dst.exists()
  assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


PCAVS_BAD = {
    "wrong_family": ("wav2lip", r"is a pcavs_A_sync checkpoint \(PC-AVS latest_net_A_sync"),
    "truncated": ("pcavs_A_sync", r"truncated"),
    "text_file": ("pcavs_A_sync", r"not a PyTorch checkpoint"),
    "missing_fc": ("pcavs_A_sync", r"missing key 'fc\.weight' for pcavs_A_sync"),
}


@pytest.mark.parametrize("kind", list(PCAVS_BAD))
def test_pcavs_a_sync_refusals(tmp_path, state_dicts, kind):
  family, msg = PCAVS_BAD[kind]
  sd = dict(state_dicts["pcavs_A_sync"])
  path = tmp_path / "latest_net_A_sync.pth"
  if kind == "missing_fc":
    del sd["fc.weight"]
  if kind == "text_file":
    path.write_text("model.conv1.weight 0.1 0.2\n")
  else:
    torchwrite.save(sd, path, "zip")  # PC-AVS saves bare state dicts
  if kind == "truncated":
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
  dst = tmp_path / "ckpt"
  with pytest.raises(UserError, match=msg) as info:
    porting.convert(path, dst, family=family)
  assert "\n" not in str(info.value)
  assert not dst.exists()


def test_existing_destination_is_refused(tmp_path, state_dicts):
  src = tmp_path / "d.pth"
  torchwrite.save({"state_dict": state_dicts[SMALL]}, src, "zip")
  dst = tmp_path / "exists"
  dst.mkdir()
  with pytest.raises(UserError, match="already exists"):
    porting.convert(src, dst)
  porting.convert(src, dst, overwrite=True)
  assert load_pretrained(dst).family == SMALL


def test_submodule_import_keeps_convert_callable():
  mod = importlib.import_module("porting.convert")
  assert callable(mod) and callable(porting.convert)


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "porting.convert", *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})


def test_cli_summary_and_bad_file_exit_code(tmp_path, state_dicts):
  src = tmp_path / "visual_quality_disc.pth"
  torchwrite.save({"state_dict": state_dicts[SMALL], "global_step": 1}, src, "legacy")
  r = _cli("--src", str(src), "--dst", str(tmp_path / "ok"))
  assert r.returncode == 0, r.stderr
  lines = r.stdout.strip().splitlines()
  assert len(lines) == 1
  assert lines[0].startswith("converted disc_qual: 14,113,793 params from 28 legacy keys in ")
  assert lines[0].endswith(f"-> {tmp_path / 'ok'}")

  bad = tmp_path / "bad.pth"
  bad.write_text("hello")
  r = _cli("--src", str(bad), "--dst", str(tmp_path / "nope"))
  assert r.returncode == 2
  assert r.stderr.strip().startswith("error: cannot read") and "Traceback" not in r.stderr
  assert not (tmp_path / "nope").exists()

  r = _cli("--help")
  assert r.returncode == 0 and "TorchScript" in r.stdout and "--family" in r.stdout
