"""Toy regression that checks the training machinery (devices, resume, logging) in seconds.

    .venv/bin/python experiments/train.py --config=experiments/configs/toy.py --workdir=/tmp/toy

Cost here (2-core shared CPU): ~1.8 ms per step (~565 steps/s on 1 device, ~400 on 2 forced
devices) after a ~1 s compile; the whole run takes ~7 s including start-up. The held-out MSE
should fall from ~0.6 to below 0.1. `:tiny` (40 steps, a checkpoint every 5 steps, metrics
every step) is what the tests run.
"""
import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.task = "toy"  # which trainer task to build (experiments/train.py TASKS)
  c.seed = 0  # model init, dropout reseeding and data order all derive from it

  c.data = ml_collections.ConfigDict()
  c.data.dataset = "toy"  # in-memory arrays from taem_jax.train.tasks.toy.toy_arrays
  c.data.num_train = 512  # training examples
  c.data.num_eval = 128  # held-out examples (a different random draw)
  c.data.batch_size = 16  # global batch (split over devices and processes)
  c.data.load_delay = 0.0  # seconds of simulated loading per batch (tests kill runs mid-way)

  c.model = ml_collections.ConfigDict()
  c.model.d_hidden = 32  # MLP hidden width
  c.model.dropout = 0.1  # dropout after the hidden layer (exercises per-step RNG)

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 3e-3  # peak AdamW learning rate
  c.optim.b1 = 0.9  # AdamW beta1 (TAEM paper)
  c.optim.b2 = 0.98  # AdamW beta2 (TAEM paper)
  c.optim.eps = 1e-8  # AdamW epsilon (TAEM paper)
  c.optim.weight_decay = 0.01  # decoupled weight decay (PyTorch AdamW default)
  c.optim.warmup_steps = 10  # linear warm-up from 0 to learning_rate
  c.optim.schedule = "constant"  # 'constant' or 'cosine' after warm-up
  c.optim.decay_steps = 0  # cosine: steps from start to the end of the decay (0 = the last step)
  c.optim.final_lr_fraction = 0.0  # cosine: final lr as a fraction of the peak
  c.optim.clip_grad_norm = 1.0  # global-norm gradient clipping (0 disables)

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 200  # total optimisation steps (a resumed run stops at the same total)
  c.train.log_every = 20  # steps between train-metric writes (TensorBoard, metrics.jsonl)
  c.train.checkpoint_every = 50  # steps between checkpoints (plus one at the end / on Ctrl-C)
  c.train.keep_checkpoints = 2  # most recent checkpoints kept on disk
  c.train.async_checkpointing = True  # write checkpoints in a background thread
  c.train.eval_every = 100  # steps between validation passes (0 disables)
  c.train.eval_batches = 4  # held-out batches per validation pass
  c.train.sample_every = 0  # steps between sample writes (the toy task has none)
  c.train.num_devices = 0  # devices in the data mesh (0 = all visible)

  if arg == "tiny":
    c.train.num_steps = 40
    c.train.log_every = 1
    c.train.checkpoint_every = 5
    c.train.eval_every = 20
    c.train.eval_batches = 2
  elif arg:
    raise ValueError(f"unknown variant {arg!r} of toy.py (known: tiny)")
  return c
