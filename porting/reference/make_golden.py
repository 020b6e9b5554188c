"""Writes the committed torch-free goldens `tests/golden/<family>.npz`.

  .venv-torch/bin/python -m porting.reference.make_golden [--out tests/golden]

For each family: weights = `porting.families.random_state_dict(family, GOLDEN_SEEDS[family])`
(numpy only, so the test regenerates them without torch), inputs = `make_inputs(family,
GOLDEN_BATCH[family], seed)`, outputs = the PyTorch reference model in eval mode. Each file
holds the seeds, the inputs (images stored as uint8 pixel values, exactly what make_inputs
scaled; s3fd's mean-subtracted image as integer-valued float32; PC-AVS images as the uint8
pixels before `families.pcavs_pixels`) and the outputs, and stays well
below 1 MB.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from porting import families
from porting.reference.make_fixtures import build_model, run_model

GOLDEN_SEEDS = {"wav2lip": 11, "syncnet_color": 12, "disc_qual": 13, "syncnet_v2": 14, "s3fd": 15,
                "pcavs_G": 16, "pcavs_V": 16, "pcavs_E": 17, "pcavs_A_sync": 16}
GOLDEN_BATCH = {"wav2lip": 1, "syncnet_color": 2, "disc_qual": 2, "syncnet_v2": 1, "s3fd": 1,
                "pcavs_G": 1, "pcavs_V": 1, "pcavs_E": 1, "pcavs_A_sync": 2}
# Inputs that are pixel values / 255 in make_inputs (stored as uint8 to stay small).
PIXEL_INPUTS = {("wav2lip", "face"), ("syncnet_color", "face"), ("disc_qual", "face")}


def encode_inputs(family: str, inputs: dict) -> dict:
  out = {}
  for k, v in inputs.items():
    if (family, k) in PIXEL_INPUTS:
      out[f"in_{k}_u8"] = np.round(v * 255.0).astype(np.uint8)
    elif family == "syncnet_v2" and k == "lips":
      out[f"in_{k}_u8"] = v.astype(np.uint8)
    elif family in ("pcavs_V", "pcavs_E"):  # [-1, 1] values of families.pcavs_pixels
      out[f"in_{k}_u8"] = np.round((v + 1.0) * 127.5).astype(np.uint8)
    else:
      out[f"in_{k}"] = v
  return out


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", default=os.path.join("tests", "golden"))
  parser.add_argument("--families", nargs="+", choices=families.FAMILY_NAMES,
                      default=list(families.FAMILY_NAMES))
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  torch.set_num_threads(2)
  for family in args.families:
    seed = GOLDEN_SEEDS[family]
    model = build_model(family, seed)
    inputs = families.make_inputs(family, GOLDEN_BATCH[family], seed=seed)
    outputs = run_model(family, model, inputs)
    path = os.path.join(args.out, f"{family}.npz")
    np.savez_compressed(path, seed=np.int64(seed), batch=np.int64(GOLDEN_BATCH[family]),
                        torch_version=np.str_(torch.__version__),
                        **encode_inputs(family, inputs),
                        **{f"out_{k}": v for k, v in outputs.items()})
    print(f"{path}: {os.path.getsize(path) / 1e3:.0f} kB")


if __name__ == "__main__":
  main()
