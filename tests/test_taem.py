"""TAEM module: shapes, masks, padding invariance, length regulation, stop-gradient, jit."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from taem_jax.models import taem as taem_lib
from taem_jax.models.taem import TAEM, TAEMConfig, fit_durations, length_regulate
from taem_jax.text.phonemes import PhonemeVocab
from taem_jax.train import losses

CFG = TAEMConfig.tiny()


# Tiny models: XLA's optimisation passes cost more than they save here.
pytestmark = pytest.mark.usefixtures("fast_compile")


@pytest.fixture(scope="module")
def model():
  return TAEM(CFG, rngs=nnx.Rngs(0))


@nnx.jit(static_argnames=("max_frames", "deterministic"))
def _run(mdl, ph, m, spk, d=None, n=None, *, max_frames, deterministic=True):
  # Jitted forward: eager dispatch of many small ops is far slower than one compile per shape.
  return mdl(ph, m, spk, d, n, max_frames=max_frames, deterministic=deterministic)


_fit = jax.jit(fit_durations)


def _utt(rng, l_t, n_frames):
  """Random phonemes and durations (some zero) summing to 4 * n_frames."""
  ph = rng.integers(1, CFG.vocab_size, l_t)
  cuts = np.sort(rng.integers(0, 4 * n_frames + 1, l_t - 1))
  d = np.diff(np.concatenate([[0], cuts, [4 * n_frames]]))
  return ph, d


def _batch(utts, l_t_max, speaker):
  b = len(utts)
  ph = np.zeros((b, l_t_max), np.int32)
  d = np.zeros((b, l_t_max), np.int32)
  m = np.zeros((b, l_t_max), bool)
  for i, (p, dd) in enumerate(utts):
    ph[i, :len(p)], d[i, :len(p)], m[i, :len(p)] = p, dd, True
  return jnp.asarray(ph), jnp.asarray(m), jnp.asarray(speaker[:b]), jnp.asarray(d)


def test_shapes_odd_lengths_padded(model):
  rng = np.random.default_rng(0)
  utts = [_utt(rng, 7, 5), _utt(rng, 3, 2)]
  ph, m, spk, d = _batch(utts, 9, rng.normal(size=(2, CFG.speaker_dim)).astype(np.float32))
  out = model(ph, m, spk, d, jnp.array([5, 2]), deterministic=True)  # eager: max_frames inferred
  assert out["z"].shape == (2, 5, CFG.latent_dim)
  assert out["frame_mask"].shape == (2, 5)
  assert out["log_dur_pred"].shape == (2, 9)
  assert out["durations_used"].shape == (2, 9)
  np.testing.assert_array_equal(out["frame_mask"].sum(1), [5, 2])
  np.testing.assert_array_equal(out["durations_used"], d)  # consistent GT is used as is
  assert np.all(np.asarray(out["z"])[1, 2:] == 0)
  assert np.all(np.asarray(out["log_dur_pred"])[1, 3:] == 0)
  assert np.all(np.isfinite(out["z"]))


@pytest.mark.parametrize("teacher", [True, False])
def test_padding_invariance(model, teacher):
  rng = np.random.default_rng(1)
  spk = rng.normal(size=(3, CFG.speaker_dim)).astype(np.float32)
  a, long = _utt(rng, 5, 3), _utt(rng, 11, 9)
  pick = lambda d: d if teacher else None  # noqa: E731
  ph, m, s, d = _batch([a], 5, spk)
  alone = _run(model, ph, m, s, pick(d), jnp.array([3]), max_frames=3)
  ph, m, s, d = _batch([a, long], 11, spk)
  batched = _run(model, ph, m, s, pick(d), jnp.array([3, 9]), max_frames=9)
  ph, m, s, d = _batch([a], 16, spk)
  padded = _run(model, ph, m, s, pick(d), jnp.array([3]), max_frames=13)
  for other in (batched, padded):
    np.testing.assert_allclose(other["z"][0, :3], alone["z"][0], atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(other["log_dur_pred"][0, :5], alone["log_dur_pred"][0],
                               atol=2e-5, rtol=1e-5)
    np.testing.assert_array_equal(other["durations_used"][0, :5], alone["durations_used"][0])
    assert np.all(np.asarray(other["z"])[0, 3:] == 0)


def _np_length_regulate(x, d):
  return np.repeat(x, d, axis=0)


def test_length_regulate_matches_repeat_with_zero_durations():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(2, 6, 3)).astype(np.float32)
  d = np.array([[2, 0, 3, 1, 0, 4], [0, 0, 5, 0, 1, 0]], np.int32)
  out, mask = length_regulate(jnp.asarray(x), jnp.asarray(d), 12)
  for b in range(2):
    ref = _np_length_regulate(x[b], d[b])
    n = len(ref)
    np.testing.assert_array_equal(mask[b], np.arange(12) < n)
    np.testing.assert_allclose(out[b, :n], ref)
    assert np.all(np.asarray(out)[b, n:] == 0)
  out, mask = length_regulate(jnp.asarray(x), jnp.asarray(d), 7)  # truncation to the bucket
  np.testing.assert_allclose(out[0], _np_length_regulate(x[0], d[0])[:7])


def test_teacher_total_equals_sum_of_durations(model):
  rng = np.random.default_rng(3)
  d = np.array([[3, 0, 5, 2, 7], [1, 1, 0, 0, 0]], np.int32)  # sums 17 and 2: not multiples of 4
  m = jnp.asarray(np.array([[1] * 5, [1, 1, 1, 0, 0]], bool))
  ph = jnp.asarray(rng.integers(1, CFG.vocab_size, (2, 5)), jnp.int32)
  spk = jnp.asarray(rng.normal(size=(2, CFG.speaker_dim)), jnp.float32)
  out = _run(model, ph, m, spk, jnp.asarray(d), None, max_frames=5)
  np.testing.assert_array_equal(out["durations_used"], d)
  np.testing.assert_array_equal(out["mel_mask"].sum(1), d.sum(1))
  np.testing.assert_array_equal(out["frame_mask"].sum(1), [5, 1])  # ceil(sum / 4)
  assert out["z"].shape[1] == 5


def test_fit_durations_exact_total_and_minimum():
  rng = np.random.default_rng(4)
  for _ in range(30):
    b, l_t = 4, 16
    w = rng.exponential(5.0, (b, l_t)).astype(np.float32) * (rng.random((b, l_t)) > 0.2)
    valid = np.arange(l_t)[None] < rng.integers(1, l_t + 1, (b, 1))  # 1..16 real phonemes
    minimum = (rng.random((b, l_t)) > 0.3).astype(np.int32)
    total = rng.integers(0, 200, b)
    d = np.asarray(_fit(jnp.asarray(w), jnp.asarray(total), jnp.asarray(valid),
                        jnp.asarray(minimum)))
    np.testing.assert_array_equal(d.sum(1), total)
    assert np.all(d[~valid] == 0) and np.all(d >= 0)
    for i in range(b):
      mins = np.where(valid[i], minimum[i], 0)
      if mins.sum() <= total[i]:
        assert np.all(d[i] >= mins)
        # Each phoneme is within 1 frame of its proportional share of the rest.
        rest_w = np.maximum(np.where(valid[i], w[i], 0) - mins, 0)
        if rest_w.sum() > 0:
          share = rest_w / rest_w.sum() * (total[i] - mins.sum())
          assert np.all(np.abs(d[i] - mins - share) <= 1.0 + 1e-4)


def test_fit_durations_identity_and_zero_weights():
  d = np.array([[3, 0, 5, 2, 6, 0]], np.int32)
  valid = jnp.asarray(np.array([[1, 1, 1, 1, 1, 0]], bool))
  out = fit_durations(jnp.asarray(d, jnp.float32), jnp.array([16]), valid, jnp.zeros_like(d))
  np.testing.assert_array_equal(out, d)
  out = fit_durations(jnp.zeros((1, 6)), jnp.array([10]), valid, jnp.zeros_like(d))
  np.testing.assert_array_equal(out, [[2, 2, 2, 2, 2, 0]])


def test_inference_fits_target_and_pauses():
  cfg = TAEMConfig.tiny(pause_ids=(3,), min_duration=2)
  model = TAEM(cfg, rngs=nnx.Rngs(5))
  ph = jnp.array([[5, 3, 7, 9, 3, 4, 0], [3, 8, 8, 3, 0, 0, 0]], jnp.int32)
  m = ph != 0
  spk = jnp.ones((2, cfg.speaker_dim))
  out = _run(model, ph, m, spk, None, jnp.array([6, 3]), max_frames=6)
  used = np.asarray(out["durations_used"])
  np.testing.assert_array_equal(used.sum(1), [24, 12])
  nonpause = np.asarray(m & (ph != 3))
  assert np.all(used[nonpause] >= 2) and np.all(used[~np.asarray(m)] == 0)
  # Without a target: rounded predictions fitted to 4 * ceil(sum / 4).
  out = model(ph, m, spk, None, None, deterministic=True)  # eager: bucket = longest
  used = np.asarray(out["durations_used"])
  assert np.all(used.sum(1) % 4 == 0)
  assert out["z"].shape[1] == used.sum(1).max() // 4
  np.testing.assert_array_equal(out["frame_mask"].sum(1), used.sum(1) // 4)
  pred = np.where(np.asarray(m), np.maximum(np.expm1(np.asarray(out["log_dur_pred"])), 0), 0)
  rounded = np.maximum(np.round(pred), np.where(nonpause, 2, 0))
  np.testing.assert_array_equal(used.sum(1), 4 * np.ceil(rounded.sum(1) / 4))


def test_duration_loss_gradient_stops_at_predictor(model):
  rng = np.random.default_rng(6)
  ph, m, spk, d = _batch([_utt(rng, 6, 4), _utt(rng, 4, 2)], 6,
                         rng.normal(size=(2, CFG.speaker_dim)).astype(np.float32))

  def loss_fn(mdl):
    out = mdl(ph, m, spk, d, jnp.array([4, 2]), deterministic=True, max_frames=4)
    return losses.duration_loss(out["log_dur_pred"], d, m)

  grads = nnx.jit(nnx.grad(loss_fn))(model)
  flat = nnx.to_flat_state(grads)
  dp = [float(jnp.abs(v.get_value()).sum()) for k, v in flat if k[0] == "duration_predictor"]
  rest = [float(jnp.abs(v.get_value()).sum()) for k, v in flat if k[0] != "duration_predictor"]
  assert rest and dp
  assert all(g == 0.0 for g in rest)
  assert sum(dp) > 0.0


@pytest.mark.parametrize("kernel", [3, 4])
def test_subsampler_quarter_length(kernel):
  sub = taem_lib.Subsampler(8, 5, kernel, dtype=jnp.float32, rngs=nnx.Rngs(0))
  for l_v in (1, 2, 7, 75):  # odd, even and the paper's 3 s clip
    x = jnp.ones((2, 4 * l_v, 8))
    mask = jnp.arange(4 * l_v)[None] < jnp.array([[4 * l_v], [4 * (l_v // 2)]])
    y = sub(x, mask)
    assert y.shape == (2, l_v, 5)
    assert np.all(np.asarray(y)[1, l_v // 2:] == 0)


def test_jit_compiles_once_per_bucket():
  model = TAEM(CFG, rngs=nnx.Rngs(7))
  traces = []

  @nnx.jit(static_argnames="max_frames")
  def fwd(mdl, ph, m, spk, d, n, max_frames):
    traces.append(max_frames)
    return mdl(ph, m, spk, d, n, deterministic=True, max_frames=max_frames)["z"]

  rng = np.random.default_rng(8)
  spk = rng.normal(size=(2, CFG.speaker_dim)).astype(np.float32)
  for n1, n2 in ((5, 3), (4, 4), (2, 6)):  # same bucket (l_t 8, l_v 6), different contents
    ph, m, s, d = _batch([_utt(rng, 8, n1), _utt(rng, 5, n2)], 8, spk)
    assert fwd(model, ph, m, s, d, jnp.array([n1, n2]), 6).shape == (2, 6, CFG.latent_dim)
  assert len(traces) == 1
  ph, m, s, d = _batch([_utt(rng, 12, 9), _utt(rng, 5, 2)], 12, spk)
  fwd(model, ph, m, s, d, jnp.array([9, 2]), 10)
  assert len(traces) == 2


def test_jit_without_bucket_is_a_clear_error():
  model = TAEM(CFG, rngs=nnx.Rngs(0))
  ph = jnp.ones((1, 4), jnp.int32)

  @nnx.jit
  def fwd(mdl, ph):
    return mdl(ph, ph > 0, jnp.zeros((1, CFG.speaker_dim)), None, None, deterministic=True)

  with pytest.raises(ValueError, match="max_frames"):
    fwd(model, ph)


def test_dropout_is_active_only_when_not_deterministic():
  model = TAEM(CFG, rngs=nnx.Rngs(params=0, dropout=1))
  rng = np.random.default_rng(9)
  ph, m, s, d = _batch([_utt(rng, 6, 3)], 6, rng.normal(size=(1, CFG.speaker_dim)))
  run = lambda det: _run(model, ph, m, s, d, jnp.array([3]), max_frames=3,  # noqa: E731
                         deterministic=det)["z"]
  np.testing.assert_array_equal(run(True), run(True))
  assert not np.allclose(run(False), run(True))


def test_overfits_two_utterances():
  cfg = TAEMConfig.tiny(dropout=0.0, dp_dropout=0.0)
  model = TAEM(cfg, rngs=nnx.Rngs(10))
  rng = np.random.default_rng(11)
  ph, m, spk, d = _batch([_utt(rng, 9, 6), _utt(rng, 6, 4)], 9,
                         rng.normal(size=(2, cfg.speaker_dim)).astype(np.float32))
  n = jnp.array([6, 4])
  z_a = jnp.asarray(rng.normal(size=(2, 6, cfg.latent_dim)), jnp.float32)
  opt = nnx.Optimizer(model, optax.adamw(3e-3, b1=0.9, b2=0.98, eps=1e-8), wrt=nnx.Param)

  @nnx.jit
  def step(mdl, opt):
    def loss_fn(mdl):
      out = mdl(ph, m, spk, d, n, deterministic=True, max_frames=6)
      return losses.latent_mse(out["z"], z_a, out["frame_mask"])
    loss, grads = nnx.value_and_grad(loss_fn)(mdl)
    opt.update(mdl, grads)
    return loss

  first = float(step(model, opt))
  for _ in range(60):
    last = float(step(model, opt))
  assert last < 0.3 * first, (first, last)


def test_config_from_vocab():
  vocab = PhonemeVocab()
  cfg = TAEMConfig.from_vocab(vocab, speaker_dim=128)
  assert cfg.vocab_size == len(vocab) and cfg.speaker_dim == 128
  assert sorted(cfg.pause_ids) == sorted(vocab.encode(["sil", "sp"]))
  with pytest.raises(ValueError, match="heads"):
    TAEMConfig(hidden=30, heads=4)


def test_inference_survives_huge_predictions():
  model = TAEM(CFG, rngs=nnx.Rngs(12))
  model.duration_predictor.proj.bias[...] = jnp.full((1,), 80.0)  # exp(80) overflows float32
  ph = jnp.array([[4, 5, 6]], jnp.int32)
  out = _run(model, ph, ph > 0, jnp.zeros((1, CFG.speaker_dim)), None, jnp.array([5]),
             max_frames=5)
  np.testing.assert_array_equal(out["durations_used"].sum(), 20)
  assert np.all(np.isfinite(out["z"]))
