"""The project's one video I/O module: read frames, probe, extract audio, write H.264 + AAC mp4.

Everything goes through the static ffmpeg that imageio-ffmpeg ships (it has libx264 and aac;
OpenCV's bundled FFmpeg cannot encode H.264). Frames are uint8 BGR (T, H, W, 3), as OpenCV and
Wav2Lip use. Still images (.jpg, .jpeg, .png, .bmp, .webp) are read as 1-frame videos.

Written files are H.264 (yuv420p, even width/height) + AAC in an mp4 with the index at the front
(`+faststart`), which browsers play. Frames are streamed to the encoder as they are produced and
the file appears under its name only once complete: it is written to a hidden temporary name in
the same folder and renamed at the end; on any error the partial file is removed.
"""
import dataclasses
import os
import pathlib
import re
import subprocess
import tempfile
import uuid
import wave
from collections.abc import Iterable, Iterator

import cv2
import imageio_ffmpeg
import numpy as np

from taem_jax.errors import UserError
from taem_jax.rates import SAMPLE_RATE, VIDEO_FPS

# imageio-ffmpeg starts its frame readers with preexec_fn=os.setpgrp, which makes subprocess fork
# this process (multithreaded once JAX runs: JAX warns that the fork may deadlock) instead of
# spawning ffmpeg directly. Without it ffmpeg is spawned safely (and also receives Ctrl-C).
os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Exact BGR <-> YUV rounding in ffmpeg's scaler: with the default flags every encode/decode round
# trip shifted colours by a few levels (grey 127 came back as 123/126/124, then 119/124/122).
_SWS = ["-sws_flags", "accurate_rnd+full_chroma_int"]


def ffmpeg_exe() -> str:
  """Path of imageio-ffmpeg's bundled ffmpeg binary."""
  return imageio_ffmpeg.get_ffmpeg_exe()


def is_image(path) -> bool:
  return pathlib.Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _existing_file(path) -> pathlib.Path:
  p = pathlib.Path(path).expanduser()
  if not p.exists():
    raise UserError(f"no such file: {p}")
  if not p.is_file():
    raise UserError(f"not a file: {p}")
  return p


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What `probe` reports about a video (or image) file."""
  path: str
  fps: float | None  # None for a still image
  n_frames: int
  width: int
  height: int
  has_audio: bool
  video_codec: str  # ffmpeg's decoder name, e.g. "h264", "mpeg4", "png"
  audio_codec: str | None  # e.g. "aac"; None without audio
  duration: float | None  # seconds; None for a still image


def _ffmpeg_header(path: pathlib.Path) -> str:
  """ffmpeg's description of an input (its stderr when given no output)."""
  result = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                          text=True, errors="replace", check=False)
  return result.stderr


def _last_line(text: str) -> str:
  lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
  return lines[-1] if lines else "(no message)"


def probe(path) -> VideoInfo:
  """Frame rate, frame count, size and streams of a video, or of an image (1 frame).

  Raises:
    UserError: the file is missing, or ffmpeg finds no video stream in it.
  """
  p = _existing_file(path)
  if is_image(p):
    img = read_image(p)
    return VideoInfo(str(p), None, 1, img.shape[1], img.shape[0], False, "image", None, None)
  header = _ffmpeg_header(p)
  video = re.search(r"Stream #\S+.*?: Video: (\w+).*", header)
  if video is None:
    raise UserError(f"cannot read {p} as a video ({_last_line(header)}): "
                    "give an mp4/avi/mov/mkv video or a jpg/png image")
  line = video.group(0)
  size = re.search(r", (\d+)x(\d+)", line)
  fps = re.search(r", ([\d.]+) fps", line) or re.search(r", ([\d.]+) tbr", line)
  audio = re.search(r"Stream #\S+.*?: Audio: (\w+)", header)
  dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", header)
  width, height = (int(size.group(1)), int(size.group(2))) if size else (0, 0)
  rotation = re.search(r"rotation of (-?[\d.]+) degrees", header)
  if rotation and round(abs(float(rotation.group(1)))) % 180 == 90:
    width, height = height, width  # ffmpeg auto-rotates when decoding.
  duration = (int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3))
              if dur else None)
  return VideoInfo(str(p), float(fps.group(1)) if fps else None, _count_frames(p), width, height,
                   audio is not None, video.group(1), audio.group(1) if audio else None, duration)


def _count_frames(path: pathlib.Path) -> int:
  # Stream copy into the null muxer counts packets without decoding (fast on long videos).
  try:
    return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
  except (RuntimeError, OSError, ValueError) as e:
    raise UserError(f"cannot count the frames of {path}: {e}") from e


def read_image(path) -> np.ndarray:
  """A still image as uint8 BGR. Shapes: -> (H, W, 3)."""
  p = _existing_file(path)
  img = cv2.imread(str(p), cv2.IMREAD_COLOR)
  if img is None:
    raise UserError(f"cannot read {p} as an image (corrupt or not an image file)")
  return img


def iter_frames(path, chunk: int = 64, max_frames: int | None = None, *, start: int = 0,
                fps: float | None = None) -> Iterator[np.ndarray]:
  """Streams a video's frames in chunks, so memory stays flat on long inputs.

  Args:
    path: a video file, or an image (one chunk of one frame).
    chunk: frames per yielded array.
    max_frames: stop after this many frames (None: all).
    start: first frame to return. Frames before it are skipped by an ffmpeg input seek to half
      a frame before its timestamp (exact for constant-frame-rate videos), not decoded to
      numpy; `start` past the end yields nothing.
    fps: the video's frame rate for the seek (default: `probe`'s).

  Shapes:
    yields (n, H, W, 3) uint8 BGR with n <= chunk.

  A missing file raises at the call; a file ffmpeg cannot decode raises (UserError) on the
  first iteration (`probe` checks both up front).
  """
  p = _existing_file(path)
  if chunk < 1:
    raise ValueError(f"chunk must be >= 1, got {chunk}")
  if start < 0:
    raise ValueError(f"start must be >= 0, got {start}")
  if start and not is_image(p) and not fps:
    fps = probe(p).fps
    if not fps:
      raise UserError(f"{p} has no frame rate: cannot seek to frame {start}")
  return _iter_frames(p, chunk, max_frames, start, fps)


def _iter_frames(p: pathlib.Path, chunk: int, max_frames: int | None, start: int = 0,
                 fps: float | None = None) -> Iterator[np.ndarray]:
  if is_image(p):
    if start == 0:
      yield read_image(p)[None]
    return
  seek = ["-ss", f"{(start - 0.5) / fps:.6f}"] if start else None
  reader = imageio_ffmpeg.read_frames(str(p), pix_fmt="bgr24", input_params=seek,
                                      output_params=_SWS)
  try:
    try:
      meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as e:
      raise UserError(f"cannot read {p} as a video ({_last_line(str(e))}): "
                      "give an mp4/avi/mov/mkv video or a jpg/png image") from e
    w, h = meta["size"]
    buf = np.empty((chunk, h, w, 3), np.uint8)
    n = total = 0
    for raw in reader:
      buf[n] = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
      n += 1
      total += 1
      if n == chunk:
        yield buf.copy()
        n = 0
      if max_frames is not None and total >= max_frames:
        break
    if n:
      yield buf[:n].copy()
    if total == 0 and start == 0:
      raise UserError(f"{p} has no video frames")
  finally:
    reader.close()


def read_video(path, image_fps: float = VIDEO_FPS) -> tuple[np.ndarray, float]:
  """All frames of a video (or an image as one frame) and its frame rate.

  Args:
    path: video or image file.
    image_fps: the frame rate reported for a still image (Wav2Lip's default, 25).

  Shapes:
    -> frames (T, H, W, 3) uint8 BGR, fps.
  """
  p = _existing_file(path)
  if is_image(p):
    return read_image(p)[None], float(image_fps)
  info = probe(p)
  frames = np.concatenate(list(iter_frames(p)), 0)
  return frames, float(info.fps or image_fps)


class FrameSource:
  """Frames of a face video (or one image) fetched by index in any order, in bounded memory.

  Ascending indices come from one sequential decoder (reopened with a seek when the order
  jumps forward or restarts); descending runs (a ping-pong loop) are read in blocks that end
  at the requested frame, each block one seek + sequential decode.

  Args:
    path: the video file.
    n_frames: its frame count.
    fps: its frame rate (for seeks).
    chunk: frames per sequential read.
    block: frames per backwards block.
    image: a still image to return for every index instead of reading `path`.

  Shapes:
    `get(j)` -> (H, W, 3) uint8 BGR.
  """

  def __init__(self, path: pathlib.Path, n_frames: int, fps: float | None, chunk: int,
               block: int, image: np.ndarray | None = None):
    self.path, self.n, self.fps = path, n_frames, fps
    self.chunk, self.block = chunk, max(1, block)
    self.image = image
    self._it: Iterator[np.ndarray] | None = None
    self._buf: np.ndarray | None = None  # current sequential chunk
    self._buf_start = 0  # source index of self._buf[0]
    self._blk: np.ndarray | None = None
    self._blk_start = 0
    self._prev = -1

  def _read(self, start: int, count: int) -> np.ndarray:
    parts = list(iter_frames(self.path, chunk=count, max_frames=count, start=start,
                             fps=self.fps))
    if not parts:
      raise UserError(f"{self.path}: cannot read frame {start} (the file changed or is damaged)")
    return parts[0] if len(parts) == 1 else np.concatenate(parts)

  def _sequential(self, j: int) -> np.ndarray | None:
    if self._buf is not None and self._buf_start <= j < self._buf_start + len(self._buf):
      return self._buf[j - self._buf_start]
    if self._it is None or self._buf is None or j < self._buf_start:
      return None
    while self._buf_start + len(self._buf) <= j:
      nxt = next(self._it, None)
      if nxt is None:
        return None
      self._buf_start += len(self._buf)
      self._buf = nxt
    return self._buf[j - self._buf_start]

  def get(self, j: int) -> np.ndarray:
    """Frame `j` of the source."""
    if self.image is not None:
      return self.image
    descending = j < self._prev
    self._prev = j
    if self._blk is not None and self._blk_start <= j < self._blk_start + len(self._blk):
      return self._blk[j - self._blk_start]
    frame = None if descending else self._sequential(j)
    if frame is not None:
      return frame
    if descending:
      start = max(0, j + 1 - self.block)
      self._blk, self._blk_start = self._read(start, j + 1 - start), start
      return self._blk[j - start]
    # (Re)open the sequential decoder at j.
    self._it = iter_frames(self.path, chunk=self.chunk, start=j, fps=self.fps)
    self._buf = next(self._it, None)
    self._buf_start = j
    if self._buf is None:
      raise UserError(f"{self.path}: cannot read frame {j} (the file changed or is damaged)")
    return self._buf[0]


def extract_audio(path, sr: int = SAMPLE_RATE) -> np.ndarray:
  """The audio track of a video (or any audio file) as mono float32 at `sr` Hz.

  Shapes:
    -> (N,) float32 in [-1, 1].
  """
  p = _existing_file(path)
  if not is_image(p) and p.suffix.lower() not in (".wav", ".mp3", ".flac", ".ogg", ".m4a"):
    if not probe(p).has_audio:
      raise UserError(f"{p} has no audio track")
  cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(p), "-vn", "-ac", "1",
         "-ar", str(int(sr)), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
  result = subprocess.run(cmd, capture_output=True, check=False)
  if result.returncode != 0:
    raise UserError(f"cannot read audio from {p}: "
                    f"{_last_line(result.stderr.decode(errors='replace'))}")
  return np.frombuffer(result.stdout, np.float32).copy()


def write_wav(path, samples: np.ndarray, sr: int) -> None:
  """Writes mono/multi-channel float ([-1, 1]) or int16 samples as 16-bit PCM wav.

  Shapes:
    samples: (N,) or (N, C).
  """
  x = np.asarray(samples)
  if x.dtype != np.int16:
    x = (np.clip(x.astype(np.float32), -1.0, 1.0) * 32767.0).round().astype(np.int16)
  channels = 1 if x.ndim == 1 else x.shape[1]
  with wave.open(str(path), "wb") as f:
    f.setnchannels(channels)
    f.setsampwidth(2)
    f.setframerate(int(sr))
    f.writeframes(np.ascontiguousarray(x).tobytes())


def check_output(path) -> pathlib.Path:
  """The .mp4 path to write, after checking its name and its folder (one line each).

  Raises:
    UserError: not an .mp4, the folder is missing or not a folder, the path is a folder.
  """
  p = pathlib.Path(path).expanduser()
  if p.suffix.lower() != ".mp4":
    raise UserError(f"output video must be an .mp4 file, got {p}")
  folder = p.parent
  if not folder.exists():
    raise UserError(f"output folder does not exist: {folder} (create it first)")
  if not folder.is_dir():
    raise UserError(f"output folder is not a folder: {folder}")
  if p.is_dir():
    raise UserError(f"output path is a folder: {p}")
  return p


def check_writable_output(path) -> pathlib.Path:
  """`check_output`, then a probe file proves the folder writable (nothing is left behind).

  For checking a job before any heavy work; `write_video` finds the same problems only once
  it starts writing.
  """
  p = check_output(path)
  probe_file = p.parent / f".{p.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.check"
  try:
    probe_file.touch()
  except OSError as e:
    raise UserError(f"cannot write to output folder {p.parent}: {e.strerror}") from None
  probe_file.unlink(missing_ok=True)
  return p


def check_input_file(path, what: str = "input") -> pathlib.Path:
  """An input file that exists, is a file and is not empty, e.g. `what="face"`.

  Raises:
    UserError: "<what> file not found: ...", "... is not a file", "... is empty (0 bytes)".
  """
  p = pathlib.Path(path).expanduser()
  if not p.exists():
    raise UserError(f"{what} file not found: {p}")
  if not p.is_file():
    raise UserError(f"{what} input is not a file: {p}")
  if p.stat().st_size == 0:
    raise UserError(f"{what} file is empty (0 bytes): {p}")
  return p


def single_frames(frames) -> Iterator[np.ndarray]:
  """Yields (H, W, 3) frames from one frame, an array (T, H, W, 3), or an iterable of frames
  or of chunks (N, H, W, 3) (what `iter_frames` yields): the frame inputs this project takes."""
  if isinstance(frames, np.ndarray) and frames.ndim == 3:
    yield frames
    return
  for item in frames:
    item = np.asarray(item)
    if item.ndim == 4:
      yield from item
    else:
      yield item


def write_video(path, frames: Iterable[np.ndarray] | np.ndarray, fps: float, audio_wav=None,
                audio_sr: int = SAMPLE_RATE, *, crf: int = 18, preset: str = "veryfast",
                lossless: bool = False) -> int:
  """Encodes frames (+ audio) to a browser-playable H.264/AAC mp4, streaming, atomically.

  Args:
    path: the .mp4 to write (its folder must exist); replaced if present.
    frames: uint8 BGR frames: an array (T, H, W, 3) or an iterable of frames or of chunks
      (N, H, W, 3); consumed lazily, never buffered whole.
    fps: frame rate.
    audio_wav: None (silent video), a path to an audio file ffmpeg reads, or samples (N,) or
      (N, C), float in [-1, 1] or int16, at `audio_sr` Hz. The audio is cut or padded with
      silence to the video's length.
    audio_sr: sample rate of `audio_wav` samples.
    crf: x264 quality (lower is better; 18 is visually lossless for most content).
    preset: x264 speed preset.
    lossless: encode the BGR frames exactly (libx264rgb, -qp 0, bgr24; no colour conversion):
      `iter_frames` gives back the very frames written. Such files play in ffmpeg, VLC and mpv
      but not in browsers (H.264 RGB), and are far larger (a 4 s 256x256 clip: 3.3 MB instead of
      87 kB at crf 18); `crf` is ignored.

  Returns:
    The number of frames written. Odd frame sizes are padded by one edge pixel (yuv420p needs
    even sizes).

  Raises:
    UserError: bad output path or folder not writable, missing audio file, ffmpeg failure.
  """
  out = check_output(path)
  if not fps or fps <= 0:
    raise UserError(f"frame rate must be positive, got {fps}")
  audio_path = None
  if audio_wav is not None and not isinstance(audio_wav, np.ndarray):
    audio_path = _existing_file(audio_wav)
  tag = f".{out.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
  tmp_out = out.parent / (tag + ".part.mp4")
  # With audio, the video is encoded first and muxed after: ffmpeg's -shortest is imprecise
  # with a piped input, and only once all frames are in is the exact duration known.
  tmp_video = out.parent / (tag + ".video.mp4") if audio_wav is not None else tmp_out
  tmp_audio = out.parent / (tag + ".part.wav") if isinstance(audio_wav, np.ndarray) else None
  try:
    tmp_out.touch()
  except OSError as e:
    raise UserError(f"cannot write to output folder {out.parent}: {e.strerror}") from e
  proc = None
  count = 0
  try:
    it = single_frames(frames)
    first = next(it, None)
    if first is None:
      raise ValueError("write_video got no frames")
    h, w = first.shape[:2]
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
           "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-r", f"{fps:.6g}", "-i", "-"]
    if h % 2 or w % 2:
      cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    if lossless:
      cmd += ["-c:v", "libx264rgb", "-preset", preset, "-qp", "0", "-pix_fmt", "bgr24"]
    else:
      cmd += _SWS + ["-c:v", "libx264", "-preset", preset, "-crf", str(int(crf)),
                     "-pix_fmt", "yuv420p"]
    cmd += ["-movflags", "+faststart", "-f", "mp4", str(tmp_video)]
    with tempfile.TemporaryFile() as stderr:
      proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=stderr)
      frame = first
      while frame is not None:
        if frame.shape != (h, w, 3) or frame.dtype != np.uint8:
          raise ValueError(f"frame {count} is {frame.dtype} {frame.shape}, expected uint8 "
                           f"{(h, w, 3)}")
        try:
          proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
          break  # ffmpeg died; its message is reported below.
        count += 1
        frame = next(it, None)
      try:
        proc.stdin.close()
      except BrokenPipeError:
        pass
      if proc.wait() != 0:
        stderr.seek(0)
        raise UserError(f"ffmpeg could not write {out}: "
                        f"{_last_line(stderr.read().decode(errors='replace'))}")
    if audio_wav is not None:
      if tmp_audio is not None:
        write_wav(tmp_audio, audio_wav, audio_sr)
        audio_path = tmp_audio
      # Silence-pad the audio and cut everything at the video's exact duration.
      mux = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(tmp_video),
             "-i", str(audio_path), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
             "-c:a", "aac", "-b:a", "128k", "-af", "apad", "-t", f"{count / fps:.6f}",
             "-movflags", "+faststart", "-f", "mp4", str(tmp_out)]
      result = subprocess.run(mux, capture_output=True, check=False)
      if result.returncode != 0:
        raise UserError(f"ffmpeg could not add the audio {audio_path} to {out}: "
                        f"{_last_line(result.stderr.decode(errors='replace'))}")
    os.replace(tmp_out, out)
  except BaseException:
    if proc is not None and proc.poll() is None:
      proc.kill()
      proc.wait()
    raise
  finally:
    if proc is not None and proc.stdin and not proc.stdin.closed:
      try:
        proc.stdin.close()
      except OSError:
        pass
    for tmp in (tmp_out, tmp_video, tmp_audio):
      if tmp is not None:
        tmp.unlink(missing_ok=True)
  return count
