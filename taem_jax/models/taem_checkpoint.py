"""TAEM checkpoints for synthesis: the weights plus what the model's inputs mean.

A TAEM directory is a `pretrained.save_pretrained` directory of family "taem" (Orbax state +
`taem_jax.json`) whose sidecar also records

  vocab              the `PhonemeVocab` the phoneme ids refer to (`PhonemeVocab.to_dict()`);
  speaker_embedding  the embedder it learned with (`SpeakerEmbedder.describe()`: kind, dim,
                     model file and its sha256 when known);
  target             the frozen backbone whose latent it imitates: {"name": "wav2lip",
                     "latent_dim": D, "config": Wav2Lip config or null, "fingerprint": the
                     sha256 of the audio encoder that made its z_a targets
                     (`targets.audio_encoder_fingerprint`), "source": where that Wav2Lip was
                     loaded from}; checkpoints older than fingerprints have neither of the last
                     two, and synthesis then cannot check the pairing (it warns).
  training           optional, how it was trained: {"objective": the Table 2 loss row
                     ("mse", "contrastive", ...), "step": int, "dataset": {"name", "builder",
                     "config", "version", "split", "path"}, "config": the training config}
                     (training exports write it; the last two only for built datasets / runs
                     from a config).

`save_taem` writes one and `load_taem` reads one back and checks that the records agree with
the model. A training run writes one with `experiments/train.py --export DIR`
(`TAEMTask.export`).
"""
from __future__ import annotations

import dataclasses
import pathlib

from taem_jax.errors import UserError
from taem_jax.models import pretrained
from taem_jax.models.taem import TAEM, TAEMConfig
from taem_jax.text import PhonemeVocab


@dataclasses.dataclass(frozen=True)
class TAEMInfo:
  """What a TAEM checkpoint records besides its weights."""
  path: str
  vocab: object  # taem_jax.text.PhonemeVocab
  speaker_embedding: dict  # {"kind": "dlib"|"arcface", "dim": int, "file"?, "sha256"?}
  target: dict  # {"name": "wav2lip", "latent_dim", "config", "fingerprint"?, "source"?}
  training: dict = dataclasses.field(default_factory=dict)  # {"objective", "step", ...}


def save_taem(model: TAEM, dst_dir, *, vocab, speaker_embedding: dict,
              target: dict | None = None, training: dict | None = None,
              overwrite: bool = False) -> str:
  """Writes a TAEM directory (see the module docstring).

  Args:
    model: the TAEM.
    dst_dir: destination directory (must not exist unless `overwrite`).
    vocab: the `PhonemeVocab` used to encode its training phonemes.
    speaker_embedding: `SpeakerEmbedder.describe()` of its training embedder (at least kind and
      dim).
    target: {"name", "latent_dim", "config", "fingerprint", "source"} of the frozen backbone
      (default: Wav2Lip with latent_dim = the model's, config and fingerprint unknown).
    training: how it was trained, e.g. {"objective": "mse", "step": 600} (optional).
  Returns:
    the destination path.
  """
  cfg = model.config
  if len(vocab) != cfg.vocab_size:
    raise ValueError(f"vocab has {len(vocab)} symbols, the model {cfg.vocab_size}")
  if int(speaker_embedding.get("dim", -1)) != cfg.speaker_dim:
    raise ValueError(f"speaker embedding is {speaker_embedding.get('dim')}-d, the model takes "
                     f"{cfg.speaker_dim}")
  target = dict(target or {"name": "wav2lip", "latent_dim": cfg.latent_dim, "config": None})
  extra = {"vocab": vocab.to_dict(), "speaker_embedding": dict(speaker_embedding),
           "target": target}
  if training:
    extra["training"] = dict(training)
  return pretrained.save_pretrained(
      model, dst_dir, family="taem", config=model.get_config(), overwrite=overwrite,
      extra_meta=extra)


def load_taem(path) -> tuple[TAEM, TAEMInfo]:
  """Reads a TAEM directory written by `save_taem`, in eval mode.

  Raises:
    UserError: not a TAEM directory (e.g. a Wav2Lip one), missing or inconsistent records.
  """
  d = pathlib.Path(path).expanduser()
  meta = pretrained.read_sidecar(d)
  if meta.get("family") != TAEM.family:
    raise UserError(f"{d} holds a {meta.get('family')} checkpoint, expected a TAEM checkpoint "
                    "(pass the Wav2Lip directory as the Wav2Lip checkpoint and a TAEM directory "
                    "as the TAEM checkpoint)")
  for key in ("vocab", "speaker_embedding"):
    if not isinstance(meta.get(key), dict):
      raise UserError(f"{d}: the TAEM checkpoint records no {key.replace('_', ' ')}; export it "
                      "again (experiments/train.py --export)")
  vocab = PhonemeVocab.from_dict(meta["vocab"])
  cfg = TAEMConfig.from_dict(meta["config"])
  if len(vocab) != cfg.vocab_size:
    raise UserError(f"{d}: its phoneme vocabulary has {len(vocab)} symbols but the model "
                    f"{cfg.vocab_size}; the checkpoint is inconsistent, export it again")
  spk = meta["speaker_embedding"]
  if int(spk.get("dim", -1)) != cfg.speaker_dim:
    raise UserError(f"{d}: it records {spk.get('kind')} speaker embeddings of {spk.get('dim')} "
                    f"dims but the model takes {cfg.speaker_dim}; the checkpoint is "
                    "inconsistent, export it again")
  model = pretrained.load_pretrained(d, family=TAEM.family)
  target = dict(meta.get("target") or {})
  target.setdefault("name", "wav2lip")
  target.setdefault("latent_dim", cfg.latent_dim)
  training = meta.get("training")
  return model, TAEMInfo(str(d), vocab, dict(spk), target,
                         dict(training) if isinstance(training, dict) else {})

