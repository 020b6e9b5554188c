"""PC-AVS as a registered backbone: the composed module (`models.pcavs.PCAVS`), its per-frame
audio windows, the `Backbone` contract of `targets.PCAVSTarget`, and loading a converted
directory.

One cheap random-weight PC-AVS for the module (`targets.PCAVS_TINY`: 8 identity classes,
28 px generator, 1-layer mapping MLP; netV / netE / netA_sync at official size, since only
their classifiers are configurable).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from model_helpers import perturbed

import porting
from porting import families, torchwrite
from taem_jax import audio
from taem_jax.errors import UserError
from taem_jax.face import align
from taem_jax.models import pretrained, targets
from taem_jax.models.pcavs import MOUTH_FEATURE_WEIGHT
from taem_jax.rates import SAMPLE_RATE


@pytest.fixture(scope="module")
def backbone():
  return targets.backbone_class("pcavs").random(seed=0, **targets.PCAVS_TINY)


@pytest.fixture(scope="module")
def jitted():
  """One compiled decode / encode per test module (compiling PC-AVS takes ~20 s here)."""
  return {"decode": nnx.jit(lambda m, z, f: m.decode(z, f)),
          "encode": nnx.jit(lambda m, x: m.encode_audio(x))}


def _aligned(n, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)


def _wav(seconds=1.0, seed=0):
  return (np.random.default_rng(seed).standard_normal(int(SAMPLE_RATE * seconds)) * 0.1).astype(
      np.float32)


def _one_line(e) -> str:
  assert "\n" not in str(e.value), str(e.value)
  return str(e.value)


def test_video_windows_are_the_official_ones_from_frame_2(backbone):
  spec = audio.pcavs_melspectrogram(_wav(1.0))
  official = audio.pcavs_windows(spec)  # video frames 2 .. 2 + len - 1
  n = len(official) + 5
  win = audio.pcavs_video_windows(spec, n)
  assert win.shape == (n, 80, 20, 1) and win.dtype == np.float32
  np.testing.assert_array_equal(win[2:2 + len(official)], official)
  # Frames 0 and 1 start before the audio: their first 8 columns are silence (0).
  assert np.all(win[0, :, :8] == 0) and np.all(win[1, :, :4] == 0)
  np.testing.assert_array_equal(win[0, :, 8:, 0], spec[:12].T)
  # Past the end: silence fills in, and a clip shorter than one window still gets windows.
  assert np.all(win[-1, :, -4:] == 0)
  assert audio.pcavs_video_windows(spec[:3], 2).shape == (2, 80, 20, 1)
  # Cut chunk by chunk (synthesis) = cut at once.
  np.testing.assert_array_equal(audio.pcavs_video_windows(spec, 4, first=n - 4), win[-4:])
  windows = backbone.audio_windows(_wav(1.0), 25)
  np.testing.assert_array_equal(windows(3, 5), win[3:8])
  with pytest.raises(UserError, match="made for 25 fps video, got 30 fps"):
    backbone.audio_windows(_wav(1.0), 30)


def test_decode_equals_the_official_wiring(backbone, jitted):
  m = backbone.model
  rng = np.random.default_rng(1)
  mel = jnp.asarray(rng.uniform(0, 1, (2, 80, 20, 1)), jnp.float32)
  faces = jnp.asarray(backbone.prepare_faces(_aligned(2, 1)))
  z = jitted["encode"](m, mel)
  np.testing.assert_allclose(np.asarray(z), np.asarray(m.netA_sync(mel)), atol=1e-6)

  @nnx.jit
  def by_hand(m, z, faces):
    id_vec, id_map, _ = m.netV(faces)
    pose = m.netE.embed_headpose(m.netE.headpose(m.netE.features(faces)))
    mouth = m.netE.embed_mouth(z * 1.2)
    rgb = m.netG(jnp.concatenate([id_vec, mouth, pose], -1), id_map)
    return (rgb[..., ::-1] + 1) / 2  # RGB [-1, 1] -> BGR [0, 1]

  y = np.asarray(jitted["decode"](m, z, faces))
  assert MOUTH_FEATURE_WEIGHT == 1.2
  assert y.shape == (2, 28, 28, 3) and np.all((y >= 0) & (y <= 1))
  np.testing.assert_allclose(y, np.asarray(by_hand(m, z, faces)), atol=1e-6)
  # The latent drives the frame, and each frame's own crop does too.
  y_z = np.asarray(jitted["decode"](m, z[::-1], faces))
  y_f = np.asarray(jitted["decode"](m, z, faces[::-1]))
  assert np.abs(y_z - y).max() > 1e-6 and np.abs(y_f - y).max() > 1e-6


def test_contract(backbone, jitted):
  b = backbone
  assert isinstance(b, targets.Backbone)
  assert (b.name, b.latent_dim, b.fps, b.face_size, b.can_render) == ("pcavs", 512, 25, 224, True)
  assert targets.backbone_class("pcavs") is targets.PCAVSTarget
  feats = b.audio_features(_wav(0.6), 7)
  assert feats.shape == (7, 80, 20, 1) and 0 <= feats.min() and feats.max() <= 1
  z = b.encode(jnp.asarray(feats)[None])
  assert z.shape == (1, 7, 512) and bool(jnp.all(jnp.isfinite(z)))
  np.testing.assert_allclose(np.asarray(z[0]), np.asarray(jitted["encode"](b.model, feats)),
                             atol=1e-5)
  faces = b.prepare_faces(_aligned(2))
  assert faces.shape == (2, 224, 224, 3) and faces.dtype == np.float32
  assert -1 <= faces.min() and faces.max() <= 1
  for bad in (_aligned(2)[:, :96, :96], _aligned(2).astype(np.float32) / 255, _aligned(0)):
    with pytest.raises(UserError) as e:
      b.prepare_faces(bad)
    _one_line(e)


def test_encode_is_frozen_and_render_gradient_reaches_z(backbone):
  b = backbone
  feats = jnp.asarray(np.random.default_rng(2).uniform(0, 1, (1, 2, 80, 20, 1)), jnp.float32)

  def enc(model):
    return jnp.sum(targets.PCAVSTarget(model).encode(feats) ** 2)

  g = nnx.grad(enc)(b.model)
  leaves = jax.tree.leaves(nnx.state(g, nnx.Param))
  assert leaves and all(float(jnp.max(jnp.abs(x))) == 0.0 for x in leaves)
  faces = jnp.asarray(b.prepare_faces(_aligned(1, 3)))
  z = b.encode(feats)[0, :1]

  def render(model, z):
    return jnp.mean(targets.PCAVSTarget(model).decode(z, faces))

  gm, gz = nnx.jit(nnx.grad(render, argnums=(0, 1)))(b.model, z)
  assert float(jnp.max(jnp.abs(gz))) > 0
  assert all(float(jnp.max(jnp.abs(x))) == 0.0
             for x in jax.tree.leaves(nnx.state(gm, nnx.Param)))


def test_fingerprint_covers_netA_sync_only(backbone):
  b = backbone
  fp = b.fingerprint()
  assert len(fp) == 64 and fp != targets.state_fingerprint(b.model.netA_sync.model, b"other")
  assert b.record("ckpt/p") == {"name": "pcavs", "latent_dim": 512, "fingerprint": fp,
                                "source": "ckpt/p"}

  def changed(*path):
    return targets.PCAVSTarget(perturbed(b.model, *path)).fingerprint()

  assert changed("netA_sync", "model", "conv1", "kernel") != fp
  assert changed("netA_sync", "model", "bn1", "mean") != fp  # running statistics count
  assert changed("netA_sync", "fc", "kernel") == fp  # the unused classifier does not
  assert changed("netE", "mouth_embed", 1, "kernel") == fp  # nor the renderer


def test_load_round_trip_and_refusals(backbone, tmp_path):
  d = tmp_path / "pcavs"
  pretrained.save_pretrained(backbone.model, d, family="pcavs",
                             config=backbone.model.get_config())
  loaded = targets.PCAVSTarget.load(d)
  assert loaded.model.get_config() == targets.PCAVS_TINY
  assert loaded.fingerprint() == backbone.fingerprint()
  official = tmp_path / "official"
  official.mkdir()
  for net in ("G", "V", "E", "A_sync"):
    (official / f"latest_net_{net}.pth").write_bytes(b"")
  with pytest.raises(UserError) as e:
    targets.PCAVSTarget.load(official)
  assert "porting.convert --src" in _one_line(e)
  w2l = tmp_path / "w2l"
  m = targets.Wav2LipTarget.random(0, width=1 / 16).model
  pretrained.save_pretrained(m, w2l, family="wav2lip", config=m.get_config())
  with pytest.raises(UserError, match="holds a wav2lip checkpoint, expected pcavs"):
    targets.PCAVSTarget.load(w2l)


def _official_folder(root, seed=0, swap=(), empty=()):
  """Random official state dicts written as PC-AVS's save_network does (bare dicts, zip);
  `swap=(a, b)` writes net b's weights as file a, `empty` nets get an empty file."""
  root.mkdir()
  for suffix in ("A_sync", "E", "V", "G"):
    path = root / f"latest_net_{suffix}.pth"
    if suffix in empty:
      path.write_bytes(b"")
      continue
    family = f"pcavs_{swap[1] if swap and suffix == swap[0] else suffix}"
    torchwrite.save(families.random_state_dict(family, seed=seed), path)
  (root / "opt.txt").write_text("other files in the folder are ignored\n")
  return root


def test_folder_refusals_are_one_line(tmp_path):
  src = tmp_path / "ckpt"
  src.mkdir()
  with pytest.raises(UserError) as e:
    porting.convert(src, tmp_path / "out")
  assert "latest_net_A_sync.pth is missing" in _one_line(e)
  # A file where another belongs (netE's weights saved as netV's) is named, nothing written.
  bad = _official_folder(tmp_path / "swapped", swap=("V", "E"), empty=("G",))
  with pytest.raises(UserError) as e:
    porting.convert(bad, tmp_path / "out")
  assert "latest_net_V.pth is a pcavs_E checkpoint" in _one_line(e)
  assert not (tmp_path / "out").exists()
  with pytest.raises(UserError, match="converts a PC-AVS checkpoint folder"):
    porting.convert(bad / "latest_net_V.pth", tmp_path / "out", family="pcavs")


def test_official_folder_converts_into_one_backbone_directory(tmp_path):
  # ~40 s: 152 M random official weights written, read and converted.
  src = _official_folder(tmp_path / "demo", seed=3)
  stats = {}
  dst = porting.convert(src, tmp_path / "pcavs", stats=stats)
  assert stats["family"] == "pcavs" and stats["num_params"] == sum(
      families.num_params(f"pcavs_{s}") for s in ("G", "V", "E", "A_sync"))
  b = targets.PCAVSTarget.load(dst)
  assert b.model.get_config() == {"num_classes": 5830, "size": 224, "n_mlp": 8}
  meta = pretrained.read_sidecar(dst)
  assert meta["sources"]["netG"]["source_file"] == "latest_net_G.pth"
  # Each net holds its own file's weights: netA_sync equals the single-file conversion.
  one = porting.convert(src / "latest_net_A_sync.pth", tmp_path / "a_sync")
  mel = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (2, 80, 20, 1)), jnp.float32)
  np.testing.assert_array_equal(np.asarray(b.model.netA_sync(mel)),
                                np.asarray(pretrained.load_pretrained(one)(mel)))
  sd = families.random_state_dict("pcavs_G", seed=3)
  np.testing.assert_array_equal(np.asarray(b.model.netG.noises.noise_10[...])[0, :, :, 0],
                                sd["noises.noise_10"][0, 0])
  sd = families.random_state_dict("pcavs_E", seed=3)
  np.testing.assert_array_equal(np.asarray(b.model.netE.mouth_embed[1].kernel[...]),
                                sd["mouth_embed.1.weight"].T)


def _landmarks(scale, angle, shift):
  """68 points whose eye / mouth centres are a similarity image of the alignment template."""
  pts = np.random.default_rng(5).normal(0, 3, (68, 2))
  for sl, centre in ((slice(36, 42), align.TEMPLATE[0]), (slice(42, 48), align.TEMPLATE[1]),
                     (slice(60, 68), align.TEMPLATE[2])):
    pts[sl] += centre - pts[sl].mean(0)
  c, s = np.cos(angle), np.sin(angle)
  return pts @ (np.array([[c, -s], [s, c]]) * scale).T + np.array(shift)


def test_align_placement_crops_like_align_faces_and_pastes_back_in_place():
  lm = np.stack([_landmarks(1.6, 0.2, (140.0, 90.0)), _landmarks(1.6, 0.2, (146.0, 92.0))])
  yy, xx = np.mgrid[:600, :640]
  frame = np.stack([(xx * 0.5) % 256, (yy * 0.6) % 256, (xx + yy) * 0.25 % 256], -1)
  frames = np.stack([frame, frame]).astype(np.uint8)
  place = align.AlignPlacement(np.concatenate([lm, np.zeros((1, 68, 2))]),
                               np.array([True, True, False]), feather=0.1)
  crops = place.crop(frames, np.array([0, 1]))
  np.testing.assert_array_equal(crops, align.align_faces(frames, lm))
  # A "generated" face equal to the loader's crop of the input goes back where it came from.
  gen = (targets.PCAVSTarget.prepare_faces(crops)[..., ::-1] + 1) / 2  # BGR [0, 1]
  pasted = place.paste(frames, gen, np.array([0, 1]))
  diff = np.abs(pasted.astype(int) - frames.astype(int))
  changed = diff.max(-1) > 0
  assert changed.any() and np.percentile(diff[changed], 90) <= 3, np.percentile(diff[changed], 90)
  # Far from the face nothing changes; a generated face of another colour does show.
  assert diff[:, :20, :20].max() == 0 and diff[:, -20:, -20:].max() == 0
  dark = place.paste(frames, np.zeros_like(gen), np.array([0, 1]))
  m0 = align.align_matrices(lm)[0]
  cx, cy = np.linalg.solve(m0[:, :2], align.TEMPLATE[2] - m0[:, 2]).round().astype(int)
  assert dark[0, cy, cx].max() == 0 and frames[0, cy, cx].max() > 0
