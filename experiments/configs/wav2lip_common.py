"""Shared fields of the Wav2Lip training configs (wav2lip_expert.py, wav2lip_gen.py).

Not run directly: `experiments/train.py --config=experiments/configs/wav2lip_<expert|gen>.py[:v]`.
Official settings are from the Wav2Lip scripts (spec: wav2lip_family.md §5); "(choice)" marks
the project's own.
"""
import ml_collections

# Padding buckets of the clip pipeline: (max video frames, max phonemes). The Wav2Lip tasks cut
# fixed-size windows out of the clips, so the bucket does not change the step's shapes (one
# compile); buckets only bound how many frames are decoded per clip.
BUCKETS = ((48, 32), (80, 48), (128, 72), (192, 104), (256, 136), (384, 200), (512, 264))

VARIANTS = ("lrs2", "grid", "sample", "tiny", "synthetic")


def dataset_of(variant: str | None) -> str:
  if variant in (None, "", "lrs2"):
    return "lrs2"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS[1:])})")
  return {"tiny": "sample"}.get(variant, variant)


def get_config(task: str, variant: str | None) -> ml_collections.ConfigDict:
  """Fields every Wav2Lip config has, at the official (LRS2) scale."""
  c = ml_collections.ConfigDict()
  c.task = task  # trainer task: expert (SyncNet_color) | wav2lip (generator)
  c.seed = 0  # model init, data order and window sampling all derive from it

  dataset = dataset_of(variant)
  c.data = ml_collections.ConfigDict()
  c.data.dataset = dataset  # corpus: lrs2 | grid | sample (generated) | synthetic (in memory)
  c.data.builder_config = "dlib"  # TFDS config of the built dataset (faces are the same in all)
  c.data.train_split = "train"  # split trained on
  c.data.eval_split = "val" if dataset == "lrs2" else "test"  # held-out split for validation
  c.data.batch_size = 16  # clips per global batch (split over devices and processes)
  c.data.windows_per_clip = 1  # windows cut from each clip (official: 1); samples = product
  c.data.eval_windows_per_clip = 0  # windows per held-out clip (0 = windows_per_clip)
  c.data.buckets = BUCKETS  # clip padding buckets (see above)
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
