"""Wav2Lip's lip-sync expert (SyncNet_color), trained in JAX; the generator's sync loss needs it.

    .venv/bin/python experiments/train.py --dataset=sample --manual_dir=data/sample_corpus \
        --config=experiments/configs/wav2lip_expert.py:tiny --workdir=runs/expert_tiny \
        --export=runs/expert_tiny/export

Variants (`--config=...wav2lip_expert.py:<variant>`):
  (none) LRS2 at the official scale: width 1.0 (16.4 M params), 64 pairs per step, Adam 1e-4;
         pass --manual_dir=<LRS2 folder>. The official expert needs a few hundred thousand steps
         to reach an eval loss of ~0.25 (its README); estimated cost on one recent GPU: ~0.1 s
         per step at batch 64 (the expert is ~1/3 of a generator step), i.e. ~1 day for 500k
         steps; decoding 64 clips per step needs --config.data.worker_count >= 4.
  :grid  the same on GRID (--manual_dir=<GRID folder>).
  :sample the generated corpus at width 0.25 (experiments/make_sample_corpus.py).
  :tiny  the generated corpus at width 1/8 (260 k params), 16 clips x 2 windows = 32 pairs per
         step, lr 1e-3, negatives >= 3 frames off, 600 steps. Cost here (2-core CPU shared with
         other jobs): ~0.85 s per step, ~10 min in all. Measured on a 4-speaker x 12-utterance
         corpus (36 train / 12 held-out clips, 96 held-out pairs): validation sync_loss 0.71
         (step 0) -> 0.47 (200) -> 0.44 (400) -> 0.50 (600); accuracy 0.51 -> 0.77 / 0.78 /
         0.73; off-sync accuracy 0.73 at 400 and 600 (chance: sync_loss 0.69, accuracy 0.5).
  :v2    the demo retrain (`experiments/demo.py --train --preset v2`): :tiny on the
         16-identity corpus (3 identities held out) with `data.augment` (each training pair
         mirrored at random and recoloured: per-channel gain e^+-0.3, brightness +-0.1), 3000
         steps, ~20 min here. Why: the first v2 expert (800 steps, no jitter) reached 0.85
         training accuracy but 0.66 on unseen faces (validation sync loss 0.82, worse than
         chance), and on held-out windows it scored the truth as badly in sync (sync loss 1.13)
         as a generator's blurred, tinted output scored well (0.29), so the generator's sync
         loss rewarded the blur. With the jitter (2026-12-03, 3000 steps; held-out accuracy
         0.67-0.73 at steps 2400-3000, noisy over 320 pairs) the ranking is right: on the same
         held-out windows (expert in eval mode) truth 0.81, the truth's motion at 0.7 x
         amplitude 1.17, at 0.4 x 6.4, the truth blurred (Gaussian sigma 2) 9.7, the old
         generator's output 6.6, the reference frame copied 12.6, off-sync truth 22.
  :synthetic in-memory synthetic clips (tests): width 1/16, 40 steps.

Everything else is `taem_jax.train.config_defaults.wav2lip_config`; here only what differs.
"""
from taem_jax.train import config_defaults


def get_config(arg=None):
  # v2 is :tiny with more steps (and, for the generator, the GAN): the same corpus kind.
  c = config_defaults.wav2lip_config("expert", "tiny" if arg == "v2" else arg)
  c.data.batch_size = 64  # official expert batch: 64 pairs (here 64 clips x 1 window)
  c.train.num_steps = 500_000  # official training runs until eval loss ~0.25 (README)
  c.train.checkpoint_every = 10_000  # official: 10,000
  c.train.eval_every = 10_000  # official: 10,000
  if arg == "grid":
    pass
  elif arg == "sample":
    c.model.width = 0.25
    c.data.batch_size = 16
    c.data.windows_per_clip = 4
    c.train.num_steps = 20_000
    c.train.checkpoint_every = 1000
    c.train.eval_every = 1000
    c.train.eval_batches = 20
  elif arg in ("tiny", "v2"):
    c.model.width = 0.125  # 1/8 of every layer's channels (official: 1.0)
    c.data.batch_size = 16  # clips per step
    c.data.windows_per_clip = 2  # 32 pairs per step
    c.data.eval_windows_per_clip = 8  # a steadier validation estimate from few held-out clips
    c.data.buckets = ((80, 48), (128, 72))  # sample-corpus clips are ~2-3 s
    c.sampling.min_offset = 3  # choice: clearer negatives on a tiny corpus
    c.optim.learning_rate = 1e-3
    c.train.num_steps = 600
    c.train.log_every = 25
    c.train.checkpoint_every = 200
    c.train.eval_every = 200
    c.train.eval_batches = 8
    if arg == "v2":  # the demo retrain: 13 trained identities x 24 utterances
      c.data.augment = True  # (choice) against learning the faces instead of the sync
      c.train.num_steps = 3000
      c.train.checkpoint_every = 200
      c.train.eval_every = 200
  elif arg == "synthetic":
    c.model.width = 1 / 16
    c.data.batch_size = 8
    c.data.windows_per_clip = 2
    c.sampling.min_offset = 3
    c.optim.learning_rate = 2e-3
    c.train.num_steps = 40
    c.train.log_every = 5
    c.train.checkpoint_every = 20
    c.train.eval_every = 40
    c.train.eval_batches = 2
  return c
