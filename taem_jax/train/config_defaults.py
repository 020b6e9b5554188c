"""The shared defaults of the training configs in experiments/configs/.

`taem_config(dataset, variant)` is the TAEM config that grid.py, tcd_timit.py, lrs2.py,
sample.py and synthetic.py start from (paper settings: AdamW beta1 0.9, beta2 0.98, eps 1e-8,
lr 1e-4, batch 64, ~5k steps); `wav2lip_config(task, variant)` is what wav2lip_expert.py and
wav2lip_gen.py start from (official settings of the Wav2Lip training scripts). Where the paper
or the official scripts are silent, the choice is marked "(choice)". A config file only states
what differs; run one with `experiments/train.py --config=experiments/configs/<name>.py[:v]`.
"""
import ml_collections

# Default buckets of taem_jax.data.pipeline: (max video frames Lv, max phonemes Lt).
TAEM_BUCKETS = ((48, 32), (80, 48), (128, 72), (192, 104), (256, 136), (384, 200), (512, 264))


def taem_config(dataset: str, variant: str | None) -> ml_collections.ConfigDict:
  """The TAEM config for `dataset`; variant None (paper scale), 'tiny' (tests) or 'demo'."""
  c = ml_collections.ConfigDict()
  c.task = "taem"  # trainer task (taem_jax.train.tasks.TASKS)
  c.seed = 0  # model init, dropout reseeding and data order all derive from it

  c.data = ml_collections.ConfigDict()
  c.data.dataset = dataset  # corpus name (grid | tcd_timit | lrs2 | sample | synthetic)
  c.data.builder_config = "dlib"  # TFDS config: dlib | dlib_za | arcface | arcface_za
  c.data.train_split = "train"  # split trained on
  c.data.eval_split = "test"  # held-out split for validation
  c.data.batch_size = 64  # global batch (paper: 64); split over devices and processes
  c.data.buckets = TAEM_BUCKETS  # padding buckets; each is one static shape (one compile)
  c.data.worker_count = 0  # grain worker processes for decoding (0 = in the trainer process)

  c.model = ml_collections.ConfigDict()
  c.model.tiny = False  # start from TAEMConfig.tiny() instead of the paper-size defaults
  # Other TAEMConfig fields may be set here (taem_jax/models/taem.py documents each); the
  # vocabulary size, pad/pause ids and speaker_dim always come from the dataset.

  c.target = ml_collections.ConfigDict()
  c.target.backbone = "wav2lip"  # frozen backbone whose latent TAEM learns (taem_jax BACKBONES)
  c.target.z_a = "auto"  # z_a from the dataset (built with *_za) or computed by Wav2Lip: auto
  c.target.wav2lip_width = 1.0  # Wav2Lip channel multiplier (1.0 = the official model)
  c.target.wav2lip_min_channels = 1  # its layer-width floor (Wav2Lip min_channels; 1 = none)
  c.target.wav2lip_dir = ""  # converted Wav2Lip, only to build a *_za dataset on the fly
  c.target.require_pretrained = True  # refuse a random Wav2Lip target (no --init_from)
  # Train although the dataset's cached z_a were made by another Wav2Lip than --init_from /
  # wav2lip_dir (audio-encoder fingerprints differ); the TAEM then fits the dataset's.
  c.target.allow_fingerprint_mismatch = False
  c.target.expert_dir = ""  # lip-sync expert (syncnet_color dir), only for objective mse+task

  c.loss = ml_collections.ConfigDict()
  c.loss.objective = "mse"  # Table 2 row: mse | contrastive | mse+contrastive | mse+task
  c.loss.mse_weight = 1.0  # weight of L_dis (choice: the paper gives none)
  c.loss.duration_weight = 1.0  # weight of L_dur (choice)
  c.loss.contrastive_weight = 1.0  # weight of InfoNCE when selected (choice)
  c.loss.temperature = 0.1  # InfoNCE temperature on cosine similarities (choice)
  # mse+task: Wav2Lip's generator loss through the frozen generator and expert (paper 4.2).
  c.loss.task_weight = 1.0  # weight of the task loss (choice)
  c.loss.sync_weight = 0.03  # its w: w L_sync + (1 - w) L1 (Wav2Lip HQ's syncnet_wt)
  c.loss.task_windows = 1  # 5-frame windows rendered per clip per step (choice: cost)

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
  c.train.sample_every = 500  # steps between held-out sample clips (TensorBoard + mp4; 0 = off)
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
    c.train.sample_every = 0  # tests ask for samples where they check them
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
    c.train.sample_every = 200
  elif variant:
    raise ValueError(f"unknown config variant {variant!r} (known: tiny, demo)")
  return c


# The Wav2Lip tasks cut fixed-size windows out of the clips, so the bucket does not change the
# step's shapes (one compile); buckets only bound how many frames are decoded per clip.
WAV2LIP_BUCKETS = TAEM_BUCKETS

WAV2LIP_VARIANTS = ("lrs2", "grid", "sample", "tiny", "synthetic")


def wav2lip_dataset_of(variant: str | None) -> str:
  """The corpus a Wav2Lip config variant trains on (no variant: LRS2, as the official model)."""
  if variant in (None, "", "lrs2"):
    return "lrs2"
  if variant not in WAV2LIP_VARIANTS:
    raise ValueError(f"unknown variant {variant!r} (known: {', '.join(WAV2LIP_VARIANTS[1:])})")
  return {"tiny": "sample"}.get(variant, variant)


def wav2lip_config(task: str, variant: str | None) -> ml_collections.ConfigDict:
  """Fields every Wav2Lip config (`task` expert or wav2lip) has, at the official (LRS2) scale."""
  c = ml_collections.ConfigDict()
  c.task = task  # trainer task: expert (SyncNet_color) | wav2lip (generator)
  c.seed = 0  # model init, data order and window sampling all derive from it

  dataset = wav2lip_dataset_of(variant)
  c.data = ml_collections.ConfigDict()
  c.data.dataset = dataset  # corpus: lrs2 | grid | sample (generated) | synthetic (in memory)
  c.data.builder_config = "dlib"  # TFDS config of the built dataset (faces are the same in all)
  c.data.train_split = "train"  # split trained on
  c.data.eval_split = "val" if dataset == "lrs2" else "test"  # held-out split for validation
  c.data.batch_size = 16  # clips per global batch (split over devices and processes)
  c.data.windows_per_clip = 1  # windows cut from each clip (official: 1); samples = product
  c.data.eval_windows_per_clip = 0  # windows per held-out clip (0 = windows_per_clip)
  c.data.buckets = WAV2LIP_BUCKETS  # clip padding buckets (see above)
  c.data.augment = False  # expert only: random mirror + colour jitter per pair (official: none)
  c.data.worker_count = 0  # grain worker processes decoding JPEGs (0 = in the trainer)
  c.data.num_train = 0  # synthetic only: training clips
  c.data.num_eval = 0  # synthetic only: held-out clips
  c.data.num_frames = 0  # synthetic only: frames per clip

  c.sampling = ml_collections.ConfigDict()
  c.sampling.min_offset = 1  # expert negatives: frames between audio and face windows (official 1)
  c.sampling.audio_shift = -1  # generator: frame j hears mel_windows[j + shift] (official -1)
  c.sampling.min_ref_offset = 1  # generator: |reference start - window start| (official 1)

  c.model = ml_collections.ConfigDict()
  c.model.width = 1.0  # channel multiplier of the trained network (1.0 = official)

  c.optim = ml_collections.ConfigDict()
  c.optim.learning_rate = 1e-4  # Adam learning rate (official)
  c.optim.b1 = 0.9  # Adam beta1 (official; 0.5 with the GAN)
  c.optim.b2 = 0.999  # Adam beta2 (official)
  c.optim.eps = 1e-8  # Adam epsilon (PyTorch default)
  c.optim.weight_decay = 0.0  # none: plain Adam (official)
  c.optim.warmup_steps = 0  # no warm-up (official)
  c.optim.schedule = "constant"  # no LR schedule (official)
  c.optim.decay_steps = 0  # cosine only: steps to the end of the decay (0 = the run's last step)
  c.optim.final_lr_fraction = 0.0  # cosine only
  c.optim.clip_grad_norm = 0.0  # no clipping (official)

  c.train = ml_collections.ConfigDict()
  c.train.num_steps = 200_000  # total steps
  c.train.log_every = 100  # steps between metric writes (TensorBoard, metrics.jsonl)
  c.train.checkpoint_every = 3000  # steps between checkpoints (official: 3,000 / 10,000)
  c.train.keep_checkpoints = 3  # most recent checkpoints kept
  c.train.async_checkpointing = True  # write checkpoints in a background thread
  c.train.eval_every = 3000  # steps between validation passes
  c.train.eval_batches = 100  # held-out batches per validation pass
  c.train.eval_at_start = True  # validate once before step 1 (the untrained baseline)
  c.train.sample_every = 0  # steps between sample frame grids (generator only)
  c.train.num_devices = 0  # devices in the data mesh (0 = all visible)

  if dataset == "synthetic":
    c.data.num_train = 48
    c.data.num_eval = 16
    c.data.num_frames = 24
  return c
