"""Wav2Lip training in JAX: sample construction, the expert and generator tasks on
synthetic clips, export -> load_pretrained, and SIGKILL resume through experiments/train.py."""
import importlib.util
import pathlib
import random
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import trainer_helpers  # noqa: E402
from flax import nnx
from test_train_distributed import QUIET, _assert_same_params, _env  # noqa: E402

from taem_jax.data import windows
from taem_jax.data.memory import array_iterator
from taem_jax.data.synthetic import synthetic_clips
from taem_jax.errors import UserError
from taem_jax.models import load_pretrained
from taem_jax.train import checkpoint as ckpt_lib
from taem_jax.train import reporting, tasks
from taem_jax.train.tasks import wav2lip as w2l

REPO = pathlib.Path(__file__).resolve().parents[1]
TRAIN = str(REPO / "experiments" / "train.py")


# Tiny models: XLA's optimisation passes cost more than they save here.
pytestmark = pytest.mark.usefixtures("fast_compile")


def load_config(name, variant="synthetic"):
  path = REPO / "experiments" / "configs" / f"{name}.py"
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config(variant)
  c.train.async_checkpointing = False
  return c


def coded_batch(n_frames=(20, 12, 30), lv=32):
  """Clip batch whose pixels say where they came from: G = row, B = frame, R = clip."""
  b = len(n_frames)
  faces = np.zeros((b, lv, 96, 96, 3), np.uint8)
  mels = np.full((b, lv, 80, 16, 1), -4.0, np.float32)
  for i, n in enumerate(n_frames):
    for t in range(n):
      faces[i, t, :, :, 0] = t
      faces[i, t, :, :, 1] = np.arange(96)[:, None]
      faces[i, t, :, :, 2] = 100 + i
      mels[i, t] = t + 1000 * i
  return {"faces": faces, "mel_windows": mels, "n_frames": np.array(n_frames, np.int32),
          "valid": np.ones(b, bool)}


# -- sample construction ---------------------------------------------------------------------

def test_expert_samples_pair_lower_halves_with_audio_and_offset_negatives():
  batch = coded_batch()
  batch["valid"][1] = False  # a filler row of a padded eval batch
  k, m = 8, 3
  s = windows.expert_samples(batch, np.random.default_rng(0), windows_per_clip=k, min_offset=m)
  assert s["lips"].shape == (24, 5, 48, 96, 3) and s["mel"].shape == (24, 80, 16, 1)
  np.testing.assert_array_equal(s["weight"], np.repeat([1.0, 0.0, 1.0], k))
  for i in range(24):
    clip = int(s["lips"][i, 0, 0, 0, 2]) - 100
    a, f = s["audio_start"][i], s["face_start"][i]
    # lower half only: rows 48..95, frames f..f+4 of one clip, audio window a of the same clip
    np.testing.assert_array_equal(s["lips"][i, :, :, 0, 1], np.tile(np.arange(48, 96), (5, 1)))
    np.testing.assert_array_equal(s["lips"][i, :, 0, 0, 0], np.arange(f, f + 5))
    assert s["mel"][i, 0, 0, 0] == a + 1000 * clip
    assert f + 5 <= batch["n_frames"][clip] and a + 5 <= batch["n_frames"][clip]
    if s["label"][i] == 1:
      assert a == f
    else:
      assert abs(int(a) - int(f)) >= m, (a, f)
  for b in (0, 2):  # balanced labels per clip
    assert s["label"][b * k:(b + 1) * k].sum() == k // 2
  # the filler row borrowed a usable clip but weighs nothing
  assert int(s["lips"][k, 0, 0, 0, 2]) - 100 in (0, 2)


def test_expert_samples_skip_clips_too_short_for_a_negative():
  batch = coded_batch(n_frames=(7, 20))
  s = windows.expert_samples(batch, np.random.default_rng(1), windows_per_clip=2, min_offset=3)
  np.testing.assert_array_equal(s["weight"], [0, 0, 1, 1])
  with pytest.raises(UserError, match="min_offset"):
    windows.expert_samples(batch, np.random.default_rng(1), min_offset=0)


def test_generator_samples_reference_elsewhere_and_shifted_audio():
  batch = coded_batch()
  k = 16
  s = windows.generator_samples(batch, np.random.default_rng(0), windows_per_clip=k,
                                audio_shift=-1, min_ref_offset=2)
  for i in range(3 * k):
    clip = i // k
    st, r = int(s["start"][i]), int(s["ref_start"][i])
    assert abs(st - r) >= 2 and st >= 1 and st + 5 <= batch["n_frames"][clip]
    np.testing.assert_array_equal(s["window"][i, :, 0, 0, 0], np.arange(st, st + 5))
    np.testing.assert_array_equal(s["reference"][i, :, 0, 0, 0], np.arange(r, r + 5))
    assert (s["reference"][i, ..., 2] == 100 + clip).all()  # same clip
    # frame st+t hears the window of frame st+t-1; the expert hears the window's own audio
    np.testing.assert_array_equal(s["indiv_mels"][i, :, 0, 0, 0],
                                  np.arange(st - 1, st + 4) + 1000 * clip)
    assert s["mel"][i, 0, 0, 0] == st + 1000 * clip
  s0 = windows.generator_samples(batch, np.random.default_rng(0), windows_per_clip=k,
                                 audio_shift=0)
  np.testing.assert_array_equal(s0["indiv_mels"][:, 0, 0, 0, 0],
                                s0["start"] + 1000 * np.repeat(np.arange(3), k))


def test_generator_input_masks_the_lower_half():
  rs = np.random.RandomState(0)
  window = rs.randint(1, 255, (2, 5, 96, 96, 3)).astype(np.uint8)
  ref = rs.randint(0, 255, (2, 5, 96, 96, 3)).astype(np.uint8)
  for x in (windows.generator_input(window, ref),
            np.asarray(windows.generator_input(jnp.asarray(window / 255.0), jnp.asarray(ref)))):
    assert x.shape == (2, 5, 96, 96, 6)
    assert (x[..., 48:, :, :3] == 0).all()
    assert (x[..., :48, :, :3] != 0).all()
  x = windows.generator_input(window, ref)
  np.testing.assert_array_equal(x[..., :48, :, :3], window[..., :48, :, :])
  np.testing.assert_array_equal(x[..., 3:], ref)


def test_mouth_motion_separates_following_from_copying():
  """Correlation and amplitude of the lower-face motion: truth 1/1, reference copy ~0, half-way
  motion 1/0.5, motion at the wrong times ~0; invalid windows are ignored."""
  rs = np.random.RandomState(0)
  n = 6
  ref = np.full((n, 5, 96, 96, 3), 0.5, np.float32)
  gt = ref.copy()
  opening = rs.uniform(0, 1, (n, 5)).astype(np.float32)
  gt[:, :, 60:76, 30:66] -= 0.4 * opening[..., None, None, None]  # a mouth that opens darker
  gt += rs.normal(0, 0.01, gt.shape).astype(np.float32)
  mask = np.ones(n, bool)
  f = lambda g, m=mask: [float(v) for v in w2l.mouth_motion(  # noqa: E731
      jnp.asarray(g), jnp.asarray(gt), jnp.asarray(ref), jnp.asarray(m))]
  corr, amp = f(gt)
  assert corr == pytest.approx(1.0) and amp == pytest.approx(1.0)
  corr, amp = f(ref)
  assert abs(corr) < 1e-3 and amp < 1e-3
  corr, amp = f(ref + 0.5 * (gt - ref))
  assert corr == pytest.approx(1.0, abs=1e-4) and amp == pytest.approx(0.5, abs=1e-3)
  shuffled = gt[rs.permutation(n)][:, ::-1]  # moves as much, at the wrong times
  corr, amp = f(shuffled)
  assert abs(corr) < 0.5 and amp == pytest.approx(1.0, abs=0.05)
  # A window marked invalid does not count, whatever it holds.
  bad = gt.copy()
  bad[0] = 0.0
  assert f(bad, np.array([False] + [True] * (n - 1))) == pytest.approx([1.0, 1.0], abs=1e-4)


def test_generator_validation_reports_mouth_detail():
  # An untrained tiny generator on synthetic windows: every validation metric is there, and
  # mouth_detail is the generated mouth's Laplacian variance over the truth's.
  task = w2l.Wav2LipTask(generator={"width": 1 / 16}, expert={"width": 1 / 16})
  model = task.make_model(nnx.Rngs(0))
  clips = synthetic_clips(2, frames=12, seed=0)
  batch = windows.generator_samples(
      {k: clips[k] for k in ("faces", "mel_windows", "n_frames", "valid")},
      np.random.default_rng(0), windows_per_clip=1, audio_shift=0)
  m = {k: float(v) for k, v in task.eval_metrics(model, batch).items()}
  assert {"l1", "l1_lower", "mouth_corr", "mouth_amp", "mouth_detail"} <= set(m)
  assert np.isfinite(m["mouth_detail"]) and m["mouth_detail"] > 0.0, m


def test_mouth_weight_puts_the_l1_on_the_mouth_region():
  # The generator loss (no sync, no GAN) is (l1 + m * l1_mouth) / (1 + m), l1_mouth being the
  # L1 inside MOUTH_REGION only.
  clips = synthetic_clips(2, frames=12, seed=0)
  batch = windows.generator_samples(
      {k: clips[k] for k in ("faces", "mel_windows", "n_frames", "valid")},
      np.random.default_rng(0), windows_per_clip=1, audio_shift=0)
  losses_by_m = {}
  for m in (0.0, 3.0):
    task = w2l.Wav2LipTask(generator={"width": 1 / 16}, expert={"width": 1 / 16},
                           loss_config=w2l.GeneratorLossConfig(sync_threshold=-1.0,
                                                               mouth_weight=m))
    model = task.make_model(nnx.Rngs(0))
    loss, metrics = task.loss(model, batch, jax.random.key(0))
    l1, l1m = float(metrics["l1"]), float(metrics["l1_mouth"])
    assert float(loss) == pytest.approx((l1 + m * l1m) / (1 + m), rel=1e-5)
    losses_by_m[m] = float(loss)
  assert l1m != pytest.approx(l1, rel=1e-3)  # the region's error is its own number
  assert losses_by_m[3.0] != pytest.approx(losses_by_m[0.0], rel=1e-3)

  with pytest.raises(UserError, match="mouth_weight"):
    w2l.GeneratorLossConfig(mouth_weight=-1.0)


def test_augment_lips_mirrors_and_recolours_whole_pairs():
  rng = np.random.default_rng(0)
  lips = jnp.asarray(rng.uniform(0.1, 0.9, (64, 5, 48, 96, 3)), jnp.float32)
  out = np.asarray(w2l.augment_lips(lips, jax.random.key(1)))
  assert out.shape == lips.shape and out.min() >= 0.0 and out.max() <= 1.0
  x = np.asarray(lips)
  # Each pair is either mirrored or not, with one colour transform for all 5 frames: out =
  # clip(src * g_c + b) holds for exactly one orientation of src, with the same (g, b) over
  # the pair.
  flipped = 0
  for i in range(len(x)):
    fits = []
    for src in (x[i], x[i, :, :, ::-1]):
      ok = True
      for c in range(3):
        inside = (out[i, ..., c] > 0) & (out[i, ..., c] < 1)
        g, b = np.polyfit(src[..., c][inside], out[i, ..., c][inside], 1)
        ok &= bool(np.abs(np.clip(src[..., c] * g + b, 0, 1) - out[i, ..., c]).max() < 1e-4)
        ok &= bool(np.exp(-0.31) < g < np.exp(0.31))
      fits.append(ok)
    assert sum(fits) == 1, fits
    flipped += fits[1]
  assert 10 < flipped < 54  # about half the pairs are mirrored
  np.testing.assert_array_equal(out, np.asarray(w2l.augment_lips(lips, jax.random.key(1))))
  assert not np.allclose(out, np.asarray(w2l.augment_lips(lips, jax.random.key(2))))


def test_expert_augment_jitters_training_only():
  clips = synthetic_clips(4, frames=12, seed=0)
  batch = windows.expert_samples(
      {k: clips[k] for k in ("faces", "mel_windows", "n_frames", "valid")},
      np.random.default_rng(0), windows_per_clip=2)
  plain, jittered = w2l.ExpertTask(width=1 / 16), w2l.ExpertTask(width=1 / 16, augment=True)
  model = plain.make_model(nnx.Rngs(0))
  key = jax.random.key(0)
  base = float(plain.loss(model, batch, key)[0])
  assert float(plain.loss(model, batch, jax.random.key(5))[0]) == base  # key unused
  assert float(jittered.loss(model, batch, key)[0]) != pytest.approx(base, rel=1e-4)
  np.testing.assert_allclose(float(jittered.eval_metrics(model, batch)["sync_loss"]),
                             float(plain.eval_metrics(model, batch)["sync_loss"]), rtol=1e-6)


def test_window_iterator_is_deterministic_and_resumes():
  clips = synthetic_clips(8, frames=16, seed=0)
  make = lambda: windows.WindowIterator(  # noqa: E731
      array_iterator(clips, 4, seed=0),
      lambda b, r: windows.expert_samples(b, r, windows_per_clip=2), seed=5)
  a = make()
  batches = [next(a) for _ in range(5)]
  b = make()
  next(b), next(b)
  state = b.get_state()
  c = make()
  c.set_state(state)
  for want in batches[2:]:
    got = next(c)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key], err_msg=key)


# -- tasks on synthetic clips ----------------------------------------------------------------

def _run(config, workdir):
  return trainer_helpers.run(tasks.build, config, workdir)


def _mean(rec, key, steps):
  return float(np.mean([rec.steps[s][key] for s in steps]))


@pytest.mark.slow  # ~1-4 min on the shared 2-core CPU
def test_expert_loss_falls_on_synthetic_clips(tmp_path):
  config = load_config("wav2lip_expert")
  config.train.num_steps = 50
  config.train.eval_every = 50
  config.train.checkpoint_every = 0
  _, _, rec = _run(config, tmp_path)
  assert _mean(rec, "sync_loss", range(46, 51)) < _mean(rec, "sync_loss", range(1, 6)) - 0.1
  ev, ev0 = rec.evals[50], rec.evals[0]
  assert ev["sync_loss"] < ev0["sync_loss"] - 0.05, rec.evals  # held out (measured 0.80 -> 0.70)
  assert ev["cos_in_sync"] > ev["cos_off_sync"], ev  # it starts to tell pairs apart


@pytest.mark.slow
def test_expert_learns_sync_on_synthetic_clips(tmp_path):
  config = load_config("wav2lip_expert")
  config.train.num_steps = 150
  config.train.eval_every = 150
  config.train.checkpoint_every = 0
  _, _, rec = _run(config, tmp_path)
  ev = rec.evals[150]
  assert ev["sync_loss"] < 0.6, ev  # chance is ln 2 = 0.69 (measured: 0.47)
  assert ev["acc_off_sync"] > 0.6 and ev["acc_in_sync"] > 0.6, ev


@pytest.mark.slow  # ~1-4 min on the shared 2-core CPU
def test_generator_learns_and_keeps_the_expert_frozen(tmp_path):
  config = load_config("wav2lip_gen")
  config.train.num_steps = 30
  config.train.eval_every = 30
  config.train.sample_every = 30
  config.loss.sync_threshold = 100.0  # any sync loss is below it: w_sync on after step 1
  task, result, rec = _run(config, tmp_path)
  # measured: 0.204 -> 0.192 over the first 30 steps (it first learns to copy the reference)
  assert _mean(rec, "l1", range(26, 31)) < 0.97 * _mean(rec, "l1", range(1, 6))
  # Held out, BN on running averages (which lag after 30 steps): it falls, more slowly.
  assert rec.evals[30]["l1"] < rec.evals[0]["l1"], rec.evals
  assert np.isfinite(rec.evals[30]["sync"])
  # The mouth's sharpness vs the truth's is reported at validation, as a positive ratio.
  assert 0.0 < rec.evals[30]["mouth_detail"] < 10.0, rec.evals[30]
  assert rec.steps[1]["sync_weight"] == 0.0
  assert rec.steps[2]["sync_weight"] == pytest.approx(config.loss.sync_weight)
  assert float(result.model.sync_on.get_value()) == 1.0
  fresh = task.make_model(nnx.Rngs(config.seed))
  for a, b in zip(jax.tree.leaves(nnx.state(fresh.expert)),
                  jax.tree.leaves(nnx.state(result.model.expert))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # params and BN statistics
  moved = [not np.allclose(np.asarray(a), np.asarray(b)) for a, b in zip(
      jax.tree.leaves(nnx.state(fresh.generator, nnx.Param)),
      jax.tree.leaves(nnx.state(result.model.generator, nnx.Param)))]
  assert all(moved)
  grid = rec.samples[30]["windows"]
  assert grid.shape == (4, 4 * 96, 5 * 96, 3) and grid.dtype == np.uint8


@pytest.mark.slow
def test_gan_trains_generator_and_discriminator(tmp_path):
  config = load_config("wav2lip_gen", "synthetic+gan")
  assert config.loss.gan and config.optim.b1 == 0.5 and config.loss.sync_weight == 0.03
  config.train.num_steps = 3
  config.train.eval_every = 3
  config.train.checkpoint_every = 0
  task, result, rec = _run(config, tmp_path)
  assert {"adv", "disc_real", "disc_fake"} <= set(rec.steps[3])
  fresh = task.make_model(nnx.Rngs(config.seed))
  for part in ("generator", "disc"):
    a = jax.tree.leaves(nnx.state(getattr(fresh, part), nnx.Param))
    b = jax.tree.leaves(nnx.state(getattr(result.model, part), nnx.Param))
    assert all(not np.allclose(np.asarray(x), np.asarray(y)) for x, y in zip(a, b)), part
  for x, y in zip(jax.tree.leaves(nnx.state(fresh.expert)),
                  jax.tree.leaves(nnx.state(result.model.expert))):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  written = task.export(result.model, tmp_path / "export", step=3)
  assert [pathlib.Path(p).name for p in written] == ["export", "export_disc"]
  disc = load_pretrained(written[1], family="disc_qual")
  x = jnp.asarray(np.random.RandomState(0).rand(2, 96, 96, 3), jnp.float32)
  np.testing.assert_allclose(disc(x), result.model.disc(x), rtol=1e-5, atol=1e-6)


def test_export_round_trips_through_load_pretrained(tmp_path):
  rngs = nnx.Rngs(0)
  expert_task = w2l.ExpertTask(width=1 / 16)
  expert = expert_task.make_model(rngs)
  # Non-trivial BN statistics: one training-mode call updates the running averages.
  mel = jnp.asarray(np.random.RandomState(1).randn(4, 80, 16, 1), jnp.float32)
  lips = jnp.asarray(np.random.RandomState(2).rand(4, 48, 96, 15), jnp.float32)
  expert(mel, lips)
  path = expert_task.export(expert, tmp_path / "expert", step=7)[0]
  loaded = load_pretrained(path, family="syncnet_color")
  assert loaded.get_config() == {"width": 1 / 16}
  for a, b in zip(expert(mel, lips), loaded(mel, lips)):  # both in eval mode now
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)

  # The generator task loads that expert from config.expert.dir and exports its generator.
  task = w2l.Wav2LipTask(generator={"width": 1 / 16}, expert={"width": 1 / 16},
                         expert_dir=path)
  model = task.make_model(nnx.Rngs(3))
  for a, b in zip(jax.tree.leaves(nnx.state(model.expert)), jax.tree.leaves(nnx.state(loaded))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  gen_path = task.export(model, tmp_path / "gen")[0]
  gen = load_pretrained(gen_path, family="wav2lip")
  assert gen.get_config()["width"] == 1 / 16
  faces = jnp.asarray(np.random.RandomState(4).rand(2, 96, 96, 6), jnp.float32)
  np.testing.assert_allclose(gen(mel[:2], faces), model.generator(mel[:2], faces),
                             rtol=1e-5, atol=1e-6)
  # A width mismatch is one clear line.
  with pytest.raises(UserError, match="width"):
    w2l.Wav2LipTask(generator={"width": 1 / 16}, expert={"width": 1 / 8},
                    expert_dir=path).make_model(nnx.Rngs(0))
  with pytest.raises(UserError, match="expected syncnet_color"):
    w2l.Wav2LipTask(generator={"width": 1 / 16}, expert={"width": 1 / 16},
                    expert_dir=gen_path).make_model(nnx.Rngs(0))


@pytest.mark.parametrize("name", ["wav2lip_expert", "wav2lip_gen"])
@pytest.mark.parametrize("variant", [None, "grid", "sample", "tiny", "v2", "synthetic"])
def test_configs_load_and_document_their_command(name, variant):
  config = load_config(name, variant)
  assert config.task in ("expert", "wav2lip")
  assert config.data.batch_size > 0 and config.train.num_steps > 0
  doc = (REPO / "experiments" / "configs" / f"{name}.py").read_text().split('"""')[1]
  assert "experiments/train.py" in doc.split("\n\n")[1]  # the command comes first
  if variant is None:
    assert config.data.dataset == "lrs2" and config.model.width == 1.0
    assert config.optim.learning_rate == 1e-4 and config.optim.weight_decay == 0.0
  if variant == "tiny":
    assert config.data.dataset == "sample" and config.model.width == 0.125


def test_generator_without_expert_is_refused(tmp_path):
  proc = subprocess.run(
      [sys.executable, TRAIN, f"--config={REPO / 'experiments/configs/wav2lip_gen.py'}:synthetic",
       f"--workdir={tmp_path}", "--config.expert.require_pretrained=True", *QUIET],
      env=_env(), capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert "Traceback" not in proc.stderr
  assert "needs a trained lip-sync expert" in proc.stderr and "--export" in proc.stderr


# -- resume after SIGKILL, through the CLI ---------------------------------------------------

GEN_SYNTH = f"--config={REPO / 'experiments/configs/wav2lip_gen.py'}:synthetic"
STEPS = 20
RESUME_FLAGS = [f"--steps={STEPS}", "--config.train.log_every=1",
                "--config.train.checkpoint_every=4", "--config.train.eval_every=0"]


def _cli(workdir, *extra, timeout=300):
  proc = subprocess.run([sys.executable, TRAIN, GEN_SYNTH, f"--workdir={workdir}", *QUIET,
                         *RESUME_FLAGS, *extra], env=_env(), capture_output=True, text=True,
                        timeout=timeout)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


@pytest.mark.slow
def test_generator_resumes_after_sigkill_and_exports(tmp_path):
  ref = tmp_path / "reference"
  out = _cli(ref, f"--export={tmp_path / 'export'}")
  assert "exported" in out.stdout
  ref_steps = reporting.read_jsonl(ref / "metrics.jsonl", kind="train")
  gen = load_pretrained(tmp_path / "export", family="wav2lip")
  assert gen.get_config()["width"] == 1 / 16

  kill_at = random.Random().randint(3, STEPS - 5)
  wd = tmp_path / "killed"
  saved = trainer_helpers.kill_at_step(
      [sys.executable, TRAIN, GEN_SYNTH, f"--workdir={wd}", *QUIET, *RESUME_FLAGS], _env(), wd,
      kill_at, STEPS, timeout=240)
  log = wd / "metrics.jsonl"

  out = _cli(wd)
  assert f"started from {'checkpoint@' + str(saved) if saved else 'scratch'}" in out.stdout
  recs = reporting.read_jsonl(log, kind="train")
  assert [r["step"] for r in recs] == list(range(1, STEPS + 1)), (kill_at, saved)
  for r, want in zip(recs, ref_steps):  # same windows, same losses, step by step
    for key in ("l1", "sync", "loss"):
      np.testing.assert_allclose(r[key], want[key], rtol=2e-4, err_msg=f"{key}@{r['step']}")
  a, _ = ckpt_lib.load_arrays(wd / "checkpoints")
  b, _ = ckpt_lib.load_arrays(ref / "checkpoints")
  _assert_same_params(a, b, rtol=1e-4, atol=1e-5)
