"""TAEM on in-memory synthetic batches (z_a a fixed function of the phonemes): no corpus needed.

    .venv/bin/python experiments/train.py --config=experiments/configs/synthetic.py:tiny \
        --workdir=/tmp/taem_synth

Checks that TAEM, its losses and the trainer fit together, and measures step cost. Cost here
(2-core shared CPU): `:tiny` ~10 ms per step (~100 steps/s on 1 device, ~77 on 2 forced
devices) after ~10 s of start-up and compile; the paper-size model at batch 64 and 48 frames
~10 s per step on 1 or 2 devices (80 frames, GRID's length: ~30 s). What it should reach:
with `:tiny` (150 steps), train/mse falls from ~1.2 to ~0.1 (after a ~100-step plateau) and
train/duration from ~3 to ~0.2 (measured). The paper-size run was only timed here, not trained
to convergence.
"""
from taem_jax.train import config_defaults


def get_config(arg=None):
  c = config_defaults.taem_config("synthetic", arg)
  c.target.z_a = "dataset"  # the synthetic batches carry z_a
  c.data.num_train = 256  # synthetic training examples
  c.data.num_eval = 32  # synthetic held-out examples
  c.data.vocab_size = 48  # phoneme ids 1..47 (0 = padding)
  c.data.max_phonemes = 24  # phonemes per example (padded)
  c.data.max_frames = 48  # video frames per example (padded)
  c.model.speaker_dim = 128  # synthetic speaker embedding width (dlib-sized)
  if arg == "tiny":
    c.data.num_train = 64
    c.data.num_eval = 16
    c.data.vocab_size = 12  # few phonemes: each is seen often enough to learn in 150 steps
    c.data.max_phonemes = 12
    c.data.max_frames = 24
    c.data.batch_size = 16  # batch 4 is too noisy to leave the initial plateau quickly
    c.model.speaker_dim = 8
    c.model.dropout = 0.0  # TAEMConfig.dropout: nothing to regularise on clean synthetic data
    c.optim.learning_rate = 3e-3
    c.train.num_steps = 150
    c.train.log_every = 10
    c.train.checkpoint_every = 50
    c.train.eval_every = 150
  return c
