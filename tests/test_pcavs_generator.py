"""PC-AVS netG: parameter set, noise modes, layer arithmetic, converter file round trip, refusals.

Numerical parity with the PyTorch reference is in test_porting_golden.py (committed golden) and
test_porting_parity.py (fixtures built under .venv-torch).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import porting
from porting import converter, families, torchwrite
from taem_jax import models
from taem_jax.errors import UserError
from taem_jax.models import PCAVSGenerator, load_pretrained
from taem_jax.models import pcavs_generator as pg

TINY = dict(style_dim=16, size=28, feature_encoded_dim=16, n_mlp=2)


def _count(model, kind):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(model, kind)))


def test_official_parameter_set():
  m = nnx.eval_shape(lambda: PCAVSGenerator(rngs=nnx.Rngs(0)))
  # Hand count of the official ModulateGenerator (224 px, style_dim 2560): mapping MLP
  # 8 x (2560^2 + 2560); per modulated conv: k*k*in*out + 2561*in; StyledConv +1 noise
  # weight + out biases; ToRGB + 3 biases; 7x7x512 constant input.
  d = 2560

  def styled(cin, cout, k=3):
    return k * k * cin * cout + (d + 1) * cin + 1 + cout

  def rgb(cin):
    return cin * 3 + (d + 1) * cin + 3

  ch = [512, 512, 512, 512, 256, 128]
  want = 8 * (d * d + d) + 512 * 49 + styled(512, 512) + rgb(512)
  for cin, cout in zip(ch, ch[1:]):
    want += styled(cin, cout) + styled(cout, cout) + rgb(cout)
  assert want == 89_570_205
  assert _count(m, nnx.Param) == families.num_params("pcavs_G") == want
  # 11 fixed noise maps: 7^2 + 2 * (14^2 + 28^2 + 56^2 + 112^2 + 224^2).
  assert _count(m, pg.Buffer) == 49 + 2 * sum(s * s for s in (14, 28, 56, 112, 224))
  assert len(families.official_entries("pcavs_G")) == 117
  assert m.get_config()["style_dim"] == 2560


def test_create_fills_every_array():
  m = models.create("pcavs_G", seed=1, **TINY)
  k = m.convs[1].conv.kernel[...]
  assert abs(float(jnp.std(k)) - 1.0) < 0.01 and float(m.conv1.noise.strength[0]) == 0.0
  np.testing.assert_array_equal(m.to_rgb1.conv.modulation.bias[...], 1.0)
  np.testing.assert_allclose(jnp.std(m.style[1].kernel[...]), 1.0 / 0.01, rtol=0.05)
  assert m.noises.noise_4[...].shape == (1, 28, 28, 1)


def test_full_size_shapes():
  m = nnx.eval_shape(lambda: PCAVSGenerator(rngs=nnx.Rngs(0)))
  out = nnx.eval_shape(lambda mm, s, i: mm(s, i), m,
                       jax.ShapeDtypeStruct((2, 2560), jnp.float32),
                       jax.ShapeDtypeStruct((2, 7, 7, 512), jnp.float32))
  assert (out.shape, out.dtype) == ((2, 224, 224, 3), jnp.float32)
  assert m.noise_sizes() == [7, 14, 14, 28, 28, 56, 56, 112, 112, 224, 224]


@pytest.fixture(scope="module")
def tiny():
  m = PCAVSGenerator(**TINY, rngs=nnx.Rngs(3))
  for layer in [m.conv1] + list(m.convs):  # non-zero noise strengths so noise is visible
    layer.noise.strength.set_value(jnp.full((1,), 0.2, jnp.float32))
  rng = np.random.default_rng(0)
  style = jnp.asarray(rng.standard_normal((2, 16)), jnp.float32)
  ident = jnp.asarray(rng.standard_normal((2, 7, 7, 512)), jnp.float32)
  return m, style, ident


def test_noise_modes(tiny):
  m, style, ident = tiny
  stored = m(style, ident)
  assert stored.shape == (2, 28, 28, 3)
  assert float(jnp.max(jnp.abs(stored))) <= 1.0
  np.testing.assert_array_equal(stored, m(style, ident))  # stored maps: deterministic
  key = jax.random.key(5)
  drawn = m(style, ident, rng=key)
  assert float(jnp.max(jnp.abs(drawn - stored))) > 1e-3   # the noise matters
  np.testing.assert_allclose(drawn, m(style, ident, noise=m.draw_noise(key, 2)), atol=1e-6)
  zeros = [jnp.zeros((1, s, s, 1)) for s in m.noise_sizes()]
  with pytest.raises(ValueError, match="expected 5 noise maps"):
    m(style, ident, noise=zeros[:4])
  const = jnp.broadcast_to(m.input.input[...], (2, 7, 7, 512))
  np.testing.assert_array_equal(m(style, None), m(style, const))
  # The samples of a batch are independent (per-sample modulation, no cross-talk).
  one = m(style[1:], ident[1:], noise=zeros)
  np.testing.assert_allclose(one[0], m(style, ident, noise=zeros)[1], atol=1e-5)


def test_modulated_conv_equals_per_sample_kernels(tiny):
  m, style, ident = tiny
  for layer in (m.conv1.conv, m.convs[0].conv):  # plain and upsampling
    got = layer(ident, style)
    s = layer.modulation(style)
    for b in range(2):
      w = layer.kernel[...] * layer.scale * s[b][None, None, :, None]
      w = w * jax.lax.rsqrt(jnp.sum(w * w, axis=(0, 1, 2)) + 1e-8)
      if layer.upsample:
        # Transposed conv by scattering each input pixel's k x k x out patch, then the blur.
        y = jnp.zeros((2 * 7 + 1, 2 * 7 + 1, w.shape[-1]))
        for i in range(7):
          for j in range(7):
            y = y.at[2 * i:2 * i + 3, 2 * j:2 * j + 3].add(jnp.einsum("c,hwco->hwo",
                                                                      ident[b, i, j], w))
        want = pg.upfirdn(y[None], 1, (1, 1))[0] * 4.0
      else:
        want = jax.lax.conv_general_dilated(ident[b:b + 1], w, (1, 1), ((1, 1), (1, 1)),
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
      np.testing.assert_allclose(got[b], want, atol=2e-4, rtol=1e-4)


def test_upfirdn_against_numpy():
  x = np.random.default_rng(1).standard_normal((1, 5, 6, 2)).astype(np.float32)
  k1 = np.array(pg.BLUR_TAPS) / sum(pg.BLUR_TAPS)
  k2 = np.outer(k1, k1) * 4
  up = np.zeros((1, 10, 12, 2), np.float32)
  up[:, ::2, ::2] = x
  pad = np.pad(up, ((0, 0), (2, 1), (2, 1), (0, 0)))
  want = np.zeros((1, 10, 12, 2))
  for i in range(10):
    for j in range(12):
      want[0, i, j] = np.einsum("hw,hwc->c", k2[::-1, ::-1], pad[0, i:i + 4, j:j + 4])
  np.testing.assert_allclose(pg.upfirdn(jnp.asarray(x), 2, (2, 1)), want, atol=1e-6)
  np.testing.assert_allclose(k2, families.pcavs_fir_kernel(), atol=1e-7)


def test_converter_kinds_layout():
  sd = families.random_state_dict("pcavs_G", seed=2)
  fam, params = converter.convert_state_dict(sd, "auto")
  assert fam == "pcavs_G"
  w = sd["convs.0.conv.weight"]                          # (1, O, I, 3, 3)
  k = params[("convs", 0, "conv", "kernel")]             # (3, 3, I, O)
  assert k[2, 1, 5, 7] == w[0, 7, 5, 2, 1]
  lin = params[("convs", 0, "conv", "modulation", "kernel")]
  assert lin[9, 4] == sd["convs.0.conv.modulation.weight"][4, 9]
  assert params[("to_rgbs", 4, "bias")].shape == (3,)
  n = params[("noises", "noise_9")]
  assert n.shape == (1, 224, 224, 1) and n[0, 3, 200, 0] == sd["noises.noise_9"][0, 0, 3, 200]
  assert params[("input", "input")][0, 1, 2, 3] == sd["input.input"][0, 3, 1, 2]
  assert params[("conv1", "noise", "strength")].shape == (1,)
  assert not any("kernel" in k and "blur" in k for k in map(str, params))  # FIR not stored


def test_converter_refusals():
  sd = families.random_state_dict("pcavs_G", seed=2)
  with pytest.raises(UserError, match=r"is a pcavs_G checkpoint .*not wav2lip"):
    converter.convert_state_dict(sd, "wav2lip", source="g.pth")
  bad = dict(sd, **{"convs.2.conv.blur.kernel": np.ones((4, 4), np.float32)})
  with pytest.raises(UserError, match=r"'convs\.2\.conv\.blur\.kernel' is not the standard"):
    converter.convert_state_dict(bad, "pcavs_G", source="g.pth")
  short = {k: v for k, v in sd.items() if k != "noises.noise_4"}
  with pytest.raises(UserError, match=r"missing key 'noises\.noise_4'"):
    converter.convert_state_dict(short, "auto", source="g.pth")
  # FIR buffers carry no information: a file without them still converts.
  nofir = {k: v for k, v in sd.items() if not k.endswith(("blur.kernel", "upsample.kernel"))}
  assert converter.convert_state_dict(nofir, "pcavs_G")[0] == "pcavs_G"


def test_file_round_trip_and_damaged_files(tmp_path):
  # One real file (bare state_dict, zip, as PC-AVS's save_network writes it): convert, load,
  # same arrays; then the truncated and the text-file forms are refused with one line.
  sd = families.random_state_dict("pcavs_G", seed=4)
  src = tmp_path / "latest_net_G.pth"
  torchwrite.save(sd, src, "zip")
  stats = {}
  dst = porting.convert(src, tmp_path / "ckpt", stats=stats)
  assert stats["family"] == "pcavs_G" and stats["num_params"] == 89_570_205
  model = load_pretrained(dst, family="pcavs_G")
  assert isinstance(model, PCAVSGenerator)
  np.testing.assert_array_equal(model.noises.noise_10[...][0, :, :, 0],
                                sd["noises.noise_10"][0, 0])
  np.testing.assert_array_equal(model.to_rgbs[2].conv.kernel[...][0, 0],
                                sd["to_rgbs.2.conv.weight"][0, :, :, 0, 0].T)
  trunc = tmp_path / "trunc_net_G.pth"
  trunc.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
  text = tmp_path / "text_net_G.pth"
  text.write_text("not weights\n")
  for bad, msg in ((trunc, "truncated"), (text, "not a PyTorch checkpoint")):
    with pytest.raises(UserError, match=msg) as info:
      porting.convert(bad, tmp_path / "never", family="pcavs_G")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "never").exists()
