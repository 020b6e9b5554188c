"""The backbone interface (`targets.Backbone`, the `BACKBONES` registry) and `--backbone`.

A tiny random Wav2Lip (width 1/16 -> 32-d latent) from the registry checks the contract; a
second name registered for the test stands for another backbone in the refusals (PC-AVS\nitself: tests/test_pcavs_backbone.py).
"""
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from taem_jax import synthesis
from taem_jax.errors import UserError
from taem_jax.face import SpeakerEmbedder
from taem_jax.models import pretrained, taem_checkpoint, targets
from taem_jax.models.taem import TAEM, TAEMConfig
from taem_jax.rates import SAMPLE_RATE
from taem_jax.text import PhonemeVocab

REPO = pathlib.Path(__file__).resolve().parents[1]
WIDTH = 1 / 16

pytestmark = pytest.mark.usefixtures("fast_compile")


class _Other(targets.Wav2LipTarget):
  """Another registered backbone name (same network): what a PC-AVS entry looks like."""
  name = "other"
  demo = None


def _one_line(e) -> str:
  assert "\n" not in str(e.value), str(e.value)
  return str(e.value)


@pytest.fixture(scope="module")
def backbone():
  return targets.backbone_class("wav2lip").random(seed=0, width=WIDTH)


def _faces(n, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)


def test_registry_and_unknown_name():
  assert targets.backbone_class(targets.DEFAULT_BACKBONE) is targets.Wav2LipTarget
  assert set(targets.BACKBONES) == {"wav2lip", "pcavs"}
  for name, cls in targets.BACKBONES.items():
    assert cls.name == name
  with pytest.raises(UserError) as e:
    targets.backbone_class("sadtalker")
  msg = _one_line(e)
  assert "'sadtalker'" in msg and "pcavs, wav2lip" in msg


def test_contract_shapes(backbone):
  b = backbone
  assert isinstance(b, targets.Backbone)
  assert b.name == "wav2lip" and b.latent_dim == 32 and b.fps == 25 and b.face_size == 96
  wav = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
  feats = b.audio_features(wav, 7)
  assert feats.shape == (7, 80, 16, 1) and feats.dtype == np.float32
  z = b.encode(jnp.asarray(feats)[None])
  assert z.shape == (1, 7, b.latent_dim) and bool(jnp.all(jnp.isfinite(z)))
  faces6 = b.prepare_faces(_faces(3))
  assert faces6.shape == (3, 96, 96, 6)
  assert np.all(faces6[:, 48:, :, :3] == 0) and np.any(faces6[:, :48, :, :3] > 0)
  y = b.decode(z[0, :3], jnp.asarray(faces6))
  assert y.shape == (3, 96, 96, 3)
  # The batched runner drives the network itself, with the same inputs.
  np.testing.assert_allclose(
      np.asarray(b.model.decode(z[0, :3], jnp.asarray(faces6))), np.asarray(y), atol=1e-5)


def test_encode_is_frozen_and_render_gradient_reaches_z(backbone):
  b = backbone
  feats = jnp.asarray(np.random.default_rng(1).standard_normal((1, 2, 80, 16, 1)), jnp.float32)
  faces6 = jnp.asarray(b.prepare_faces(_faces(2, 1)))

  def enc(model):
    return jnp.sum(targets.Wav2LipTarget(model).encode(feats) ** 2)

  g = nnx.grad(enc)(b.model)
  leaves = jax.tree.leaves(nnx.state(g, nnx.Param))
  assert leaves and all(float(jnp.max(jnp.abs(x))) == 0.0 for x in leaves)

  z = b.encode(feats)[0]

  def render(model, z):
    return jnp.mean(targets.Wav2LipTarget(model).decode(z, faces6))

  gm, gz = nnx.grad(render, argnums=(0, 1))(b.model, z)
  assert float(jnp.max(jnp.abs(gz))) > 0  # the latent gets a gradient ...
  assert all(float(jnp.max(jnp.abs(x))) == 0.0  # ... the weights none
             for x in jax.tree.leaves(nnx.state(gm, nnx.Param)))


def test_fingerprint_and_record(backbone):
  b = backbone
  fp = b.fingerprint()
  assert len(fp) == 64 and fp == targets.audio_encoder_fingerprint(b.model)
  assert targets.backbone_class("wav2lip").random(seed=1, width=WIDTH).fingerprint() != fp
  rec = b.record("ckpt/x")
  assert rec == {"name": "wav2lip", "latent_dim": 32, "fingerprint": fp, "source": "ckpt/x"}


def test_check_backbone_old_records_and_other_names():
  targets.check_backbone({}, "wav2lip", made="TAEM t")  # made before names: wav2lip
  targets.check_backbone(None, "wav2lip", made="TAEM t")
  assert targets.recorded_backbone({"fingerprint": "ab"}) == "wav2lip"
  with pytest.raises(UserError) as e:
    targets.check_backbone({"name": "pcavs"}, "wav2lip", made="TAEM t")
  msg = _one_line(e)
  assert "pcavs" in msg and "--backbone pcavs" in msg and "TAEM t" in msg
  # Another backbone cannot be forced through the fingerprint check either.
  with pytest.raises(UserError, match="pcavs backbone"):
    targets.check_pairing({"name": "pcavs", "fingerprint": "ab"},
                          {"name": "wav2lip", "fingerprint": "ab"}, made="TAEM t",
                          loaded="Wav2Lip w", force=True, force_hint="--force")


@pytest.fixture(scope="module")
def dirs(backbone, tmp_path_factory):
  """A saved backbone checkpoint and TAEMs exported for it ('a'), for another ('pcavs') and
  with no backbone name recorded ('old')."""
  root = tmp_path_factory.mktemp("bb")
  pretrained.save_pretrained(backbone.model, root / "w2l", family="wav2lip",
                             config=backbone.model.get_config())
  vocab = PhonemeVocab()
  cfg = TAEMConfig.from_vocab(vocab, hidden=32, latent_dim=32, speaker_dim=128,
                              encoder_layers=1, refiner_layers=1, heads=2, ffn_filter=64,
                              ffn_kernels=(3, 1), dp_filter=32)
  dlib = SpeakerEmbedder("dlib").describe()
  rec = backbone.record(root / "w2l")
  for name, target in (("a", rec), ("pcavs", dict(rec, name="pcavs")),
                       ("old", {"latent_dim": 32, "fingerprint": rec["fingerprint"]})):
    taem_checkpoint.save_taem(TAEM(cfg, rngs=nnx.Rngs(0)), root / name, vocab=vocab,
                              speaker_embedding=dlib, target=target)
  return root


def test_provenance_round_trip_and_refusals(backbone, dirs, monkeypatch):
  _, info = taem_checkpoint.load_taem(dirs / "a")
  assert info.target["name"] == "wav2lip"
  assert info.target["fingerprint"] == backbone.fingerprint()
  assert info.target["source"] == str(dirs / "w2l")
  s = synthesis.Synthesizer(dirs / "w2l", dirs / "a", backbone="wav2lip")
  assert s.text is not None and s.backbone.name == "wav2lip" and s.wav2lip is s.backbone.model
  assert s.backbone.fingerprint() == backbone.fingerprint()
  # No name recorded (older exports): read as wav2lip.
  _, old = taem_checkpoint.load_taem(dirs / "old")
  assert old.target["name"] == "wav2lip"
  assert synthesis.Synthesizer(dirs / "w2l", dirs / "old").text is not None
  # A TAEM for another backbone is refused with one line, even with the force flag.
  with pytest.raises(UserError) as e:
    synthesis.Synthesizer(dirs / "w2l", dirs / "pcavs", allow_mismatched_wav2lip=True)
  msg = _one_line(e)
  assert "pcavs backbone" in msg and str(dirs / "pcavs") in msg
  # A second registered backbone: the wav2lip TAEM is refused under it.
  monkeypatch.setitem(targets.BACKBONES, "other", _Other)
  with pytest.raises(UserError) as e:
    synthesis.Synthesizer(dirs / "w2l", dirs / "a", backbone="other")
  assert "made for the wav2lip backbone, not other" in _one_line(e)
  with pytest.raises(UserError, match="unknown backbone 'nope'"):
    synthesis.Synthesizer(dirs / "w2l", dirs / "a", backbone="nope")


COMMANDS = [["-m", "taem_jax.cli.synthesize"], ["-m", "taem_jax.cli.app"],
            ["experiments/evaluate.py"], ["experiments/build_dataset.py"],
            ["experiments/demo.py"], ["experiments/train.py"]]


def _run(args):
  # This checkout's package, whichever one the environment has installed.
  env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
  return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                        timeout=300, env=env)


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c[-1])
def test_backbone_flag_in_help_and_unknown_name_refused(cmd):
  out = _run([*cmd, "--help"])
  assert out.returncode == 0, out.stderr[-2000:]
  text = out.stdout
  assert "--backbone" in text and "wav2lip" in text, text[-2000:]
  bad = _run([*cmd, "--backbone", "nope"])
  assert bad.returncode != 0
  err = [line for line in bad.stderr.strip().splitlines() if "nope" in line]
  assert err and "wav2lip" in err[-1], bad.stderr[-2000:]
