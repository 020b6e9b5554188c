"""Shared TAEM training config; grid.py, tcd_timit.py, lrs2.py, sample.py, synthetic.py call it.

Not run directly: `experiments/train.py --config=experiments/configs/<dataset>.py[:tiny]`.
Paper settings (spec/taem.md §4): AdamW β1 0.9, β2 0.98, ε 1e-8, lr 1e-4, batch 64, ~5k steps.
Where the paper is silent the choice is marked "(choice)".
"""
import ml_collections

# Default buckets of taem_jax.data.pipeline: (max video frames Lv, max phonemes Lt).
BUCKETS = ((48, 32), (80, 48), (128, 72), (192, 104), (256, 136), (384, 200), (512, 264))


def get_config(dataset: str, variant: str | None) -> ml_collections.ConfigDict:
  """The TAEM config for `dataset`; variant None (paper scale) or 'tiny' (tests)."""
  c = ml_collections.ConfigDict()
  c.task = "taem"  # trainer task (experiments/train.py TASKS)
  c.seed = 0  # model init, dropout reseeding and data order all derive from it

  c.data = ml_collections.ConfigDict()
  c.data.dataset = dataset  # corpus name (grid | tcd_timit | lrs2 | sample | synthetic)
  c.data.builder_config = "dlib"  # TFDS config: dlib | dlib_za | arcface | arcface_za
  c.data.train_split = "train"  # split trained on
  c.data.eval_split = "test"  # held-out split for validation
  c.data.batch_size = 64  # global batch (paper: 64); split over devices and processes
  c.data.buckets = BUCKETS  # padding buckets; each is one static shape (one compile)
  c.data.worker_count = 0  # grain worker processes for decoding (0 = in the trainer process)

  c.model = ml_collections.ConfigDict()
  c.model.tiny = False  # start from TAEMConfig.tiny() instead of the paper-size defaults
  # Other TAEMConfig fields may be set here (taem_jax/models/taem.py documents each); the
  # vocabulary size, pad/pause ids and speaker_dim always come from the dataset.

  c.target = ml_collections.ConfigDict()
  c.target.z_a = "auto"  # z_a from the dataset (built with *_za) or computed by Wav2Lip: auto
  c.target.wav2lip_width = 1.0  # Wav2Lip channel multiplier (1.0 = the official model)
  c.target.wav2lip_min_channels = 1  # its layer-width floor (Wav2Lip min_channels; 1 = none)
  c.target.wav2lip_dir = ""  # converted Wav2Lip, only to build a *_za dataset on the fly
  c.target.require_pretrained = True  # refuse a random Wav2Lip target (no --init_from)

  c.loss = ml_collections.ConfigDict()
  c.loss.objective = "mse"  # Table 2 row: mse | contrastive | mse+contrastive (paper: mse)
  c.loss.mse_weight = 1.0  # weight of L_dis (choice: the paper gives none)
  c.loss.duration_weight = 1.0  # weight of L_dur (choice)
  c.loss.contrastive_weight = 1.0  # weight of InfoNCE when selected (choice)
  c.loss.temperature = 0.1  # InfoNCE temperature on cosine similarities (choice)

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-4  # peak AdamW learning rate (paper)
  c.optim.b1 = 0.9  # AdamW beta1 (paper)
  c.optim.b2 = 0.98  # AdamW beta2 (paper)
  c.optim.eps = 1e-8  # AdamW epsilon (paper)
  c.optim.weight_decay = 0.01  # decoupled weight decay (choice: PyTorch AdamW's default)
  c.optim.warmup_steps = 400  # linear warm-up steps (choice, FastSpeech-style)
  c.optim.schedule = "constant"  # 'constant' or 'cosine' after warm-up (choice)
  c.optim.decay_steps = 0  # cosine only: steps to the end of the decay (0 = the run's last step)
  c.optim.final_lr_fraction = 0.0  # cosine only: final lr / peak lr
  c.optim.clip_grad_norm = 1.0  # global-norm gradient clipping, 0 = off (choice)

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 5000  # total steps (paper: converges in ~5k)
  c.train.log_every = 50  # steps between metric writes (TensorBoard, metrics.jsonl)
  c.train.checkpoint_every = 500  # steps between checkpoints (+ at the end and on Ctrl-C)
  c.train.keep_checkpoints = 3  # most recent checkpoints kept
  c.train.async_checkpointing = True  # write checkpoints in a background thread
  c.train.eval_every = 500  # steps between validation passes (0 = off)
  c.train.eval_batches = 20  # held-out batches per validation pass
  c.train.sample_every = 0  # steps between sample images (TAEM has no sample hook yet)
  c.train.num_devices = 0  # devices in the data mesh (0 = all visible)

  if variant == "tiny":
    c.data.batch_size = 4
    c.data.buckets = ((48, 32), (80, 48))
    c.model.tiny = True
    c.model.latent_dim = 32  # = 512 * target.wav2lip_width (Wav2Lip's z_a width)
    c.target.wav2lip_width = 1 / 16
    c.target.require_pretrained = False  # tests train against a random tiny Wav2Lip
    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 5
    c.train.num_steps = 30
    c.train.log_every = 5
    c.train.checkpoint_every = 10
    c.train.eval_every = 15
    c.train.eval_batches = 2
  elif variant == "demo":
    # The demo's TAEM: reprograms the width-1/8 Wav2Lip of wav2lip_gen.py:tiny (z_a is 64-d).
    c.data.batch_size = 16
    c.data.buckets = ((48, 32), (80, 48), (128, 72))
    c.model.hidden = 128  # (choice) 1/4 of the paper's 512
    c.model.latent_dim = 64  # = 512 * target.wav2lip_width
    c.model.encoder_layers = 2
    c.model.refiner_layers = 2
    c.model.ffn_filter = 256
    c.model.ffn_kernels = (9, 1)
    c.model.dp_filter = 128
    c.model.dropout = 0.1
    c.target.wav2lip_width = 1 / 8
    c.target.wav2lip_min_channels = 16  # as wav2lip_gen.py:tiny
    c.optim.learning_rate = 1e-3
    c.optim.warmup_steps = 50
    c.train.num_steps = 600
    c.train.log_every = 25
    c.train.checkpoint_every = 200
    c.train.eval_every = 200
    c.train.eval_batches = 4
  elif variant:
    raise ValueError(f"unknown config variant {variant!r} (known: tiny, demo)")
  return c
