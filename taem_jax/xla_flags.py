"""XLA:CPU flags the project sets for its own command lines, where they measurably help.

`EIGEN_CONVOLUTIONS` sends convolutions and dots to XLA's own (Eigen) kernels instead of
YNNPACK: the Wav2Lip generator runs 1.56x faster at B=16 on the 2-core AVX-512 machines
(`experiments/bench.py`, README "Performance"), with outputs within 1e-4 of the default
(`tests/test_bench.py::test_eigen_xla_flags_keep_generator_numbers`). The flag only concerns
the CPU backend; on a GPU it changes nothing.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

EIGEN_CONVOLUTIONS = ("--xla_cpu_experimental_ynn_fusion_type="
                      "-individual_dot,-individual_convolution")
OPT_OUT = "TAEM_XLA_DEFAULTS"  # set to 0 to keep XLA's own defaults


def prefer_eigen_convolutions(env: MutableMapping[str, str] = os.environ) -> bool:
  """Adds `EIGEN_CONVOLUTIONS` to XLA_FLAGS unless the user chose otherwise.

  Call before JAX creates its CPU backend (the flags are read once, then). Leaves XLA_FLAGS
  alone when it already sets the YNN fusion type or when TAEM_XLA_DEFAULTS=0.

  Returns: whether the flag was added.
  """
  flags = env.get("XLA_FLAGS", "")
  if env.get(OPT_OUT, "1") == "0" or "xla_cpu_experimental_ynn_fusion_type" in flags:
    return False
  env["XLA_FLAGS"] = f"{flags} {EIGEN_CONVOLUTIONS}".strip()
  return True
