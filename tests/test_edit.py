"""Text-based editing: re-say a word span of a talking video, every other frame bit-identical.

The clip: espeak-ng says a short sentence, muxed with a real face photo (moving a pixel or two
per frame, a frame counter in the corner) as a 25 fps H.264 video; models are the tiny
random-weight checkpoints of test_synthesis. Both the input and the output are decoded with
`video.iter_frames` and compared frame by frame.
"""
import cv2
import numpy as np
import pytest
from test_synthesis import OPTS, _fails, ckpts, synth  # noqa: F401

from taem_jax import audio, synthesis, video
from taem_jax.cli import synthesize as synthesize_cli
from taem_jax.data.sample import portraits
from taem_jax.errors import UserError
from taem_jax.face import FaceDetector
from taem_jax.synthesis import editing
from taem_jax.text import espeak, g2p

pytestmark = pytest.mark.usefixtures("fast_compile")

SENTENCE = "I will meet you on Monday at noon."


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
  root = tmp_path_factory.mktemp("clip")
  said = espeak.synthesize(SENTENCE)
  n = int(len(said.wav) / said.sr * 25)
  img = portraits.make_portraits(1, 160, np.random.default_rng(0), FaceDetector())[0].image
  frames = np.stack([np.roll(img, (k % 4) - 2, axis=1) for k in range(n)])
  for k in range(n):
    frames[k, :16, :16] = (7 * k) % 256  # a frame counter outside the face
  video.write_video(root / "talk.mp4", frames, 25, audio_wav=said.wav, audio_sr=said.sr)
  video.write_video(root / "mute.mp4", frames, 25)
  video.write_wav(root / "speech.wav", said.wav, said.sr)
  cv2.imwrite(str(root / "face.png"), img)
  return root, said


def _decode(path):
  return np.concatenate(list(video.iter_frames(path)))


@pytest.fixture(scope="module")
def edited(synth, clip, tmp_path_factory):  # noqa: F811
  """The same edit with fade 0 and fade 2 (the generator is deterministic)."""
  root, _ = clip
  out = tmp_path_factory.mktemp("edited")
  res = {f: synth.edit(root / "talk.mp4", out / f"fade{f}.mp4", transcript=SENTENCE,
                       old="on Monday", new="on Friday", fade=f) for f in (0, 2)}
  return res


def test_frames_outside_the_span_are_bit_identical(clip, edited):
  root, said = clip
  src = _decode(root / "talk.mp4")
  for f, res in edited.items():
    out = _decode(res.out)
    assert out.shape == src.shape, f
    s, e = res.span
    assert 0 < s < e < len(src), res.span
    outside = np.ones(len(src), bool)
    outside[s:e] = False
    np.testing.assert_array_equal(out[outside], src[outside])
    changed = np.abs(out[s:e].astype(int) - src[s:e]).max(axis=(1, 2, 3))
    core = slice(res.fade, e - s - res.fade)
    assert (changed[core] > 0).all(), (f, changed)
    # Only the face region changes: the frame counter corner is untouched everywhere.
    np.testing.assert_array_equal(out[:, :16, :16], src[:, :16, :16])
  # The span is where espeak said "on Monday" (the aligner found it).
  words = [w for w in said.words if w.name.strip(".").lower() in ("on", "monday")]
  t_on, t_end = words[0].start, words[-1].end
  s, e = edited[0].span
  assert abs(s / 25 - t_on) < 0.12 and abs(e / 25 - t_end) < 0.2, (s, e, t_on, t_end)
  assert edited[0].words == (4, 6)


def test_crossfade_frames_are_blends(clip, edited):
  root, _ = clip
  src = _decode(root / "talk.mp4").astype(np.float64)
  hard, soft = _decode(edited[0].out), _decode(edited[2].out)
  assert edited[0].span == edited[2].span and edited[2].fade == 2
  s, e = edited[2].span
  w = editing.crossfade_weights(e - s, 2)
  np.testing.assert_allclose(w[:2], [1 / 3, 2 / 3])
  want = np.floor(w[:, None, None, None] * hard[s:e] + (1 - w[:, None, None, None]) * src[s:e]
                  + 0.5)
  np.testing.assert_array_equal(soft[s:e], want.astype(np.uint8))
  # The fade frames really differ from both ends of the blend.
  for i in (0, 1, e - s - 2, e - s - 1):
    assert (soft[s + i] != hard[s + i]).any() and (soft[s + i] != src[s + i]).any(), i
  np.testing.assert_array_equal(soft[s + 2:e - 2], hard[s + 2:e - 2])


def test_audio_is_kept(clip, edited):
  root, _ = clip
  a = video.extract_audio(root / "talk.mp4")
  b = video.extract_audio(edited[2].out)
  n = min(len(a), len(b))
  assert abs(len(a) - len(b)) < 0.05 * 16000
  assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.95


def test_crossfade_weights():
  np.testing.assert_allclose(editing.crossfade_weights(7, 2), [1 / 3, 2 / 3, 1, 1, 1, 2 / 3,
                                                               1 / 3])
  np.testing.assert_allclose(editing.crossfade_weights(3, 5), [0.5, 1, 0.5])
  np.testing.assert_allclose(editing.crossfade_weights(4, 0), [1, 1, 1, 1])


def test_find_words():
  words = g2p.g2p_words("The cat saw the other cat. Then it left!")
  assert editing.find_words(words, "saw THE") == (2, 4)
  assert editing.find_words(words, "it left") == (7, 9)
  assert editing.find_words(words, (0, 2)) == (0, 2)
  with pytest.raises(UserError, match="occurs 2 times"):
    editing.find_words(words, "cat")
  with pytest.raises(UserError, match="not in the transcript"):
    editing.find_words(words, "dog")
  with pytest.raises(UserError, match="outside"):
    editing.find_words(words, (3, 12))


def test_bad_edits_are_one_line_and_leave_nothing(synth, clip, tmp_path):  # noqa: F811
  root, _ = clip
  talk = root / "talk.mp4"
  out = tmp_path / "out"
  out.mkdir()
  o = out / "e.mp4"
  kw = {"transcript": SENTENCE, "old": "on Monday", "new": "on Friday"}
  _fails(lambda: synth.edit(talk, o, **dict(kw, old="on Tuesday")), "not in the transcript",
         out)
  _fails(lambda: synth.edit(talk, o, **dict(kw, new="  ")), "replacement text is empty", out)
  _fails(lambda: synth.edit(talk, o, **dict(kw, transcript="")), "transcript is empty", out)
  _fails(lambda: synth.edit(root / "mute.mp4", o, **kw), "no audio track", out)
  _fails(lambda: synth.edit(root / "face.png", o, **kw), "is an image", out)
  _fails(lambda: synth.edit(talk, o, **kw, fade=-1), "fade must be", out)
  _fails(lambda: synth.edit(talk, o, **kw, keep_length=False), "add speech", out)
  _fails(lambda: synth.edit(talk, out / "e.avi", **kw), "must be an .mp4", out)
  no_taem = synthesis.Synthesizer(wav2lip=synth.wav2lip, options=OPTS)
  _fails(lambda: no_taem.edit(talk, o, **kw), "needs a TAEM", out)


def test_mute_video_with_separate_audio(synth, clip, tmp_path):  # noqa: F811
  root, _ = clip
  res = synth.edit(root / "mute.mp4", tmp_path / "e.mp4", transcript=SENTENCE, old=(4, 6),
                   new="on Friday", audio=root / "speech.wav", fade=1, speech=True,
                   lossless=False)
  src, out = _decode(root / "mute.mp4"), _decode(res.out)
  s, e = res.span
  # lossy (browser-playable yuv420p): untouched frames are close, not identical.
  keep = np.r_[0:s, e:len(src)]
  err = np.abs(out[keep].astype(int) - src[keep])
  assert err.mean() < 1.5 and err.any(), err.mean()
  assert np.abs(out[s + 1:e - 1].astype(int) - src[s + 1:e - 1]).mean() > err.mean()
  # The audio is the speech file with espeak-ng saying "on Friday" in the span.
  a = audio.load_audio(root / "speech.wav")
  b = video.extract_audio(res.out)
  before, span = slice(0, int(s / 25 * 16000)), slice(int(s / 25 * 16000), int(e / 25 * 16000))
  assert np.corrcoef(a[before], b[before])[0, 1] > 0.95
  assert np.corrcoef(a[span], b[span])[0, 1] < 0.8
  assert not audio.is_silent(b[span])


def test_own_length(synth, clip, tmp_path):  # noqa: F811
  """The new words at TAEM's own duration: frames before the span and after it (shifted) are
  bit-identical; the audio is as long as the new video."""
  root, _ = clip
  res = synth.edit(root / "talk.mp4", tmp_path / "e.mp4", transcript=SENTENCE, old="Monday",
                   new="Wednesday or maybe Thursday", fade=1, speech=True, keep_length=False)
  src, out = _decode(root / "talk.mp4"), _decode(res.out)
  (s, e), (s2, e2) = res.span, res.new_span
  m = e2 - s2
  assert s2 == s and m >= 1 and len(out) == res.frames == len(src) - (e - s) + m
  assert m > e - s  # four words for one (TAEM's durations have a floor per phoneme)
  np.testing.assert_array_equal(out[:s], src[:s])
  np.testing.assert_array_equal(out[s + m:], src[e:])
  assert (out[s + 1:s + m - 1] != src[s:s + 1]).any()
  assert abs(len(video.extract_audio(res.out)) / 16000 - len(out) / 25) < 0.05


def test_cli(ckpts, clip, tmp_path, capsys):  # noqa: F811
  """In-process (the jitted calls are already compiled): an edit and one-line errors."""
  root, _ = clip
  out = tmp_path / "e.mp4"
  base = ["--wav2lip", str(ckpts / "wav2lip"), "--taem", str(ckpts / "taem"), "--batch_size", "8",
          "--detect_stride", "1", "--face", str(root / "talk.mp4"), "--out", str(out),
          "--no_progress"]
  for extra, msg in (
      (["--edit", "on Monday", "--transcript", SENTENCE], "both --edit OLD and --to NEW"),
      (["--edit", "on Monday", "--to", "on Friday"], "needs --transcript"),
      (["--edit", "Sunday", "--to", "Friday", "--transcript", SENTENCE],
       "not in the transcript"),
      (["--edit", "on Monday", "--to", "", "--transcript", SENTENCE], "replacement text is empty"),
  ):
    with pytest.raises(SystemExit) as e:
      synthesize_cli.main(base + extra)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and msg in err[0], err
    assert not any(tmp_path.iterdir())
  assert synthesize_cli.main(base + ["--edit", "on Monday", "--to", "on Friday",
                                     "--transcript", SENTENCE, "--fade", "2"]) == 0
  said = capsys.readouterr().out
  assert "re-synthesised, 2 cross-faded" in said, said
  src, got = _decode(root / "talk.mp4"), _decode(out)
  changed = np.flatnonzero((got != src).any(axis=(1, 2, 3)))
  assert len(changed) and f"frames {changed[0]}..{changed[-1]} re-synthesised" in said, said
