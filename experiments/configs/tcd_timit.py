"""TAEM on TCD-TIMIT ('volunteers', straight camera; video resampled to 25 fps when built).

    .venv/bin/python experiments/train.py --dataset=tcd_timit --manual_dir=/path/to/TCD-TIMIT \
        --init_from=ckpt/wav2lip --workdir=runs/tcd_timit

Clips are 2.5-8.1 s (up to 203 frames), so batches fall in the larger buckets and a step costs
2-3x a GRID step here (GRID: ~30 s at 80 frames; attention grows quadratically with clip
length). What it should reach: as grid.py (L_dis falls by >10x within ~5k steps).
`:tiny` is the smoke-test size.
"""
from taem_jax.train import config_defaults


def get_config(arg=None):
  return config_defaults.taem_config("tcd_timit", arg)
