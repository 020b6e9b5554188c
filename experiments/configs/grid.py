"""TAEM on GRID (33 speakers x 1000 sentences, 25 fps), seen-speaker split.

    .venv/bin/python experiments/train.py --dataset=grid --manual_dir=/path/to/GRID \
        --init_from=ckpt/wav2lip --workdir=runs/grid

Cost here (2-core shared CPU, batch 64, GRID's 3 s clips = the 80-frame x 48-phoneme bucket,
measured on synthetic batches of that shape): ~30 s per step, about the same whether z_a is
read from the dataset (--config.data.builder_config=dlib_za) or computed by the frozen Wav2Lip
audio encoder, because TAEM's speech refiner at 320 mel frames dominates; 2 forced devices do
not help on 2 cores. The paper's 5k steps (~40 h here) are a GPU job. What it should reach:
L_dis (train/mse) falls to a small fraction of its start within ~5k steps (the paper reports
convergence in about 5k), L_dur (train/duration, log domain) to ~0.1.
`:tiny` is a seconds-long smoke run on a tiny corpus (tests).
"""
from taem_jax.train import config_defaults


def get_config(arg=None):
  return config_defaults.taem_config("grid", arg)
