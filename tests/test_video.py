"""Video I/O: H.264 + AAC mp4 round trips, streaming, atomic writes, clear errors."""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from taem_jax import video
from taem_jax.errors import UserError

SR = 16000


def gradient_frames(n, h=64, w=96):
  """Smooth moving colour gradients: compress well, so a round trip stays close."""
  y, x = np.mgrid[0:h, 0:w]
  frames = [np.stack([(x * 2 + 3 * t) % 256, (y * 3 + t) % 256, np.full_like(x, 40 + t)], -1)
            for t in range(n)]
  return np.asarray(frames, np.uint8)


def tone(seconds, freq=440.0):
  return (0.3 * np.sin(2 * np.pi * freq * np.arange(int(SR * seconds)) / SR)).astype(np.float32)


def test_write_probe_read_round_trip(tmp_path):
  frames = gradient_frames(30)
  path = tmp_path / "out.mp4"
  n = video.write_video(path, iter(frames), 25, tone(1.2), SR)  # frames streamed one by one
  assert n == 30
  info = video.probe(path)
  assert info.video_codec == "h264" and info.audio_codec == "aac" and info.has_audio
  assert info.n_frames == 30 and info.fps == 25.0
  assert (info.width, info.height) == (96, 64)
  assert abs(info.duration - 1.2) < 0.03  # the video's length, not the audio's
  back, fps = video.read_video(path)
  assert fps == 25.0 and back.shape == frames.shape and back.dtype == np.uint8
  assert np.abs(back.astype(int) - frames).mean() < 3  # BGR order and content survive
  # yuv420p for browsers: ffmpeg's stream line says so.
  assert "yuv420p" in video._ffmpeg_header(path)  # pylint: disable=protected-access
  assert sorted(os.listdir(tmp_path)) == ["out.mp4"]  # no temp files left


def test_audio_is_cut_or_padded_to_the_video(tmp_path):
  frames = gradient_frames(25)
  video.write_video(tmp_path / "long.mp4", frames, 25, tone(3.0), SR)
  video.write_video(tmp_path / "short.mp4", frames, 25, tone(0.4), SR)
  for name in ("long.mp4", "short.mp4"):
    assert video.probe(tmp_path / name).n_frames == 25
    audio = video.extract_audio(tmp_path / name)
    assert abs(len(audio) / SR - 1.0) < 0.03, name
  audio = video.extract_audio(tmp_path / "long.mp4")
  spectrum = np.abs(np.fft.rfft(audio[:SR // 2]))
  assert abs(np.argmax(spectrum) * 2 - 440) <= 4  # the 440 Hz tone, at 16 kHz, mono
  short = video.extract_audio(tmp_path / "short.mp4")
  assert np.abs(short[int(0.6 * SR):]).max() < 0.01  # silence after the 0.4 s of speech


def test_audio_from_a_wav_file_and_int16(tmp_path):
  wav = tmp_path / "speech.wav"
  video.write_wav(wav, (tone(1.0) * 32767).astype(np.int16), SR)
  video.write_video(tmp_path / "a.mp4", gradient_frames(10), 10, wav)
  assert video.probe(tmp_path / "a.mp4").audio_codec == "aac"
  np.testing.assert_allclose(video.extract_audio(wav), tone(1.0), atol=2e-3)


def test_odd_size_is_padded_to_even_and_chunks_accepted(tmp_path):
  frames = gradient_frames(6, h=33, w=47)
  video.write_video(tmp_path / "odd.mp4", [frames[:4], frames[4:]], 25)  # chunks (N, H, W, 3)
  info = video.probe(tmp_path / "odd.mp4")
  assert (info.width, info.height, info.n_frames, info.has_audio) == (48, 34, 6, False)
  back, _ = video.read_video(tmp_path / "odd.mp4")
  assert np.abs(back[:, :33, :47].astype(int) - frames).mean() < 4


def test_iter_frames_streams_in_chunks(tmp_path):
  frames = gradient_frames(23)
  video.write_video(tmp_path / "v.mp4", frames, 25)
  chunks = list(video.iter_frames(tmp_path / "v.mp4", chunk=10))
  assert [len(c) for c in chunks] == [10, 10, 3]
  np.testing.assert_array_equal(np.concatenate(chunks), video.read_video(tmp_path / "v.mp4")[0])
  assert sum(len(c) for c in video.iter_frames(tmp_path / "v.mp4", chunk=4, max_frames=9)) == 9


def test_image_is_a_one_frame_video(tmp_path):
  img = gradient_frames(1)[0]
  cv2.imwrite(str(tmp_path / "face.png"), img)
  frames, fps = video.read_video(tmp_path / "face.png", image_fps=30)
  assert frames.shape == (1, *img.shape) and fps == 30
  np.testing.assert_array_equal(frames[0], img)
  info = video.probe(tmp_path / "face.png")
  assert info.n_frames == 1 and (info.width, info.height) == (96, 64) and not info.has_audio
  assert [c.shape for c in video.iter_frames(tmp_path / "face.png")] == [(1, 64, 96, 3)]


def test_failure_mid_write_leaves_no_file_and_keeps_the_old_one(tmp_path):
  path = tmp_path / "result.mp4"

  def broken():
    for i, f in enumerate(gradient_frames(20)):
      if i == 8:
        raise RuntimeError("generator crashed")
      yield f

  with pytest.raises(RuntimeError, match="crashed"):
    video.write_video(path, broken(), 25, tone(1.0), SR)
  assert os.listdir(tmp_path) == []  # neither the target nor a temp file
  video.write_video(path, gradient_frames(5), 25)
  before = path.read_bytes()
  with pytest.raises(RuntimeError):
    video.write_video(path, broken(), 25)
  assert sorted(os.listdir(tmp_path)) == ["result.mp4"]
  assert path.read_bytes() == before  # the previous complete file is untouched


def test_bad_frames_are_rejected_without_leftovers(tmp_path):
  frames = list(gradient_frames(3)) + [np.zeros((10, 10, 3), np.uint8)]
  with pytest.raises(ValueError, match="frame 3"):
    video.write_video(tmp_path / "x.mp4", frames, 25)
  assert os.listdir(tmp_path) == []


def test_bad_paths_are_user_errors(tmp_path):
  frames = gradient_frames(3)
  fake = tmp_path / "notes.mp4"
  fake.write_text("this is not a video")
  for fn in (video.probe, video.read_video, lambda p: list(video.iter_frames(p))):
    with pytest.raises(UserError, match="cannot read .*notes.mp4 as a video"):
      fn(fake)
  with pytest.raises(UserError, match="no such file"):
    video.read_video(tmp_path / "missing.mp4")
  with pytest.raises(UserError, match="not a file"):
    video.probe(tmp_path)
  bad_png = tmp_path / "x.png"
  bad_png.write_bytes(b"\x89PNG garbage")
  with pytest.raises(UserError, match="as an image"):
    video.read_image(bad_png)
  with pytest.raises(UserError, match="output folder does not exist"):
    video.write_video(tmp_path / "nope" / "x.mp4", frames, 25)
  with pytest.raises(UserError, match="not a folder"):
    video.write_video(fake / "x.mp4", frames, 25)
  with pytest.raises(UserError, match=r"\.mp4"):
    video.write_video(tmp_path / "x.avi", frames, 25)
  with pytest.raises(UserError, match="no such file"):
    video.write_video(tmp_path / "x.mp4", frames, 25, tmp_path / "missing.wav")
  with pytest.raises(UserError, match="frame rate"):
    video.write_video(tmp_path / "x.mp4", frames, 0)
  silent = tmp_path / "silent.mp4"
  video.write_video(silent, frames, 25)
  with pytest.raises(UserError, match="no audio track"):
    video.extract_audio(silent)
  assert sorted(os.listdir(tmp_path)) == ["notes.mp4", "silent.mp4", "x.png"]


def test_unwritable_folder_is_a_user_error(tmp_path):
  # /proc refuses new files even for root, where chmod-based checks would pass.
  with pytest.raises(UserError, match="cannot write to output folder"):
    video.write_video("/proc/taem_jax_test.mp4", gradient_frames(2), 25)
  if os.geteuid() != 0:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(UserError, match="cannot write to output folder"):
      video.write_video(locked / "x.mp4", gradient_frames(2), 25)


def test_iter_frames_checks_the_file_at_the_call(tmp_path):
  with pytest.raises(UserError, match="no such file"):
    video.iter_frames(tmp_path / "missing.mp4")  # no iteration needed


def test_path_checks_are_one_line_and_leave_nothing(tmp_path):
  assert video.check_writable_output(tmp_path / "o.mp4") == tmp_path / "o.mp4"
  assert list(tmp_path.iterdir()) == []  # the write probe is gone
  for path, msg in ((tmp_path / "o.avi", "must be an .mp4"),
                    (tmp_path / "no" / "o.mp4", "output folder does not exist")):
    with pytest.raises(UserError, match=msg):
      video.check_output(path)
  (tmp_path / "empty.png").write_bytes(b"")
  for path, msg in ((tmp_path / "nope.png", "face file not found"),
                    (tmp_path, "face input is not a file"),
                    (tmp_path / "empty.png", r"face file is empty \(0 bytes\)")):
    with pytest.raises(UserError, match=msg):
      video.check_input_file(path, "face")


def test_frame_source_reads_any_order_exactly(tmp_path):
  frames = gradient_frames(12)
  path = tmp_path / "v.mp4"
  video.write_video(path, frames, 25, lossless=True)
  src = video.FrameSource(path, 12, 25.0, chunk=4, block=3)
  order = [0, 1, 2, 5, 11, 10, 9, 8, 7, 3, 4, 6, 0]  # forwards, a jump, backwards, restarts
  np.testing.assert_array_equal(np.stack([src.get(j) for j in order]), frames[order])
  still = video.FrameSource(path, 1, None, chunk=4, block=3, image=frames[5])
  np.testing.assert_array_equal(still.get(7), frames[5])


def test_reading_frames_after_jax_started_does_not_fork(tmp_path):
  """ffmpeg readers are spawned, not forked: no 'os.fork() ... JAX is multithreaded' warning."""
  out = tmp_path / "clip.mp4"
  video.write_video(out, np.zeros((6, 32, 32, 3), np.uint8), fps=25)
  code = ("import warnings, jax, jax.numpy as jnp\n"
          "jax.jit(lambda a: a * 2)(jnp.ones((8, 8))).block_until_ready()\n"
          "from taem_jax import video\n"
          f"n = sum(len(c) for c in video.iter_frames({str(out)!r}, chunk=2))\n"
          "print('frames', n)\n")
  r = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                     text=True, check=False, env={k: v for k, v in os.environ.items()
                                                  if k != "IMAGEIO_FFMPEG_NO_PREVENT_SIGINT"})
  assert r.returncode == 0, r.stderr[-2000:]
  assert "frames 6" in r.stdout
  assert "os.fork() was called" not in r.stderr, r.stderr[-2000:]
