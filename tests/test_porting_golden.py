"""Golden parity without torch: committed PyTorch outputs vs the converted Flax models.

`tests/golden/<family>.npz` were written by `porting/reference/make_golden.py` (PyTorch
reference models, weights from `porting.families.random_state_dict(family, seed)`). Here the
same weights are regenerated with numpy, converted through the converter core and run; the
outputs must match to 1e-4. Deliberately mis-mapped kernels must fail that comparison.
"""
import os

import numpy as np
import pytest

from porting import converter, families, parity

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
TOL = 1e-4


def _load_golden(family):
  with np.load(os.path.join(GOLDEN_DIR, f"{family}.npz")) as z:
    data = {k: z[k] for k in z.files}
  inputs = {}
  for k, v in data.items():
    if k.startswith("in_") and k.endswith("_u8"):
      name = k[3:-3]
      # Same arithmetic as families.make_inputs (float32 / 255; syncnet_v2 lips are raw;
      # PC-AVS maps pixels to [-1, 1]).
      if family in ("pcavs_V", "pcavs_E"):
        inputs[name] = families.pcavs_pixels(v)
      else:
        inputs[name] = v.astype(np.float32) if family == "syncnet_v2" else (
            v.astype(np.float32) / 255.0)
    elif k.startswith("in_"):
      inputs[k[3:]] = v
  outputs = {k[4:]: v for k, v in data.items() if k.startswith("out_")}
  return int(data["seed"]), int(data["batch"]), inputs, outputs


_CACHE = {}


def _converted(family):
  """(golden inputs, golden outputs, converted params) for a family, computed once."""
  if family not in _CACHE:
    seed, batch, inputs, outputs = _load_golden(family)
    sd = families.random_state_dict(family, seed)
    fam, params = converter.convert_state_dict(sd, family="auto", source=f"{family} golden")
    assert fam == family
    _CACHE[family] = (seed, batch, inputs, outputs, params)
  return _CACHE[family]


@pytest.mark.parametrize("family", families.FAMILY_NAMES)
def test_golden_inputs_are_reproducible(family):
  seed, batch, inputs, _ = _load_golden(family)
  regen = families.make_inputs(family, batch, seed=seed)
  assert set(regen) == set(inputs)
  for k in regen:
    np.testing.assert_array_equal(regen[k], inputs[k], err_msg=f"{family}.{k}")


@pytest.mark.parametrize("family", families.FAMILY_NAMES)
def test_golden_outputs(family):
  _, _, inputs, outputs, params = _converted(family)
  model = converter.build_model(family, params)
  diffs = parity.max_abs_diffs(parity.run_flax(family, model, inputs), outputs)
  print(f"\n{family} golden max|diff|: " + ", ".join(f"{k}={v:.2e}" for k, v in diffs.items()))
  assert all(v <= TOL for v in diffs.values()), diffs
  # The comparison is meaningful: outputs are not constant or saturated.
  for k, v in outputs.items():
    assert np.std(v) > 1e-3, k


def _swap_hw(k):
  return np.ascontiguousarray(np.swapaxes(k, 0, 1))


def _flip_hw(k):
  return np.ascontiguousarray(k[::-1, ::-1])


MISMAPS = {
    # family, NNX path, wrong transform (what a plausible porting bug would produce)
    "conv_kernel_h_w_swapped": ("disc_qual", ("face_encoder_blocks", 0, 0, "conv", "kernel"),
                                _swap_hw),
    "conv_transpose_kernel_flipped": ("wav2lip", ("face_decoder_blocks", 2, 0, "conv", "kernel"),
                                      _flip_hw),
    "linear_not_transposed": ("syncnet_v2", ("netfcaud", 0, "kernel"),
                              lambda k: np.ascontiguousarray(k.T)),
    "bn_scale_bias_swapped": ("syncnet_color", ("audio_encoder", 5, "bn", "scale"), None),
    # PC-AVS netG: the stride-2 transposed modulated conv read without its spatial flip, and a
    # fixed noise map with H and W swapped.
    "modulated_upconv_kernel_flipped": ("pcavs_G", ("convs", 4, "conv", "kernel"), _flip_hw),
    "noise_map_h_w_swapped": ("pcavs_G", ("noises", "noise_7"), lambda n: np.ascontiguousarray(
        np.swapaxes(n, 1, 2))),
    "grouped_conv_kernel_h_w_swapped": ("pcavs_V", ("model", "layer2", 1, "conv2", "kernel"),
                                        _swap_hw),
    "hourglass_conv_kernel_flipped": ("pcavs_E", ("model", "m0", "b1_2", "conv1", "kernel"),
                                      _flip_hw),
}


@pytest.mark.parametrize("bug", list(MISMAPS))
def test_mismapped_weights_fail_parity(bug):
  family, path, wrong = MISMAPS[bug]
  _, _, inputs, outputs, params = _converted(family)
  bad = dict(params)
  if wrong is None:  # swap scale and bias of one BN layer
    bias_path = path[:-1] + ("bias",)
    bad[path], bad[bias_path] = params[bias_path], params[path]
  else:
    bad[path] = wrong(params[path])
    assert bad[path].shape == params[path].shape  # the bug is invisible to shape checks
  model = converter.build_model(family, bad)
  diffs = parity.max_abs_diffs(parity.run_flax(family, model, inputs), outputs)
  print(f"\n{bug}: max|diff| {diffs}")
  assert max(diffs.values()) > 100 * TOL, diffs


def test_pcavs_a_sync_flattening_order_matters():
  """netA_sync flattens (C, F) channel-major before attention: rows permuted F-major must fail."""
  _, _, inputs, outputs, params = _converted("pcavs_A_sync")
  bad = dict(params)
  path = ("model", "attention", 0, "kernel")  # (1, C*F, 128), official row index c * 10 + f
  k = params[path]
  bad[path] = np.ascontiguousarray(
      k.reshape(1, 256, 10, -1).transpose(0, 2, 1, 3).reshape(k.shape))
  model = converter.build_model("pcavs_A_sync", bad)
  diffs = parity.max_abs_diffs(parity.run_flax("pcavs_A_sync", model, inputs), outputs)
  assert max(diffs.values()) > 100 * TOL, diffs
