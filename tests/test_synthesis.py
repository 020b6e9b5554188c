"""Synthesis engine: text/audio on a face image or video -> mp4, streaming, and every bad input.

Models are tiny random-weight checkpoints made here (Wav2Lip width 1/16 -> 32-d latent, a tiny
TAEM); faces are real photos shipped in installed packages (skimage's astronaut); audio is
numpy tones. Each bad input checks the one-line message and that the output folder holds no
file afterwards (no partial or temporary output).
"""
import csv
import dataclasses
import importlib.util
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import soundfile as sf
from flax import nnx

from taem_jax import audio, models, paths, synthesis, video
from taem_jax.cli import synthesize as synthesize_cli
from taem_jax.data.sample import portraits
from taem_jax.errors import UserError
from taem_jax.face import FaceDetector, SpeakerEmbedder
from taem_jax.models import pretrained, taem_checkpoint
from taem_jax.models.taem import TAEM, TAEMConfig
from taem_jax.synthesis import runner
from taem_jax.text import PhonemeVocab, g2p
from taem_jax.train import losses
from taem_jax.train.tasks import taem as taem_tasks

REPO = pathlib.Path(__file__).resolve().parents[1]
W2L_WIDTH = 1 / 16  # latent 32
OPTS = synthesis.Options(batch_size=8, detect_stride=1)


# Tiny models: XLA's optimisation passes cost more than they save here.
pytestmark = pytest.mark.usefixtures("fast_compile")


def _tiny_taem(vocab, speaker_dim=128, latent_dim=32, seed=0):
  cfg = TAEMConfig.from_vocab(vocab, hidden=32, latent_dim=latent_dim, speaker_dim=speaker_dim,
                              encoder_layers=1, refiner_layers=1, heads=2, ffn_filter=64,
                              ffn_kernels=(3, 1), dp_filter=32)
  return TAEM(cfg, rngs=nnx.Rngs(seed))


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
  root = tmp_path_factory.mktemp("ckpt")
  w2l = models.create("wav2lip", seed=0, width=W2L_WIDTH)
  pretrained.save_pretrained(w2l, root / "wav2lip", family="wav2lip", config=w2l.get_config())
  vocab = PhonemeVocab()
  dlib_desc = SpeakerEmbedder("dlib").describe()
  taem_checkpoint.save_taem(_tiny_taem(vocab), root / "taem", vocab=vocab,
                            speaker_embedding=dlib_desc)
  # Another phoneme set (IPA-like symbols the text front end never writes).
  ipa = PhonemeVocab(symbols=["<pad>", "<unk>", "sil", "sp"] + list("abdefhijklmnoprstuvwz"))
  taem_checkpoint.save_taem(_tiny_taem(ipa), root / "taem_ipa", vocab=ipa,
                            speaker_embedding=dlib_desc)
  # Trained on ArcFace embeddings (no ArcFace ONNX exists on this machine).
  taem_checkpoint.save_taem(_tiny_taem(vocab, speaker_dim=512), root / "taem_arcface",
                            vocab=vocab, speaker_embedding={"kind": "arcface", "dim": 512})
  # dlib embeddings, but from another descriptor file.
  other = dict(dlib_desc, sha256="0" * 64)
  taem_checkpoint.save_taem(_tiny_taem(vocab), root / "taem_other_dlib", vocab=vocab,
                            speaker_embedding=other)
  # For a Wav2Lip with another latent width.
  taem_checkpoint.save_taem(_tiny_taem(vocab, latent_dim=64), root / "taem_latent64",
                            vocab=vocab, speaker_embedding=dlib_desc)
  return root


@pytest.fixture(scope="module")
def synth(ckpts):
  return synthesis.Synthesizer(ckpts / "wav2lip", ckpts / "taem", options=OPTS)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
  """A portrait (png), a 12-frame face video, one with faceless frames, one without faces."""
  root = tmp_path_factory.mktemp("media")
  portrait = portraits.make_portraits(1, 160, np.random.default_rng(0), FaceDetector())[0]
  img = portrait.image
  cv2.imwrite(str(root / "face.png"), img)
  # A moving face: small shifts, so frames differ (ping-pong order is visible).
  frames = np.stack([np.roll(img, (k % 4) - 2, axis=1) for k in range(12)])
  for k in range(12):
    frames[k, :16, :16] = 20 * k  # a frame counter in the corner (outside the face)
  video.write_video(root / "face.mp4", frames, 25)
  partly = frames.copy()
  partly[4:7] = 127  # three grey frames: no face
  video.write_video(root / "partly.mp4", partly, 25)
  video.write_video(root / "noface.mp4", np.full((6, 96, 96, 3), 127, np.uint8), 25)
  cv2.imwrite(str(root / "blank.png"), np.full((120, 120, 3), 200, np.uint8))
  (root / "garbage.png").write_bytes(b"this is not an image")
  (root / "notavideo.mp4").write_text("plain text renamed to .mp4\n" * 50)
  # Audio: a voiced tone (0.8 s) at several rates and layouts.
  for name, sr, ch in (("a16k", 16000, 1), ("a8k", 8000, 1), ("a44k", 44100, 1),
                       ("a48k_stereo", 48000, 2)):
    t = np.arange(int(0.8 * sr)) / sr
    y = 0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    sf.write(str(root / f"{name}.wav"), np.stack([y] * ch, -1) if ch > 1 else y, sr)
  t = np.arange(int(1.5 * 16000)) / 16000  # longer than the 12-frame (0.48 s) video
  sf.write(str(root / "long.wav"), 0.3 * np.sin(2 * np.pi * 200 * t), 16000)
  sf.write(str(root / "silent.wav"), np.zeros(16000, np.float32), 16000)
  sf.write(str(root / "nosamples.wav"), np.zeros(0, np.float32), 16000)
  (root / "empty.wav").write_bytes(b"")
  return root


@pytest.fixture
def outdir(tmp_path):
  d = tmp_path / "out"
  d.mkdir()
  return d


def _assert_clean(folder):
  left = sorted(p.name for p in pathlib.Path(folder).iterdir())
  assert left == [], f"files left behind: {left}"


def _fails(fn, match, folder):
  with pytest.raises(UserError, match=match) as e:
    fn()
  msg = str(e.value)
  assert "\n" not in msg and len(msg) < 400, msg
  _assert_clean(folder)
  return msg


def _frames(path):
  return np.concatenate(list(video.iter_frames(path)))


def _n_out(wav, fps=25):
  """Frames that cover the whole speech: ceil(duration * fps)."""
  return audio.speech_frames(len(audio.load_audio(wav)), fps)


# -- pure helpers -----------------------------------------------------------------------------

def test_frame_schedule_cuts_and_ping_pongs():
  np.testing.assert_array_equal(synthesis.frame_schedule(10, 4, 25, 25),
                                [0, 1, 2, 3, 2, 1, 0, 1, 2, 3])
  np.testing.assert_array_equal(synthesis.frame_schedule(3, 8, 25, 25), [0, 1, 2])
  np.testing.assert_array_equal(synthesis.frame_schedule(4, 1, 25, None), [0, 0, 0, 0])
  # 50 fps source shown at 25 fps: every other frame, then back.
  np.testing.assert_array_equal(synthesis.frame_schedule(6, 5, 25, 50), [0, 2, 4, 2, 0, 2])


def test_split_chunks_at_pauses():
  words = g2p.g2p_words("Bin blue. Set red now, please. Go.")
  chunks = synthesis.split_chunks(words, max_phonemes=100)
  assert [w for c in chunks for w in c] == words  # nothing lost, nothing doubled
  assert len(chunks) == 3 and all(c[0].phonemes == ("sil",) for c in chunks)
  small = synthesis.split_chunks(words, max_phonemes=6)
  assert [w for c in small for w in c] == words and len(small) > 3
  assert all(sum(len(w.phonemes) for w in c) <= 7 for c in small)


def test_iter_frames_start_seeks_exactly(media):
  allf = _frames(media / "face.mp4")
  for start in (1, 5, 11):
    got = np.concatenate(list(video.iter_frames(media / "face.mp4", chunk=4, start=start)))
    np.testing.assert_array_equal(got, allf[start:])
  assert list(video.iter_frames(media / "face.mp4", start=12)) == []


# -- audio path ---------------------------------------------------------------------------------

def test_audio_on_image(synth, media, outdir):
  res = synth.synthesize(media / "face.png", outdir / "o.mp4", audio=media / "a16k.wav")
  info = video.probe(outdir / "o.mp4")
  assert res.frames == info.n_frames == _n_out(media / "a16k.wav") and info.fps == 25
  assert info.video_codec == "h264" and info.audio_codec == "aac"
  assert (info.width, info.height) == (160, 160) and res.faceless_frames == 0
  out = _frames(outdir / "o.mp4")
  src = cv2.imread(str(media / "face.png"))
  diff = np.abs(out.astype(int) - src[None].astype(int)).mean(-1)  # (T, H, W)
  # Random weights change the lower face; the corners stay the photo.
  assert diff[:, :10, :10].mean() < 4 and diff.mean() > 2


@pytest.mark.parametrize("name", ["a8k", "a44k", "a48k_stereo"])
def test_audio_rates_and_stereo(synth, media, outdir, name):
  res = synth.synthesize(media / "face.png", outdir / "o.mp4", audio=media / f"{name}.wav")
  assert res.frames == _n_out(media / "a16k.wav")  # same duration, any rate or layout
  assert video.probe(outdir / "o.mp4").audio_codec == "aac"


def test_audio_longer_than_video_loops_ping_pong(ckpts, media, outdir):
  # Backward runs are read in blocks of 5 frames here (several seeks per run).
  small_blocks = dataclasses.replace(OPTS, block_bytes=160 * 160 * 3 * 5)
  synth = synthesis.Synthesizer(ckpts / "wav2lip", options=small_blocks)
  res = synth.synthesize(media / "face.mp4", outdir / "o.mp4", audio=media / "long.wav")
  assert res.looped and res.source_frames == 12
  n = _n_out(media / "long.wav")  # 1.5 s: about 37 frames
  assert res.frames == video.probe(outdir / "o.mp4").n_frames == n > 24
  out = _frames(outdir / "o.mp4")
  # Corners are not generated: they follow the source frames 0..11, 10..0, 1..
  src = _frames(media / "face.mp4")
  sched = synthesis.frame_schedule(n, 12, 25, 25)
  corner = lambda a: a[..., :12, :12, :].astype(float)  # noqa: E731
  err = np.abs(corner(out) - corner(src[sched])).mean()
  wrong = np.abs(corner(out) - corner(src[np.arange(n) % 12])).mean()
  assert err < 3 and wrong > err + 1


@pytest.mark.parametrize("fps,seconds", [(25, 3.10), (29.97, 1.03), (30, 2.0)])
def test_output_keeps_the_whole_speech(synth, media, outdir, fps, seconds):
  """The video is as long as the speech (within a frame) and the audio track is all of it."""
  face = outdir.parent / f"face_{fps}.mp4"
  frames = _frames(media / "face.mp4")
  video.write_video(face, frames, fps)
  sr = 16000
  t = np.arange(int(round(seconds * sr))) / sr
  wav = 0.3 * np.sin(2 * np.pi * 150 * t)
  wav[t >= seconds - 0.12] = 0.3 * np.sin(2 * np.pi * 1000 * t[t >= seconds - 0.12])  # end mark
  sf.write(str(outdir.parent / "speech.wav"), wav, sr)
  res = synth.synthesize(face, outdir / "o.mp4", audio=outdir.parent / "speech.wav")
  info = video.probe(outdir / "o.mp4")
  assert res.frames == info.n_frames and abs(info.fps - fps) < 0.01
  assert abs(res.frames / fps - seconds) <= 1 / fps + 1e-6
  assert res.frames >= seconds * fps - 1e-6  # never shorter than the speech
  track = video.extract_audio(outdir / "o.mp4")
  assert len(track) >= len(wav) - 0.005 * sr  # AAC priming aside, every sample is there
  # The end mark (a 1 kHz tone in the last 0.12 s) survived: the speech was not cut.
  tail = track[int((seconds - 0.10) * sr):int((seconds - 0.02) * sr)]
  spec = np.abs(np.fft.rfft(tail))
  freqs = np.fft.rfftfreq(len(tail), 1 / sr)
  assert abs(freqs[spec.argmax()] - 1000) < 30


def test_video_longer_than_audio_is_cut(synth, media, outdir):
  wav = (0.3 * np.sin(2 * np.pi * 150 * np.arange(4000) / 16000)).astype(np.float32)
  res = synth.synthesize(media / "face.mp4", outdir / "o.mp4", audio=wav)  # 0.25 s
  assert not res.looped and res.frames == video.probe(outdir / "o.mp4").n_frames == _n_out(wav)
  assert res.frames < 12


def test_faceless_frames_pass_through(synth, media, outdir):
  res = synth.synthesize(media / "partly.mp4", outdir / "o.mp4", audio=media / "a16k.wav")
  n = _n_out(media / "a16k.wav")
  sched = synthesis.frame_schedule(n, 12, 25, 25)
  assert res.frames == n and res.faceless_frames == np.isin(sched, [4, 5, 6]).sum() >= 3
  out = _frames(outdir / "o.mp4")
  np.testing.assert_allclose(out[4:7].astype(float), 127, atol=3)  # untouched grey
  src = _frames(media / "partly.mp4")
  assert np.abs(out[:4].astype(int) - src[:4].astype(int)).mean() > 2  # generated


# -- text path ----------------------------------------------------------------------------------

def test_text_silent_and_with_speech(synth, media, outdir):
  res = synth.synthesize(media / "face.png", outdir / "silent.mp4", text="Bin blue at F two now.")
  info = video.probe(outdir / "silent.mp4")
  assert res.fps == 25 and info.n_frames == res.frames > 3 and info.audio_codec == "aac"
  assert audio.is_silent(video.extract_audio(outdir / "silent.mp4"))
  res2 = synth.synthesize(media / "face.mp4", outdir / "speech.mp4",
                          text="Bin blue at F two now.", speech=True)
  assert res2.frames == res.frames  # same text and speaker model -> same durations
  wav = video.extract_audio(outdir / "speech.mp4")
  assert not audio.is_silent(wav)
  assert abs(len(wav) / 16000 - res2.frames / 25) < 0.05


def test_text_with_digits_symbols_and_accents(synth, media, outdir):
  res = synth.synthesize(media / "face.png", outdir / "o.mp4",
                         text="Zoë paid $5.50 at 3:30 — 100% naïve! Café #2 (in Köln).")
  assert res.frames > 10


@pytest.mark.slow
def test_long_text_is_split_into_chunks(ckpts, media, outdir):
  s = synthesis.Synthesizer(ckpts / "wav2lip", ckpts / "taem",
                            options=synthesis.Options(batch_size=8, max_chunk_phonemes=12))
  res = s.synthesize(media / "face.png", outdir / "o.mp4",
                     text="Place red by G nine again, set white with P four please. Lay green.")
  assert res.frames == video.probe(outdir / "o.mp4").n_frames


# -- bad inputs: one line, nothing written -----------------------------------------------------

def test_bad_face_inputs(synth, media, outdir, tmp_path):
  out = outdir / "o.mp4"
  a = media / "a16k.wav"
  _fails(lambda: synth.synthesize(tmp_path / "missing.png", out, audio=a), "face file not found",
         outdir)
  _fails(lambda: synth.synthesize(media / "garbage.png", out, audio=a), "cannot read .* image",
         outdir)
  _fails(lambda: synth.synthesize(media / "blank.png", out, audio=a), "no face found", outdir)
  _fails(lambda: synth.synthesize(media / "noface.mp4", out, audio=a),
         "no face found in any of the 6 frame", outdir)
  _fails(lambda: synth.synthesize(media / "notavideo.mp4", out, audio=a),
         "cannot read .* as a video", outdir)
  (tmp_path / "empty.mp4").write_bytes(b"")
  _fails(lambda: synth.synthesize(tmp_path / "empty.mp4", out, audio=a), "empty", outdir)


def test_bad_text(synth, media, outdir):
  out = outdir / "o.mp4"
  _fails(lambda: synth.synthesize(media / "face.png", out, text=""), "empty text", outdir)
  _fails(lambda: synth.synthesize(media / "face.png", out, text="   \n"), "empty text", outdir)
  _fails(lambda: synth.synthesize(media / "face.png", out, text="?!... ,;: --"),
         "no pronounceable words", outdir)
  _fails(lambda: synth.synthesize(media / "face.png", out, text="你好，世界"),
         "no pronounceable words", outdir)


def test_bad_audio(synth, media, outdir, tmp_path):
  out = outdir / "o.mp4"
  face = media / "face.png"
  _fails(lambda: synth.synthesize(face, out, audio=media / "silent.wav"), "silent", outdir)
  _fails(lambda: synth.synthesize(face, out, audio=media / "empty.wav"), "empty", outdir)
  _fails(lambda: synth.synthesize(face, out, audio=media / "nosamples.wav"), "no audio samples",
         outdir)
  _fails(lambda: synth.synthesize(face, out, audio=tmp_path / "nope.wav"), "not found", outdir)
  _fails(lambda: synth.synthesize(face, out, audio=media / "garbage.png"), "cannot decode audio",
         outdir)


def test_bad_output_paths(synth, media, tmp_path):
  a = media / "a16k.wav"
  with pytest.raises(UserError, match="output folder does not exist"):
    synth.synthesize(media / "face.png", tmp_path / "no" / "such" / "o.mp4", audio=a)
  assert not (tmp_path / "no").exists()
  (tmp_path / "afile").write_text("x")
  with pytest.raises(UserError, match="not a folder"):
    synth.synthesize(media / "face.png", tmp_path / "afile" / "o.mp4", audio=a)
  with pytest.raises(UserError, match=r"must be an \.mp4"):
    synth.synthesize(media / "face.png", tmp_path / "o.avi", audio=a)
  ro = pathlib.Path("/proc/taem_jax_test.mp4")  # a folder nobody (not even root) can write
  with pytest.raises(UserError, match="cannot write to output folder /proc"):
    synth.synthesize(media / "face.png", ro, audio=a)
  locked = tmp_path / "locked"
  locked.mkdir()
  locked.chmod(0o500)
  try:
    if os.access(locked, os.W_OK):
      pytest.skip("running as root: permission bits are not enforced")
    with pytest.raises(UserError, match="cannot write to output folder"):
      synth.synthesize(media / "face.png", locked / "o.mp4", audio=a)
    _assert_clean(locked)
  finally:
    locked.chmod(0o700)


def test_error_during_render_leaves_nothing(synth, media, outdir, monkeypatch):
  def boom(*a, **k):
    raise UserError("simulated failure half-way")
  calls = {"n": 0}
  real = runner.run_batched

  def flaky(*a, **k):
    calls["n"] += 1
    if calls["n"] == 2:
      boom()
    return real(*a, **k)
  monkeypatch.setattr(runner, "run_batched", flaky)
  _fails(lambda: synth.synthesize(media / "face.png", outdir / "o.mp4",
                                  audio=media / "a16k.wav"), "half-way", outdir)
  assert calls["n"] == 2


def test_bad_checkpoints(ckpts):
  w2l, taem = ckpts / "wav2lip", ckpts / "taem"
  cases = [
      ((taem, taem), "holds a taem checkpoint, expected wav2lip"),
      ((w2l, w2l), "holds a wav2lip checkpoint, expected a TAEM checkpoint"),
      ((w2l, ckpts / "taem_ipa"), "another phoneme vocabulary"),
      ((w2l, ckpts / "taem_arcface"), "ArcFace ONNX file not found"),
      ((w2l, ckpts / "taem_other_dlib"), "use the same model file"),
      ((w2l, ckpts / "taem_latent64"), "64-d audio latent but the Wav2Lip checkpoint has 32-d"),
      ((ckpts / "missing", taem), "checkpoint directory not found"),
  ]
  for (a, b), match in cases:
    with pytest.raises(UserError, match=match) as e:
      synthesis.Synthesizer(a, b, options=OPTS)
    assert "\n" not in str(e.value)


def test_text_without_taem(ckpts, media, outdir):
  audio_only = synthesis.Synthesizer(ckpts / "wav2lip", options=OPTS)
  _fails(lambda: audio_only.synthesize(media / "face.png", outdir / "o.mp4", text="Hi."),
         "needs a TAEM checkpoint", outdir)


@pytest.mark.slow
def test_stress_vocab_checkpoint_works(ckpts, media, outdir, tmp_path):
  vocab = PhonemeVocab(stress=True)  # another ARPAbet spelling is fine: the front end follows it
  taem_checkpoint.save_taem(_tiny_taem(vocab), tmp_path / "taem_stress", vocab=vocab,
                            speaker_embedding=SpeakerEmbedder("dlib").describe())
  s = synthesis.Synthesizer(ckpts / "wav2lip", tmp_path / "taem_stress", options=OPTS)
  assert s.synthesize(media / "face.png", outdir / "o.mp4", text="Go now.").frames > 0


def test_taem_checkpoint_records(ckpts, tmp_path):
  model, info = taem_checkpoint.load_taem(ckpts / "taem")
  assert isinstance(model, TAEM) and info.vocab == PhonemeVocab()
  assert info.speaker_embedding["kind"] == "dlib" and info.target["latent_dim"] == 32
  meta = json.loads((ckpts / "taem" / "taem_jax.json").read_text())
  assert meta["family"] == "taem" and meta["config"]["pause_ids"] == [2, 3]
  # A sidecar whose vocabulary does not fit the model is refused.
  bad = tmp_path / "bad"
  shutil.copytree(ckpts / "taem", bad)
  meta["vocab"]["symbols"] = meta["vocab"]["symbols"][:-1]
  (bad / "taem_jax.json").write_text(json.dumps(meta))
  with pytest.raises(UserError, match="inconsistent"):
    taem_checkpoint.load_taem(bad)


# -- CLI ----------------------------------------------------------------------------------------

def _cli(*args, cwd=None):
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
             JAX_DISABLE_MOST_OPTIMIZATIONS="1")  # tiny models: compile fast
  return subprocess.run([sys.executable, str(REPO / "experiments" / "synthesize.py"), *args],
                        capture_output=True, text=True, cwd=cwd, env=env, timeout=600,
                        check=False)


def test_cli_single_job_errors_are_one_line(ckpts, media, outdir):
  r = _cli("--face", str(media / "missing.png"), "--audio", str(media / "a16k.wav"),
           "--wav2lip", str(ckpts / "wav2lip"), "--out", str(outdir / "o.mp4"))
  assert r.returncode == 2, r.stderr
  assert r.stderr.strip().splitlines() == [f"error: face file not found: {media}/missing.png"]
  _assert_clean(outdir)
  r = _cli("--face", str(media / "face.png"), "--text", "Hi.",
           "--wav2lip", str(ckpts / "wav2lip"), "--out", str(outdir / "o.mp4"))
  assert r.returncode == 2
  assert r.stderr.strip().splitlines() == [
      "error: text input needs a TAEM checkpoint: add --taem DIR (or use --audio)"]


@pytest.mark.slow
def test_cli_batch_good_and_bad_rows(ckpts, media, outdir):
  rows = [
      ("face", "text", "audio", "out"),
      (str(media / "face.png"), "", str(media / "a16k.wav"), "good.mp4"),
      (str(media / "face.png"), "Bin blue now.", "", "good_text.mp4"),
      (str(media / "notavideo.mp4"), "", str(media / "a16k.wav"), "bad1.mp4"),
      (str(media / "face.png"), "", str(media / "silent.wav"), "bad2.mp4"),
      (str(media / "face.png"), "?!", "", "bad3.mp4"),
      (str(media / "noface.mp4"), "Hello.", "", "bad4.mp4"),
      (str(media / "face.png"), "", str(media / "a16k.wav"), "missing/bad5.mp4"),
  ]
  with open(outdir / "jobs.csv", "w", newline="") as f:
    csv.writer(f).writerows(rows)
  r = _cli("--batch", str(outdir / "jobs.csv"), "--wav2lip", str(ckpts / "wav2lip"),
           "--taem", str(ckpts / "taem"), "--batch_size", "8", "--no_progress")
  assert r.returncode == 2, r.stderr
  errors = r.stderr.strip().splitlines()
  assert len(errors) == 6, r.stderr
  for line, expected in zip(errors, ["row 4: cannot read", "row 5: audio", "row 6: no pron",
                                     "row 7: no face found", "row 8: output folder does not"]):
    assert line.startswith("error: " + expected), line
  assert errors[-1] == "error: 5 of 7 jobs failed (see the lines above)"
  assert sorted(p.name for p in outdir.iterdir()) == ["good.mp4", "good_text.mp4", "jobs.csv"]
  assert "wrote" in r.stdout and video.probe(outdir / "good_text.mp4").fps == 25


def test_cli_help_example_runs_on_the_demo_models(media, tmp_path):
  """--help's first example, exactly as written, with the committed demo models (no flags)."""
  r = _cli("--help")
  assert r.returncode == 0, r.stderr
  example = next(ln.strip() for ln in r.stdout.splitlines()
                 if ln.strip().startswith("taem-synthesize "))
  args = shlex.split(example)[1:]
  assert "--wav2lip" not in args and "--taem" not in args, example
  face, out = args[args.index("--face") + 1], args[args.index("--out") + 1]
  cv2.imwrite(str(tmp_path / face), cv2.imread(str(media / "face.png")))  # the user's photo
  r = _cli(*args, cwd=tmp_path)
  assert r.returncode == 0, r.stderr[-3000:]
  notes = [ln for ln in r.stderr.splitlines() if "demo-scale models" in ln]
  assert len(notes) == 1 and "generated sample corpus" in notes[0], r.stderr[-3000:]
  info = video.probe(tmp_path / out)
  assert info.fps == 25 and info.n_frames > 5 and info.audio_codec == "aac"
  assert f"wrote {out} (" in r.stdout


def test_cli_without_demo_models_says_what_to_pass(media, outdir, tmp_path, monkeypatch, capsys):
  monkeypatch.setenv("TAEM_XLA_DEFAULTS", "0")  # leave this process's XLA_FLAGS alone
  monkeypatch.setattr(paths, "DEMO_DIR", tmp_path / "no_demo")
  job = ["--face", str(media / "face.png"), "--text", "Hi.", "--out", str(outdir / "o.mp4")]
  for extra, msg in (([], "pass --wav2lip DIR and --taem DIR"),
                     (["--taem", str(tmp_path)], "--taem needs the Wav2Lip checkpoint")):
    with pytest.raises(SystemExit) as e:
      synthesize_cli.main(job + extra)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and msg in err[0], err
  _assert_clean(outdir)


def test_taem_task_export_is_a_directory_synthesis_reads(tmp_path):
  """A training task's TAEM + its dataset's vocabulary and embedder -> a TAEM directory."""
  spec = importlib.util.spec_from_file_location("cfg_sample", REPO / "experiments" / "configs" /
                                                "sample.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  config = mod.get_config("tiny")
  vocab = PhonemeVocab()
  cfg = taem_tasks.taem_config_from(config, vocab=vocab, speaker_dim=128)
  task = taem_tasks.TAEMTask(cfg, losses.LossConfig(objective=config.loss.objective), None,
                             vocab, {"kind": "dlib", "dim": 128})
  model = task.make_model(nnx.Rngs(3))
  task.export(model, tmp_path / "taem", step=7)
  loaded, info = taem_checkpoint.load_taem(tmp_path / "taem")
  assert info.vocab == vocab and info.speaker_embedding == {"kind": "dlib", "dim": 128}
  assert info.training == {"objective": config.loss.objective, "step": 7}  # Table 2 row name
  assert loaded.config == cfg
  a = nnx.to_flat_state(nnx.state(model.taem, nnx.Param))
  b = dict(nnx.to_flat_state(nnx.state(loaded, nnx.Param)))
  for k, v in a:
    np.testing.assert_array_equal(np.asarray(v[...]), np.asarray(b[k][...]), err_msg=str(k))


# -- face-track cache ---------------------------------------------------------------------------

def _counting_detector(synth):
  """Counts the detector's calls on `synth` (the cache must make the second run call none)."""
  det = synth.detector
  calls = []
  original = det.detect

  def detect(frame, *a, **k):
    calls.append(1)
    return original(frame, *a, **k)
  det.detect = detect
  return calls, lambda: setattr(det, "detect", original)


def test_track_cache_reuses_a_video_track(ckpts, media, outdir, tmp_path, monkeypatch):
  monkeypatch.setenv("TAEM_JAX_HOME", str(tmp_path / "home"))
  synth = synthesis.Synthesizer(ckpts / "wav2lip", options=OPTS)
  calls, restore = _counting_detector(synth)
  try:
    synth.synthesize(media / "face.mp4", outdir / "a.mp4", audio=media / "a16k.wav")
    first = len(calls)
    entries = list((tmp_path / "home" / "tracks").glob("*.npz"))
    assert first > 0 and len(entries) == 1
    synth.synthesize(media / "face.mp4", outdir / "b.mp4", audio=media / "a44k.wav")
    assert len(calls) == first  # second run of the same video: no detection at all
    np.testing.assert_array_equal(_frames(outdir / "a.mp4"), _frames(outdir / "b.mp4"))

    # The same bytes under another name hit; other settings or other bytes miss.
    shutil.copy(media / "face.mp4", tmp_path / "renamed.mp4")
    synth.synthesize(tmp_path / "renamed.mp4", outdir / "c.mp4", audio=media / "a16k.wav")
    assert len(calls) == first
    synth.options = dataclasses.replace(OPTS, smooth=3)
    synth.synthesize(media / "face.mp4", outdir / "d.mp4", audio=media / "a16k.wav")
    assert len(calls) == 2 * first
    synth.options = OPTS
    with open(tmp_path / "renamed.mp4", "ab") as f:
      f.write(b"\0" * 16)  # an edited file is a new video
    synth.synthesize(tmp_path / "renamed.mp4", outdir / "e.mp4", audio=media / "a16k.wav")
    assert len(calls) == 3 * first
  finally:
    restore()


def test_track_cache_survives_a_corrupt_entry_and_can_be_off(ckpts, media, outdir, tmp_path,
                                                             monkeypatch):
  monkeypatch.setenv("TAEM_JAX_HOME", str(tmp_path / "home"))
  synth = synthesis.Synthesizer(ckpts / "wav2lip", options=OPTS)
  synth.synthesize(media / "face.mp4", outdir / "a.mp4", audio=media / "a16k.wav")
  (entry,) = (tmp_path / "home" / "tracks").glob("*.npz")
  entry.write_bytes(entry.read_bytes()[:100])  # truncated
  calls, restore = _counting_detector(synth)
  try:
    synth.synthesize(media / "face.mp4", outdir / "b.mp4", audio=media / "a16k.wav")
    assert calls  # recomputed, not trusted
    np.testing.assert_array_equal(_frames(outdir / "a.mp4"), _frames(outdir / "b.mp4"))
    assert np.load(entry)["boxes"].shape[1] == 4  # and stored whole again
  finally:
    restore()
  monkeypatch.setenv("TAEM_JAX_HOME", str(tmp_path / "home2"))
  off = synthesis.Synthesizer(ckpts / "wav2lip",
                              options=dataclasses.replace(OPTS, track_cache=False))
  off.synthesize(media / "face.mp4", outdir / "c.mp4", audio=media / "a16k.wav")
  assert not (tmp_path / "home2").exists()


def _written_frames(synth, monkeypatch, face, out, **kw):
  """The frames `synth.synthesize` hands to the writer (before any encoding)."""
  got = []
  real = video.write_video

  def capture(path, frames, *a, **k):
    def copies():
      for chunk in frames:
        got.append(np.array(chunk))
        yield chunk
    return real(path, copies(), *a, **k)
  monkeypatch.setattr(video, "write_video", capture)
  synth.synthesize(face, out, **kw)
  monkeypatch.setattr(video, "write_video", real)
  return np.concatenate(got)


@pytest.mark.parametrize("face,kw", [
    ("face.mp4", {"audio": "long.wav"}),
    pytest.param("partly.mp4", {"text": "Hello there.", "n_frames": 30}, marks=pytest.mark.slow)])
def test_pipeline_is_bit_identical_to_the_sequential_path(ckpts, synth, media, outdir,
                                                          monkeypatch, face, kw):
  """The threaded pipeline (default) writes exactly the frames of the plain loop, on a
  ping-pong loop (backwards reads) and with faceless frames, from audio and from text."""
  kw = {k: (media / v if k == "audio" else v) for k, v in kw.items()}
  seq = synthesis.Synthesizer(wav2lip=synth.wav2lip, taem=synth.taem, taem_info=synth.taem_info,
                              options=dataclasses.replace(OPTS, pipeline=False))
  monkeypatch.setenv("TAEM_JAX_HOME", str(outdir / "home"))
  a = _written_frames(synth, monkeypatch, media / face, outdir / "a.mp4", **kw)
  b = _written_frames(seq, monkeypatch, media / face, outdir / "b.mp4", **kw)
  assert len(a) > 2 * OPTS.batch_size  # several chunks went through the queues
  np.testing.assert_array_equal(a, b)
  assert {"decode", "crop", "generate", "paste"} <= set(synth.stage_seconds)


def test_track_cache_hit_does_not_build_the_detector(ckpts, synth, media, outdir, tmp_path,
                                                     monkeypatch):
  monkeypatch.setenv("TAEM_JAX_HOME", str(tmp_path / "home"))
  first = synthesis.Synthesizer(wav2lip=synth.wav2lip, options=OPTS)
  track = first.track(first.plan(media / "face.mp4", outdir / "a.mp4", audio=media / "a16k.wav"))
  fresh = synthesis.Synthesizer(wav2lip=synth.wav2lip, options=OPTS)
  assert fresh.track_settings() == first.track_settings()  # same key with or without dlib

  def no_detector(*a, **k):
    raise AssertionError("the detector was built on a cache hit")
  monkeypatch.setattr(FaceDetector, "__init__", no_detector)
  again = fresh.track(fresh.plan(media / "face.mp4", outdir / "b.mp4", audio=media / "a16k.wav"))
  np.testing.assert_array_equal(again.boxes, track.boxes)
  np.testing.assert_array_equal(again.valid, track.valid)
