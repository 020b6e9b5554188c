"""TAEM on LRS2 (BBC clips, thousands of speakers; Table 2's ablations run here).

    .venv/bin/python experiments/train.py --dataset=lrs2 --manual_dir=/path/to/mvlrs_v1 \
        --init_from=ckpt/wav2lip --workdir=runs/lrs2
    # Table 2 rows: add --config=experiments/configs/lrs2.py --config.loss.objective=contrastive
    # (or mse+contrastive); 'mse+task' also needs the lip-sync expert:
    # --config.loss.objective=mse+task --config.target.expert_dir=ckpt/lipsync_expert

Clips vary in length, so several buckets (one compile each) are used; per-step cost here is
between the GRID and TCD-TIMIT figures. What it should reach: as grid.py.
`:tiny` is the smoke-test size.
"""
from taem_jax.train import config_defaults


def get_config(arg=None):
  c = config_defaults.taem_config("lrs2", arg)
  c.data.eval_split = "val" if arg is None else c.data.eval_split  # LRS2 ships a val split
  return c
