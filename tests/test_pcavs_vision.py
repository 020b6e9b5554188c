"""PC-AVS netV / netE: parameter counts, shapes, resampling weights, converter refusals.

Numerical parity with PyTorch is in test_porting_golden.py (goldens pcavs_V / pcavs_E) and
test_porting_parity.py (the `latest_net_V.pth` / `latest_net_E.pth` fixtures).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import porting
from porting import converter, families, torchwrite
from taem_jax.errors import UserError
from taem_jax.models import FAMILIES, PCAVSIdentityEncoder, PCAVSPoseEncoder, create
from taem_jax.models import pcavs_vision as pv


def _abstract(cls, **cfg):
  return nnx.eval_shape(lambda: cls(**cfg, rngs=nnx.Rngs(0)))


def _count(model, kind):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, kind)))


def test_identity_encoder_parameter_count():
  # torchvision resnext50_32x4d (25,028,904, incl. its 1000-way fc) + conv1x1 2048->512 +
  # the 5830-identity fc.
  want = 25_028_904 + (2048 * 512 + 512) + (2048 * 5830 + 5830)
  m = _abstract(PCAVSIdentityEncoder)
  assert _count(m, nnx.Param) == want == families.num_params("pcavs_V")
  assert len(families.official_entries("pcavs_V")) == 324  # torchvision's 320 + 4


def test_pose_encoder_parameter_count_matches_the_table():
  m = _abstract(PCAVSPoseEncoder)
  assert _count(m, nnx.Param) == families.num_params("pcavs_E")
  bn_stats = sum(2 * e.shape[0] for e in families.official_entries("pcavs_E")
                 if e.kind == "bn_mean")
  assert _count(m, nnx.BatchStat) == bn_stats
  # Heads by hand: 3 two-layer MLPs, two embeddings, two clip classifiers (clip_len 1).
  heads = (3 * (512 * 512 + 512) + (512 * 5830 + 5830) + 2 * (512 * 512 + 512)
           + (512 * 500 + 500) + (512 * 12 + 12) + (512 * 5830 + 5830) + (12 * 5830 + 5830))
  assert _count(m, nnx.Param) - _count(m.model, nnx.Param) == heads


def _shapes(model, method, *args):
  graphdef, state = nnx.split(model)
  return jax.eval_shape(lambda s, *a: getattr(nnx.merge(graphdef, s), method)(*a), state, *args)


def test_official_input_shapes():
  f32 = jnp.float32
  v = _abstract(PCAVSIdentityEncoder)
  vec, fmap, scores = _shapes(v, "__call__", jax.ShapeDtypeStruct((2, 224, 224, 3), f32))
  assert (vec.shape, fmap.shape, scores.shape) == ((2, 2048), (2, 7, 7, 512), (2, 5830))
  e = _abstract(PCAVSPoseEncoder)
  x = jax.ShapeDtypeStruct((2, 224, 224, 3), f32)
  assert _shapes(e, "features", x).shape == (2, 512)
  z = jax.ShapeDtypeStruct((2, 512), f32)
  assert _shapes(e, "embed_headpose", z).shape == (2, 12)
  assert _shapes(e, "embed_mouth", z).shape == (2, 500)
  assert _shapes(e, "mouth", z).shape == (2, 512)


def test_identity_views_are_averaged():
  m = create(PCAVSIdentityEncoder, seed=0, num_classes=7)
  m.eval()
  x = jax.random.uniform(jax.random.key(0), (4, 64, 64, 3), minval=-1.0, maxval=1.0)
  single = nnx.jit(lambda m, x: m(x))(m, x)
  pooled = nnx.jit(lambda m, x: m(x, num_inputs=2))(m, x)
  for a, b in zip(single[:2], pooled[:2]):
    want = a.reshape(2, 2, *a.shape[1:]).mean(1)
    np.testing.assert_allclose(np.asarray(b), np.asarray(want), rtol=1e-5, atol=1e-5)
  assert pooled[2].shape == (2, 7)


def test_resampling_weights_follow_torch():
  # adaptive_avg_pool 3 -> 7: bin i is [floor(3i / 7), ceil(3(i + 1) / 7)), as in torch.
  a = pv.adaptive_avg_pool_matrix(3, 7)
  assert a.shape == (7, 3)
  np.testing.assert_allclose(a.sum(1), 1.0)
  np.testing.assert_array_equal(a[0], [1, 0, 0])
  np.testing.assert_array_equal(a[2], [0.5, 0.5, 0])  # [0, 2)
  np.testing.assert_array_equal(a[3], [0, 1, 0])  # [1, 2)
  np.testing.assert_array_equal(pv.adaptive_avg_pool_matrix(7, 7), np.eye(7, dtype=np.float32))
  np.testing.assert_allclose(pv.adaptive_avg_pool_matrix(4, 2), [[.5, .5, 0, 0], [0, 0, .5, .5]])
  # bilinear 3 -> 7 (align_corners=False): src = (j + 0.5) * 3/7 - 0.5, clamped at 0.
  b = pv.bilinear_matrix(3, 7)
  np.testing.assert_allclose(b.sum(1), 1.0, rtol=1e-6)
  np.testing.assert_array_equal(b[0], [1, 0, 0])
  np.testing.assert_allclose(b[3], [0, 1, 0], atol=1e-6)
  frac = 5.5 * 3 / 7 - 0.5 - 1  # j = 5: between pixels 1 and 2
  np.testing.assert_allclose(b[5], [0, 1 - frac, frac], atol=1e-6)
  np.testing.assert_array_equal(b[6], [0, 0, 1])  # past the last centre: clamped
  np.testing.assert_allclose(pv.bilinear_matrix(2, 4)[1], [0.75, 0.25])


def test_registry_and_create():
  assert FAMILIES["pcavs_V"] is PCAVSIdentityEncoder and FAMILIES["pcavs_E"] is PCAVSPoseEncoder
  m = create("pcavs_E", seed=1)
  assert m.model.m0.b2_plus_1.conv1.bias is None  # bias-free convs stay bias-free
  assert float(jnp.abs(m.model.fc.kernel[...]).max()) > 0


@pytest.fixture(scope="module")
def sd_e():
  return families.random_state_dict("pcavs_E", seed=3)


@pytest.mark.parametrize("kind", ["wrong_family", "clip_len_5_head", "truncated", "text"])
def test_refusals(tmp_path, sd_e, kind):
  sd = dict(sd_e)
  path = tmp_path / "latest_net_E.pth"
  family = "auto"
  if kind == "wrong_family":
    torchwrite.save(sd, path, "zip")
    family, msg = "pcavs_V", r"latest_net_E\.pth is a pcavs_E checkpoint .*not pcavs_V"
  elif kind == "clip_len_5_head":
    sd["mouth_fc.1.weight"] = np.zeros((5830, 512 * 5), np.float32)
    torchwrite.save(sd, path, "legacy")
    msg = r"'mouth_fc\.1\.weight' has shape \(5830, 2560\), expected \(5830, 512\)"
  elif kind == "truncated":
    torchwrite.save(sd, path, "legacy")
    path.write_bytes(path.read_bytes()[:-5000])
    msg = r"truncated"
  else:
    path.write_text("netE weights go here\n")
    msg = r"not a PyTorch checkpoint"
  dst = tmp_path / "out"
  with pytest.raises(UserError, match=msg) as info:
    porting.convert(path, dst, family=family)
  assert "\n" not in str(info.value)
  assert not dst.exists()


def test_grouped_kernel_layout():
  sd = families.random_state_dict("pcavs_V", seed=5)
  _, params = converter.convert_state_dict(sd, "pcavs_V")
  w = sd["model.layer3.2.conv2.weight"]  # (512, 16, 3, 3): 32 groups of 16 inputs
  k = params[("model", "layer3", 2, "conv2", "kernel")]
  assert w.shape == (512, 16, 3, 3) and k.shape == (3, 3, 16, 512)
  assert k[2, 0, 15, 511] == w[511, 15, 2, 0]


def test_normalize_matches_the_family_inputs():
  u8 = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
  got = np.asarray(pv.normalize(u8))
  np.testing.assert_array_equal(got, families.pcavs_pixels(u8))
  assert got.min() >= -1.0 and got.max() <= 1.0 and got.dtype == np.float32
  np.testing.assert_array_equal(np.asarray(pv.normalize(np.array([0, 255], np.uint8))), [-1, 1])
  with pytest.raises(UserError, match="uint8 RGB frames, got float32"):
    pv.normalize(u8.astype(np.float32))
