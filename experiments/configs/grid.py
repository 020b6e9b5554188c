"""TAEM on GRID (33 speakers x 1000 sentences, 25 fps), seen-speaker split.

    .venv/bin/python experiments/train.py --dataset=grid --manual_dir=/path/to/GRID \
        --init_from=ckpt/wav2lip --workdir=runs/grid

Cost here (2-core CPU, batch 64, bucket 80 frames x 48 phonemes, z_a computed by the frozen
Wav2Lip audio encoder): see the table in experiments/configs/README.md (about 10 s per step,
so the paper's 5k steps are a GPU job; pass --config.data.builder_config=dlib_za to read z_a
from the dataset and skip the encoder). What it should reach: L_dis (train/mse) falls from
~1 to well below 0.1 of its start within the 5k steps and L_dur (train/duration) below 0.1
(log domain), as the paper reports convergence in about 5k steps.
`:tiny` is a seconds-long smoke run on a tiny corpus (tests).
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import taem_common  # noqa: E402  pylint: disable=g-import-not-at-top


def get_config(arg=None):
  return taem_common.get_config("grid", arg)
