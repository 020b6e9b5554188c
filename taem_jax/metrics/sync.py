"""LSE-D / LSE-C: SyncNet distance and confidence between a video's lips and its audio.

The metric is Wav2Lip's (joonson/syncnet_python `SyncNetInstance.evaluate`):

1. Windows: v = 0 .. min(T, n_samples // 640) - 6 (the last possible window is left out, as
   the official loop does); video window v = frames v..v+4, audio window v = MFCC frames
   4v..4v+19 (0.2 s). Each window gives a video and an audio embedding.
2. `sync_scores`: the audio embeddings are padded with `vshift` zero rows at both ends; for
   each video window i the Euclidean distance (with PyTorch's `pairwise_distance` eps 1e-6
   added to the difference) to the padded audio rows i .. i + 2 vshift, i.e. audio windows
   i - vshift .. i + vshift (zeros past the edges: those distances count too, as officially);
   the distances are averaged over the windows -> 2 vshift + 1 values; LSE-D = their minimum,
   LSE-C = median - minimum, AV offset = vshift - argmin.

Offset sign: a positive offset means the video lags the audio (video frame t shows the mouth
for the sound of frame t - offset). vshift is 15 in every official entry script.

Which network. The official network is syncnet_v2 (`SyncNetV2`, 224x224 syncnet_python face
crops, MFCCs). Its weights cannot ship; without them the same windows and offset search run on
the project's lip-sync expert (`SyncNetColor`: lower halves of 5 Wav2Lip 96x96 crops vs a
16-frame mel window at the same start) through `ExpertScorer`. Every result carries
`SyncScores.model` ("syncnet_v2" or "expert:<name>"): expert numbers are comparable with each
other, never with the paper's (the expert's embeddings are unit vectors, distances in [0, 2]).

Both networks assume 25 fps video (4 MFCC frames per video frame), as the official code does.

Crops. syncnet_python scores real videos on face-track crops (`run_pipeline.py`: S3FD boxes,
median-filtered, `crop_scale` 0.4, 224x224); Wav2Lip's LRS2 script instead resizes whole,
already face-centred frames to 224x224. `score_video` takes the first route with the project's
dlib face track (S3FD-like boxes, 5-frame moving average) and `face.syncnet_crop`; for
face-centred clips, resize the frames yourself and call `lse`.

A scorer captures the model's weights when it is built (jit): build it after loading them.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import jax
import numpy as np
from flax import nnx

from taem_jax import audio, face
from taem_jax.errors import UserError
from taem_jax.rates import SAMPLE_RATE
from taem_jax.rates import VIDEO_FPS as FPS

VSHIFT = 15  # official: every entry script passes vshift=15 (offsets -15..+15 frames)
WINDOW = 5  # video frames per SyncNet window (0.2 s at 25 fps)
PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance adds eps to the difference


@dataclasses.dataclass(frozen=True)
class SyncScores:
  """LSE-D / LSE-C of one clip (or face track) and where they came from."""
  lse_d: float  # min over offsets of the window-averaged distance (lower is better)
  lse_c: float  # median - min of the same 2 vshift + 1 values (higher is better)
  offset: int  # AV offset in frames at the minimum (positive: video lags audio)
  mean_dists: np.ndarray  # (2 vshift + 1,) float64; index j <-> audio shifted by j - vshift
  num_windows: int
  model: str = ""  # "syncnet_v2" or "expert:<name>"

  @property
  def comparable_with_paper(self) -> bool:
    """True only for the official syncnet_v2 network."""
    return self.model == "syncnet_v2"

  def as_dict(self) -> dict:
    """JSON-ready summary (without the per-offset curve)."""
    return {"lse_d": self.lse_d, "lse_c": self.lse_c, "offset": self.offset,
            "num_windows": self.num_windows, "model": self.model}


def distances(video_emb, audio_emb, vshift: int = VSHIFT) -> np.ndarray:
  """Per-window distances to the audio at every offset (official `calc_pdist`).

  Shapes:
    video_emb, audio_emb: (N, D) -> (N, 2 vshift + 1) float64; column j compares video window i
    with audio window i + j - vshift (a zero vector past either end).
  """
  v = np.asarray(video_emb, np.float64)
  a = np.asarray(audio_emb, np.float64)
  if v.ndim != 2 or v.shape != a.shape:
    raise ValueError(f"video and audio embeddings must both be (N, D), got {v.shape} and "
                     f"{a.shape}")
  if v.shape[0] == 0:
    raise ValueError("no windows to score")
  if vshift < 0:
    raise ValueError(f"vshift must be >= 0, got {vshift}")
  n = v.shape[0]
  padded = np.pad(a, ((vshift, vshift), (0, 0)))
  return np.stack([np.linalg.norm(v - padded[j:j + n] + PAIRWISE_EPS, axis=-1)
                   for j in range(2 * vshift + 1)], axis=1)


def sync_scores(video_emb, audio_emb, vshift: int = VSHIFT, model: str = "") -> SyncScores:
  """LSE-D, LSE-C and AV offset from per-window embeddings (no network involved).

  Args:
    video_emb: one embedding per video window.
    audio_emb: one embedding per audio window (window i covers the same time as video i).
    vshift: offsets -vshift..+vshift frames are searched.
    model: name recorded in the result.

  Shapes:
    video_emb, audio_emb: (N, D).
  """
  mdist = distances(video_emb, audio_emb, vshift).mean(axis=0)
  minidx = int(np.argmin(mdist))  # first minimum, as torch.min
  minval = float(mdist[minidx])
  # 2 vshift + 1 is odd, so np.median is the middle value, like torch.median.
  return SyncScores(lse_d=minval, lse_c=float(np.median(mdist)) - minval,
                    offset=vshift - minidx, mean_dists=mdist,
                    num_windows=int(np.shape(video_emb)[0]), model=model)


def num_windows(n_frames: int, n_samples: int) -> int:
  """Windows scored for a clip of `n_frames` frames and `n_samples` 16 kHz samples."""
  return audio.syncnet_num_windows(n_frames, n_samples)


def _need_windows(n_frames: int, n_samples: int) -> int:
  n = num_windows(n_frames, n_samples)
  if n < 1:
    raise UserError(f"clip too short for SyncNet: {n_frames} frames and {n_samples / SAMPLE_RATE:.2f} s "
                    "of audio; need at least 6 frames and 0.24 s")
  return n


def _batched(fn, inputs: np.ndarray, batch_size: int) -> np.ndarray:
  """fn over `inputs` in fixed-size batches (the last one padded, so jit compiles once)."""
  out = []
  for i in range(0, len(inputs), batch_size):
    x = inputs[i:i + batch_size]
    k = len(x)
    if k < batch_size:
      x = np.concatenate([x, np.repeat(x[-1:], batch_size - k, 0)])
    out.append(np.asarray(fn(x))[:k])
  return np.concatenate(out).astype(np.float64)


def _jitted(model: nnx.Module, method: str):
  graphdef, state = nnx.split(model)

  @jax.jit
  def run(state, x):
    return getattr(nnx.merge(graphdef, state), method)(x)

  return lambda x: run(state, x)


def _check_crops(crops, size: int, what: str) -> np.ndarray:
  crops = np.asarray(crops)
  if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
    raise UserError(f"{what} needs uint8 BGR face crops of shape (T, {size}, {size}, 3), got "
                    f"{crops.dtype} {crops.shape}")
  return crops


def _box_fill(boxes: np.ndarray, valid: np.ndarray) -> np.ndarray:
  """Boxes of faceless frames replaced by the nearest frame's box (SyncNet needs every frame)."""
  valid = np.asarray(valid, bool)
  if not valid.any():
    raise UserError("no face found in any frame: cannot compute LSE-D / LSE-C")
  idx = np.flatnonzero(valid)
  t = np.arange(len(valid))
  pos = np.searchsorted(idx, t)
  before = idx[np.clip(pos - 1, 0, len(idx) - 1)]
  after = idx[np.clip(pos, 0, len(idx) - 1)]
  nearest = np.where(np.abs(t - before) <= np.abs(after - t), before, after)
  return np.asarray(boxes)[nearest]


class SyncScorer(Protocol):
  """What `score_video` needs from a network adapter."""
  name: str

  def crops(self, frames: np.ndarray, track) -> np.ndarray: ...

  def embed(self, crops: np.ndarray, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class SyncNetV2Scorer:
  """The official metric network: syncnet_v2 on 224x224 crops and MFCCs.

  The model is switched to eval mode (BatchNorm running statistics), as the official code does.
  """

  name = "syncnet_v2"
  crop_size = 224

  def __init__(self, model, batch_size: int = 20):
    model.eval()
    self.batch_size = int(batch_size)
    self._lips = _jitted(model, "embed_lips")
    self._audio = _jitted(model, "embed_audio")

  def crops(self, frames: np.ndarray, track) -> np.ndarray:
    """syncnet_python's face-track crops around the track's boxes. -> (T, 224, 224, 3) uint8."""
    boxes = _box_fill(track.boxes, track.valid)
    return np.stack([face.syncnet_crop(f, b, size=self.crop_size) for f, b in zip(frames, boxes)])

  def embed(self, crops: np.ndarray, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every scored window.

    Shapes:
      crops: (T, 224, 224, 3) uint8 BGR; wav: (n_samples,) 16 kHz -> two (N, 1024) arrays.
    """
    crops = _check_crops(crops, self.crop_size, "syncnet_v2")
    wav = np.asarray(wav)
    n = _need_windows(len(crops), len(wav))
    mfcc_windows = audio.syncnet_mfcc_windows(audio.syncnet_mfcc(wav), n)
    audio_emb = _batched(self._audio, mfcc_windows, self.batch_size)
    starts = np.arange(n)
    # Raw 0..255 BGR floats, no normalisation (official preprocessing); built per batch.
    video_emb = _batched(
        lambda s: self._lips(crops[s[:, None] + np.arange(WINDOW)].astype(np.float32)),
        starts, self.batch_size)
    return video_emb, audio_emb


class ExpertScorer:
  """The same metric computed with Wav2Lip's lip-sync expert (when syncnet_v2 is absent).

  Video window v: rows 48..95 of 5 consecutive 96x96 Wav2Lip crops, BGR / 255, stacked on
  channels frame-major; audio window v: 16 mel frames from int(80 v / 25) (the expert's
  training pairing). The windows scored are the syncnet_v2 ones, so both see the same spans.
  The model is switched to eval mode.

  Args:
    model: a `SyncNetColor`.
    name: checkpoint name recorded as `expert:<name>` in every result.
    pads: Wav2Lip's `(top, bottom, left, right)` box pads for the 96x96 crops.
  """

  crop_size = 96

  def __init__(self, model, name: str = "lipsync_expert", batch_size: int = 20,
               pads=(0, 10, 0, 0)):
    model.eval()
    self.name = f"expert:{name}"
    self.batch_size = int(batch_size)
    self.pads = tuple(pads)
    self._faces = _jitted(model, "embed_faces")
    self._audio = _jitted(model, "embed_audio")

  def crops(self, frames: np.ndarray, track) -> np.ndarray:
    """Wav2Lip's 96x96 crops of the track's padded boxes. -> (T, 96, 96, 3) uint8."""
    valid = np.ones(len(track.valid), bool)
    boxes = face.pad_boxes(_box_fill(track.boxes, track.valid), valid, track.frame_size,
                           self.pads)
    return face.crop_faces(np.asarray(frames), boxes, self.crop_size)

  def embed(self, crops: np.ndarray, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every scored window.

    Shapes:
      crops: (T, 96, 96, 3) uint8 BGR; wav: (n_samples,) 16 kHz float -> two (N, 512) arrays.
    """
    crops = _check_crops(crops, self.crop_size, "the lip-sync expert")
    wav = np.asarray(wav)
    if np.issubdtype(wav.dtype, np.integer):
      wav = wav.astype(np.float32) / 32768.0
    n = _need_windows(len(crops), len(wav))
    mel_windows = audio.mel_windows(audio.melspectrogram(wav), n, fps=FPS)
    audio_emb = _batched(self._audio, mel_windows, self.batch_size)
    half = crops[:, self.crop_size // 2:].astype(np.float32) / 255.0  # (T, 48, 96, 3)

    def faces(s):
      w = half[s[:, None] + np.arange(WINDOW)]  # (B, 5, 48, 96, 3)
      return self._faces(w.transpose(0, 2, 3, 1, 4).reshape(len(s), 48, 96, 3 * WINDOW))

    video_emb = _batched(faces, np.arange(n), self.batch_size)
    return video_emb, audio_emb


def scorer_for(model, name: str | None = None, batch_size: int = 20) -> SyncScorer:
  """The adapter for a network: `SyncNetV2` -> syncnet_v2, `SyncNetColor` -> expert:<name>."""
  family = getattr(model, "family", None)
  if family == "syncnet_v2":
    return SyncNetV2Scorer(model, batch_size)
  if family == "syncnet_color":
    return ExpertScorer(model, name or "lipsync_expert", batch_size)
  raise UserError(f"LSE needs a syncnet_v2 or syncnet_color (expert) model, got "
                  f"{type(model).__name__}")


def lse(crops, wav, model, vshift: int = VSHIFT, name: str | None = None,
        batch_size: int = 20) -> SyncScores:
  """LSE-D / LSE-C of face crops that are already cut for the network.

  Args:
    crops: 224x224 syncnet_python crops for a `SyncNetV2`, 96x96 Wav2Lip crops for a
      `SyncNetColor` (25 fps, uint8 BGR).
    wav: the clip's audio, 16 kHz (float in [-1, 1] or int16).
    model: `SyncNetV2` or `SyncNetColor` (or a scorer from `scorer_for`, reused across clips
      so that jit compiles once).
    vshift: offset search range in frames.
    name: checkpoint name for an expert model.

  Shapes:
    crops: (T, S, S, 3) uint8; wav: (n_samples,).
  """
  scorer = model if hasattr(model, "embed") and hasattr(model, "crops") else scorer_for(
      model, name, batch_size)
  video_emb, audio_emb = scorer.embed(crops, wav)
  return sync_scores(video_emb, audio_emb, vshift, model=scorer.name)


def score_video(frames, wav, scorer: SyncScorer, track=None, detector=None,
                vshift: int = VSHIFT, fps: float = FPS) -> SyncScores:
  """LSE-D / LSE-C of a whole video: face track (dlib), crops for the network, offset search.

  Args:
    frames: the video, uint8 BGR at 25 fps.
    wav: its audio, 16 kHz.
    scorer: from `scorer_for` (reuse it across clips).
    track: a `taem_jax.face.FaceTrack` of `frames` (computed if None). Frames without a face
      take the nearest frame's box.
    detector: `FaceDetector` for the track (built if None).
    vshift: offset search range.
    fps: the video's frame rate; SyncNet's alignment is defined for 25 fps only.

  Shapes:
    frames: (T, H, W, 3) uint8; wav: (n_samples,).
  """
  if abs(float(fps) - FPS) > 1e-3:
    raise UserError(f"SyncNet scores assume 25 fps video, got {fps:g} fps: re-encode with "
                    "ffmpeg -r 25 first (as syncnet_python's pipeline does)")
  frames = np.asarray(frames)
  if track is None:
    track = face.track_faces(frames, detector)
  if len(track) != len(frames):
    raise UserError(f"face track has {len(track)} frames but the video has {len(frames)}")
  return lse(scorer.crops(frames, track), wav, scorer, vshift)
