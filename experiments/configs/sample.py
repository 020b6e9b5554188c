"""TAEM on the generated sample corpus (GRID grammar, espeak-ng voices, animated photos).

    .venv/bin/python experiments/make_sample_corpus.py --out data/sample_corpus
    .venv/bin/python experiments/train.py --dataset=sample --manual_dir=data/sample_corpus \
        --workdir=runs/sample

The sample corpus is in GRID's layout and is built with the GRID builder into
<manual_dir>/_tfds. It is not GRID: numbers on it say nothing about the paper's results.
Cost here: as grid.py, ~30 s per step at batch 64 (same clip lengths). What it should
reach: train/mse and train/duration fall steadily; eval/mse_predicted_durations approaches
eval/mse.
`:tiny` is the smoke-test size. `:demo` is the demo's TAEM (experiments/demo.py): hidden 128,
2 + 2 FFT blocks, against the width-1/8 Wav2Lip of wav2lip_gen.py:tiny (pass its export with
--init_from), batch 16, 600 steps. `:demo_v2` is the same for 700 steps, against
wav2lip_gen.py:v2 (the demo retrain, `experiments/demo.py --train --preset v2`).
Table 2's rows: --config.loss.objective=contrastive | mse+contrastive | mse+task; mse+task
also takes the expert, --config.target.expert_dir=checkpoints/demo/expert (it renders
config.loss.task_windows 5-frame windows per clip through the frozen generator every step).
"""
from taem_jax.train import config_defaults


def get_config(arg=None):
  if arg == "demo_v2":  # against wav2lip_gen.py:v2 (same generator shape as :tiny)
    c = config_defaults.taem_config("sample", "demo")
    c.train.num_steps = 700  # 13 identities x 24 utterances: more clips than :demo's 36
    return c
  c = config_defaults.taem_config("sample", arg)
  c.train.num_steps = 2000 if arg is None else c.train.num_steps  # small corpus: fewer steps
  return c
