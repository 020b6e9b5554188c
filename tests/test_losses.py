"""TAEM losses against straightforward numpy computations; task-loss gradient routing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from taem_jax.errors import UserError
from taem_jax.models.syncnet import SyncNetColor
from taem_jax.models.taem import TAEM, TAEMConfig
from taem_jax.models.targets import Backbone, Wav2LipTarget, frozen_call
from taem_jax.models.wav2lip import Wav2Lip
from taem_jax.train import losses

# Tiny models: XLA's optimisation passes cost more than they save here.
pytestmark = pytest.mark.usefixtures("fast_compile")


def _data(seed=0, b=3, t=7, d=6):
  rng = np.random.default_rng(seed)
  z_t = rng.normal(size=(b, t, d)).astype(np.float32)
  z_a = rng.normal(size=(b, t, d)).astype(np.float32)
  lens = np.array([t, 4, 1])[:b]
  mask = np.arange(t)[None] < lens[:, None]
  return z_t, z_a, mask


def test_latent_mse_matches_numpy():
  z_t, z_a, mask = _data()
  ref = np.mean(np.concatenate([((z_t[i] - z_a[i]) ** 2)[mask[i]] for i in range(3)]))
  got = losses.latent_mse(jnp.asarray(z_t), jnp.asarray(z_a), jnp.asarray(mask))
  np.testing.assert_allclose(got, ref, rtol=1e-5)
  z_t2 = z_t.copy()
  z_t2[~mask] = 1e6  # padded frames never count
  np.testing.assert_allclose(losses.latent_mse(z_t2, z_a, mask), ref, rtol=1e-5)


@pytest.mark.parametrize("log_domain", [True, False])
def test_duration_loss_matches_numpy(log_domain):
  rng = np.random.default_rng(1)
  pred = rng.normal(size=(2, 5)).astype(np.float32)
  d = rng.integers(0, 20, (2, 5))
  mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
  target = np.log(d + 1.0) if log_domain else d.astype(np.float64)
  ref = np.mean((pred - target)[mask] ** 2)
  got = losses.duration_loss(jnp.asarray(pred), jnp.asarray(d), jnp.asarray(mask),
                             log_domain=log_domain)
  np.testing.assert_allclose(got, ref, rtol=1e-5)


def _np_info_nce(z_t, z_a, mask, tau):
  q = z_t[mask] / np.linalg.norm(z_t[mask], axis=-1, keepdims=True)
  k = z_a[mask] / np.linalg.norm(z_a[mask], axis=-1, keepdims=True)
  total = 0.0
  for i in range(len(q)):
    s = k @ q[i] / tau
    total += -(s[i] - np.log(np.sum(np.exp(s))))
  return total / len(q)


def test_info_nce_matches_numpy():
  z_t, z_a, mask = _data(2)
  got = losses.info_nce(jnp.asarray(z_t), jnp.asarray(z_a), jnp.asarray(mask), 0.5)
  np.testing.assert_allclose(got, _np_info_nce(z_t, z_a, mask, 0.5), rtol=1e-5)


def test_info_nce_prefers_aligned_latents():
  z_t, z_a, mask = _data(3)
  aligned = losses.info_nce(jnp.asarray(z_a), jnp.asarray(z_a), jnp.asarray(mask), 0.1)
  perm = np.random.default_rng(0).permutation(z_a.shape[1])
  shuffled = losses.info_nce(jnp.asarray(z_a[:, perm]), jnp.asarray(z_a), jnp.asarray(mask), 0.1)
  assert float(aligned) < float(shuffled) - 0.5


def test_cosine_losses_have_finite_gradients_at_zero_latents():
  """Padded frames give zero latents (and ReLU outputs can be zero): the gradients must stay
  finite, not 0/0 (a contrastive TAEM run stopped at step 1 on a NaN grad_norm before)."""
  rs = np.random.RandomState(0)
  z_t = rs.randn(2, 6, 8).astype(np.float32)
  z_a = np.abs(rs.randn(2, 6, 8)).astype(np.float32)
  z_t[1, 4:] = 0.0
  z_a[1, 4:] = 0.0
  z_a[0, 2] = 0.0  # a valid frame whose audio latent is all zero
  mask = np.ones((2, 6), bool)
  mask[1, 4:] = False
  g = jax.grad(lambda a, b: losses.info_nce(a, b, jnp.asarray(mask), 0.1), argnums=(0, 1))(
      jnp.asarray(z_t), jnp.asarray(z_a))
  assert all(np.isfinite(np.asarray(x)).all() for x in g)
  emb = jnp.asarray(np.abs(rs.randn(4, 16)).astype(np.float32)).at[1].set(0.0)
  g = jax.grad(lambda a, v: losses.sync_loss(a, v), argnums=(0, 1))(emb, emb[::-1])
  assert all(np.isfinite(np.asarray(x)).all() for x in g)
  # Values away from zero are unchanged.
  np.testing.assert_allclose(losses.expert_similarity(emb[:1], emb[:1]), [1.0], rtol=1e-6)


def test_sync_loss_matches_torch_bce_convention():
  a = np.abs(np.random.default_rng(4).normal(size=(4, 8))).astype(np.float32)
  v = np.abs(np.random.default_rng(5).normal(size=(4, 8))).astype(np.float32)
  v[3] = 0.0
  v[3, 0], a[3] = 1.0, np.concatenate([[0.0], np.ones(7, np.float32)])  # cos = 0 -> capped 100
  cos = np.sum(a * v, 1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(v, axis=1), 1e-8)
  with np.errstate(divide="ignore"):
    ref = np.mean(np.minimum(-np.log(cos), 100.0))
  np.testing.assert_allclose(losses.sync_loss(jnp.asarray(a), jnp.asarray(v)), ref, rtol=1e-5)
  assert np.isclose(ref * 4 - np.sum(np.minimum(-np.log(cos[:3]), 100)), 100.0)
  g = jax.grad(lambda x: losses.sync_loss(x, jnp.asarray(v)))(jnp.asarray(a))
  assert np.all(np.isfinite(g))
  mask = np.array([1, 1, 0, 0], bool)
  np.testing.assert_allclose(losses.sync_loss(jnp.asarray(a), jnp.asarray(v), jnp.asarray(mask)),
                             np.mean(-np.log(cos[:2])), rtol=1e-5)


def test_take_windows():
  x = np.arange(2 * 9 * 2).reshape(2, 9, 2)
  got = losses.take_windows(jnp.asarray(x), jnp.array([1, 4]), 5)
  np.testing.assert_array_equal(got, np.stack([x[0, 1:6], x[1, 4:9]]))


def _fake_decode(z, faces):
  # A differentiable stand-in generator: mouth brightness driven by the latent.
  return jax.nn.sigmoid(faces[..., 3:] + jnp.mean(z, -1)[:, None, None, None])


def _fake_expert(mel, lower):
  audio = jnp.abs(mel.reshape(mel.shape[0], -1)[:, :8]) + 0.1
  face = jnp.abs(lower.reshape(lower.shape[0], -1)[:, :8]) + 0.1
  norm = lambda x: x / jnp.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
  return norm(audio), norm(face)


def test_task_loss_matches_numpy():
  rng = np.random.default_rng(6)
  b, w, d = 2, 5, 4
  z = rng.normal(size=(b, w, d)).astype(np.float32)
  faces = rng.random((b, w, 96, 96, 6)).astype(np.float32)
  gt = rng.random((b, w, 96, 96, 3)).astype(np.float32)
  mel = rng.normal(size=(b, 80, 16, 1)).astype(np.float32)
  wmask = np.array([True, False])
  total, aux = losses.task_loss(jnp.asarray(z), jnp.asarray(faces), jnp.asarray(gt),
                                jnp.asarray(mel), jnp.asarray(wmask), decode_fn=_fake_decode,
                                expert_fn=_fake_expert, sync_weight=0.25)
  gen = 1.0 / (1.0 + np.exp(-(faces[..., 3:] + z.mean(-1)[..., None, None, None])))
  l1 = np.mean(np.abs(gen - gt)[0])
  # Expert input for item 0: lower halves, channel index 3 t + c.
  lower = np.concatenate([gen[0, t, 48:] for t in range(w)], axis=-1)[None]
  a, v = _fake_expert(jnp.asarray(mel[:1]), jnp.asarray(lower))
  sync = -np.log(np.sum(np.asarray(a) * np.asarray(v)))
  np.testing.assert_allclose(aux["l1"], l1, rtol=1e-5)
  np.testing.assert_allclose(aux["sync"], sync, rtol=1e-4)
  np.testing.assert_allclose(total, 0.25 * sync + 0.75 * l1, rtol=1e-4)


def test_combine_selects_table2_rows():
  z_t, z_a, mask = _data(7)
  d = np.array([[2, 3, 0], [1, 1, 1], [4, 0, 0]])
  pm = d > 0
  out = dict(z=jnp.asarray(z_t), frame_mask=jnp.asarray(mask), log_dur_pred=jnp.zeros((3, 3)))
  mse = float(losses.latent_mse(z_t, z_a, mask))
  dur = float(losses.duration_loss(jnp.zeros((3, 3)), d, pm))
  nce = float(losses.info_nce(z_t, z_a, mask, 0.2))
  cases = {"mse": mse + dur, "contrastive": 2 * nce + dur, "mse+contrastive": mse + 2 * nce + dur,
           "mse+task": mse + dur + 3 * 0.7}
  for obj, ref in cases.items():
    cfg = losses.LossConfig(objective=obj, contrastive_weight=2.0, temperature=0.2, task_weight=3)
    total, metrics = losses.combine(cfg, out, jnp.asarray(z_a), jnp.asarray(d), jnp.asarray(pm),
                                    task=jnp.float32(0.7) if "task" in obj else None)
    np.testing.assert_allclose(total, ref, rtol=1e-5, err_msg=obj)
    assert ("contrastive" in metrics) == ("contrastive" in obj)
  with pytest.raises(UserError, match="objective"):
    losses.LossConfig(objective="mse+gan")
  with pytest.raises(ValueError, match="task"):
    losses.combine(losses.LossConfig(objective="mse+task"), out, z_a, d, pm)


def test_task_loss_gradient_reaches_taem_not_generator():

  gen = Wav2Lip(width=1 / 16, rngs=nnx.Rngs(0))
  target = Wav2LipTarget(gen)
  assert isinstance(target, Backbone)
  expert = SyncNetColor(width=1 / 16, rngs=nnx.Rngs(1))
  expert.eval()
  taem = TAEM(TAEMConfig.tiny(latent_dim=target.latent_dim), rngs=nnx.Rngs(2))

  rng = np.random.default_rng(8)
  b, l_t, n = 2, 5, 6
  ph = jnp.asarray(rng.integers(1, 32, (b, l_t)), jnp.int32)
  pm = jnp.ones((b, l_t), bool)
  spk = jnp.asarray(rng.normal(size=(b, 8)), jnp.float32)
  d = jnp.asarray([[4, 4, 4, 8, 4], [8, 4, 4, 4, 4]], jnp.int32)
  faces = jnp.asarray(rng.random((b, 5, 96, 96, 6)), jnp.float32)
  gt = jnp.asarray(rng.random((b, 5, 96, 96, 3)), jnp.float32)
  mel = jnp.asarray(rng.normal(size=(b, 80, 16, 1)), jnp.float32)

  # z_a from the frozen encoder has the right shape and passes no gradient back.
  z_a = target.encode(jnp.asarray(rng.normal(size=(b, n, 80, 16, 1)), jnp.float32))
  assert z_a.shape == (b, n, target.latent_dim)

  gen_def, gen_params, gen_rest = nnx.split(gen, nnx.Param, ...)
  taem_def, taem_params, taem_rest = nnx.split(taem, nnx.Param, ...)

  def loss_fn(taem_params, gen_params):
    mdl = nnx.merge(taem_def, taem_params, taem_rest)
    g = nnx.merge(gen_def, gen_params, gen_rest)
    out = mdl(ph, pm, spk, d, jnp.array([n, n]), deterministic=True, max_frames=n)
    z = losses.take_windows(out["z"], jnp.array([0, 1]), 5)
    total, _ = losses.task_loss(z, faces, gt, mel, jnp.ones((b,), bool),
                                decode_fn=frozen_call(g, "decode"), expert_fn=frozen_call(expert))
    return total

  g_taem, g_gen = jax.jit(jax.grad(loss_fn, argnums=(0, 1)))(taem_params, gen_params)
  taem_norm = sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(g_taem))
  gen_norm = sum(float(jnp.abs(x).sum()) for x in jax.tree.leaves(g_gen))
  assert taem_norm > 0.0
  assert gen_norm == 0.0
