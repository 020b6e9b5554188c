"""Turns one corpus clip (video + audio + transcript/alignment) into one training example.

The same front ends serve training, inference and evaluation, so a dataset example is made of
exactly what the models see:

| field | how | shape / type |
|---|---|---|
| `faces` | `face.track_faces` (dlib, detection every `detect_stride` frames), Wav2Lip box padding (bottom +10 px), 96x96 crops, JPEG | (T,) JPEG bytes of (96, 96, 3) BGR |
| `mel` | `audio.melspectrogram` (Wav2Lip, 80 fps) of the clip's audio cut/padded to T / 25 s | (3.2 T + 1, 80) float32 |
| `phonemes` | ARPAbet ids from the vocabulary (stored in the dataset metadata) | (L,) int32 |
| `durations` | 100 fps frames per phoneme, summing to exactly 4 T (TAEM's l_a = 4 l_v) | (L,) int32 |
| `speaker_embedding` | `face.SpeakerEmbedder` of one random frame (fixed per clip id) | (D,) float32 |
| `z_a` (optional) | frozen Wav2Lip audio encoder on `audio.mel_windows` | (T, D) float32, D = 512 at width 1 |

Durations come, in order of preference, from phone labels shipped with the corpus (TCD-TIMIT's
HTK label file, `Clip.phones`), from a phone-level TextGrid (the Montreal Forced
Aligner's format; the sample corpus writes its exact synthesis timings in it), from word spans
(GRID `.align`) plus the forced aligner (`text.aligner.align`) mapped onto those spans, or from
the transcript alone plus the forced aligner. Without a TextGrid the phoneme sequence is the
text front end's (`g2p.g2p_words` of the transcript), the one synthesis uses on typed text.

Frame rate: clips whose video is not 25 fps (TCD-TIMIT: 29.97) are resampled to 25 fps by
nearest-frame selection (frame k shows the source frame nearest to k / 25 s), the usual practice
for Wav2Lip, which is trained at 25 fps; audio is untouched, so sync is kept.

A clip that cannot be read (corrupt video, unreadable audio), has no face in more than
`max_missing_faces` of its frames, or cannot be aligned raises `ClipError`; the builders skip,
log and count those. Faces missing in a few frames are filled with the nearest frame's crop.
"""
import dataclasses
import hashlib
import os
import pathlib
import uuid
import zlib

import cv2
import jax
import numpy as np

from taem_jax import audio, face, video
from taem_jax.errors import UserError
from taem_jax.models.targets import DEFAULT_BACKBONE, backbone_class
from taem_jax.rates import (DUR_FRAMES_PER_VIDEO_FRAME, FACE_SIZE, SAMPLE_RATE,
                            SAMPLES_PER_FRAME, VIDEO_FPS)
from taem_jax.text import aligner, g2p
from taem_jax.text.grid_grammar import is_sentence as grid_grammar_of
from taem_jax.text import alignments as A
from taem_jax.text import phonemes as P



class ClipError(Exception):
  """A clip that cannot be turned into an example; `kind` is the count bucket."""

  def __init__(self, kind: str, message: str):
    super().__init__(message)
    self.kind = kind


@dataclasses.dataclass(frozen=True)
class Clip:
  """One utterance of a corpus, as found on disk.

  Attributes:
    uid: unique id within the corpus, e.g. "s1/bbaf2n" (also the example key).
    speaker: speaker id (for per-speaker splits; LRS2's folder id).
    video: the video file.
    audio: a wav file, or None to take the audio track of `video`.
    text: the transcript (words).
    textgrid: a phone-level TextGrid (MFA format) or None.
    word_align: a GRID `.align` word alignment or None.
    grid_grammar: words follow GRID's grammar (letter slot read as letter names).
    phones: phone intervals given by the corpus (TCD-TIMIT's HTK labels, project symbols,
      seconds); preferred over every other source.
    words: word intervals given by the corpus (LRS2 pretrain), pauses as `sil`/`sp`, seconds
      from the start of `span`; used like `word_align`.
    span: (first, end) 25 fps frames of the video this clip is (a piece of a longer
      recording), None for the whole video.
  """
  uid: str
  speaker: str
  video: pathlib.Path
  audio: pathlib.Path | None = None
  text: str = ""
  textgrid: pathlib.Path | None = None
  word_align: pathlib.Path | None = None
  grid_grammar: bool = False
  phones: tuple[A.Interval, ...] | None = None
  words: tuple[A.Interval, ...] | None = None
  span: tuple[int, int] | None = None

  @property
  def cache_id(self) -> str:
    """The per-clip cache's name for it: the uid plus a digest of its label sources, so a clip
    whose labels changed (a label file added, a TextGrid edited) is prepared again."""
    h = hashlib.sha1(repr((self.text, self.grid_grammar, self.phones, self.words, self.span,
                           self.audio is None)).encode())
    for f in (self.textgrid, self.word_align):
      h.update(pathlib.Path(f).read_bytes() if f is not None and pathlib.Path(f).is_file()
               else b"-")
    return f"{self.uid}#{h.hexdigest()[:10]}"


def resample_indices(n_src: int, src_fps: float, fps: float = VIDEO_FPS) -> np.ndarray:
  """Source frame shown at each output frame when converting src_fps -> fps (nearest frame).

  The output has round(n_src * fps / src_fps) frames; frame k maps to round(k * src_fps / fps).

  Shapes:
    returns (n_out,) int64 in [0, n_src).
  """
  if abs(src_fps - fps) < 1e-3:
    return np.arange(n_src)
  n_out = max(1, int(round(n_src * fps / src_fps)))
  return np.minimum(np.round(np.arange(n_out) * src_fps / fps).astype(np.int64), n_src - 1)


def frames_at_video_fps(frames: np.ndarray, fps: float) -> np.ndarray:
  """Decoded frames at `fps` -> the 25 fps frames every example (and evaluation's ground truth)
  is made of (`resample_indices`). Shapes: (N, H, W, 3) -> (round(N * 25 / fps), H, W, 3)."""
  return frames[resample_indices(len(frames), fps)]


def fit_length(wav: np.ndarray, n: int) -> np.ndarray:
  """Cuts or zero-pads a waveform to exactly n samples."""
  if len(wav) >= n:
    return wav[:n]
  return np.pad(wav, (0, n - len(wav)))


def encode_jpeg(img: np.ndarray, quality: int = 95) -> bytes:
  ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
  if not ok:
    raise RuntimeError("JPEG encoding failed")
  return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
  """JPEG bytes -> (H, W, 3) uint8 BGR."""
  img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
  if img is None:
    raise ValueError("not a decodable JPEG")
  return img


def _fill_missing(crops: np.ndarray, valid: np.ndarray) -> np.ndarray:
  """Replaces crops of frames without a face by the nearest frame's crop that has one."""
  if valid.all():
    return crops
  idx = np.flatnonzero(valid)
  nearest = idx[np.abs(np.arange(len(crops))[:, None] - idx[None]).argmin(1)]
  return crops[nearest]


def _seed_of(uid: str) -> int:
  return zlib.crc32(uid.encode("utf-8"))


class FrontEnd:
  """Runs the front ends on clips. Build once per dataset (models load lazily).

  Args:
    vocab: a `taem_jax.text.PhonemeVocab`.
    embedder: "dlib" or "arcface" (speaker embedding).
    arcface_path: ArcFace ONNX file for embedder="arcface".
    wav2lip_dir: the backbone's checkpoint folder (a converted Wav2Lip); if given, `z_a` is
      computed (and `z_a_target()` says by which audio encoder).
    detect_stride: face detector runs every this many frames (tracked in between).
    max_missing_faces: largest fraction of frames allowed without a face.
    jpeg_quality: quality of the stored face crops.
    backbone: the `targets.BACKBONES` name whose frozen encoder makes z_a.
  """

  def __init__(self, vocab, *, embedder: str = "dlib", arcface_path=None, wav2lip_dir=None,
               detect_stride: int = 5, max_missing_faces: float = 0.2, jpeg_quality: int = 95,
               backbone: str = DEFAULT_BACKBONE):
    self.vocab = vocab
    self.backbone = backbone_class(backbone).name
    self.embedder_kind = embedder
    self.arcface_path = arcface_path
    self.wav2lip_dir = wav2lip_dir
    self.detect_stride = int(detect_stride)
    self.max_missing_faces = float(max_missing_faces)
    self.jpeg_quality = int(jpeg_quality)
    self._detector = None
    self._embedder = None
    self._target = None
    self._encode = None
    self._record = None

  # -- lazily built models ---------------------------------------------------------------------
  @property
  def detector(self):
    if self._detector is None:
      self._detector = face.FaceDetector()
    return self._detector

  @property
  def embedder(self):
    if self._embedder is None:
      self._embedder = face.SpeakerEmbedder(self.embedder_kind, self.arcface_path,
                                            detector=self.detector)
    return self._embedder

  def _load_target(self) -> None:
    if self._target is None:
      self._target = backbone_class(self.backbone).load(self.wav2lip_dir)
      self._record = self._target.record(self.wav2lip_dir)
      self._encode = jax.jit(self._target.encode)

  def z_a_target(self) -> dict | None:
    """The backbone's `record` (name, fingerprint, source) of what computes z_a (loads it), None without one."""
    if self.wav2lip_dir is None:
      return None
    self._load_target()
    return dict(self._record)

  def _za(self, wav: np.ndarray, n_frames: int) -> np.ndarray:
    self._load_target()
    # Pad the frame count to whole seconds so clips of similar length share one compile.
    n_pad = int(np.ceil(n_frames / VIDEO_FPS) * VIDEO_FPS)
    win = self._target.audio_features(wav, n_frames)
    win = np.concatenate([win, np.repeat(win[-1:], n_pad - n_frames, 0)])
    z = np.asarray(self._encode(win[None]))[0, :n_frames]
    return z.astype(np.float32)

  # -- the steps -------------------------------------------------------------------------------
  def _frames(self, clip: Clip):
    try:
      frames, fps = video.read_video(clip.video)
    except (UserError, OSError, ValueError, RuntimeError) as e:
      raise ClipError("unreadable_video", f"{clip.video}: {e}") from None
    if len(frames) == 0:
      raise ClipError("unreadable_video", f"{clip.video}: no frames")
    frames = frames_at_video_fps(frames, fps)
    if clip.span is not None:
      frames = frames[clip.span[0]:clip.span[1]]
      if len(frames) == 0:
        raise ClipError("unreadable_video", f"{clip.video}: no frames in {clip.span}")
    return frames

  def _audio(self, clip: Clip, n_frames: int) -> np.ndarray:
    need = n_frames * SAMPLES_PER_FRAME
    try:
      wav = None
      if clip.audio is not None:
        wav = self._cut(clip, audio.load_audio(clip.audio, sr=SAMPLE_RATE))
        # A separate file is used only if it covers the whole clip (GRID's separately
        # distributed wavs are shorter than the videos); otherwise the video's own track.
        if len(wav) < need - SAMPLES_PER_FRAME:
          try:
            own = self._cut(clip, video.extract_audio(clip.video, sr=SAMPLE_RATE))
          except (UserError, OSError, ValueError, RuntimeError, EOFError):
            own = None  # no usable track in the video: keep the separate file
          if own is not None and len(own) > len(wav):
            wav = own
      if wav is None:
        wav = self._cut(clip, video.extract_audio(clip.video, sr=SAMPLE_RATE))
    except (UserError, OSError, ValueError, RuntimeError, EOFError) as e:
      raise ClipError("unreadable_audio", f"{clip.audio or clip.video}: {e}") from None
    if len(wav) < SAMPLES_PER_FRAME:
      raise ClipError("unreadable_audio", f"{clip.audio or clip.video}: audio too short")
    return fit_length(np.asarray(wav, np.float32), need)

  @staticmethod
  def _cut(clip: Clip, wav: np.ndarray) -> np.ndarray:
    return wav if clip.span is None else wav[clip.span[0] * SAMPLES_PER_FRAME:]

  def _faces(self, clip: Clip, frames: np.ndarray):
    try:
      track = face.track_faces(frames, self.detector, stride=self.detect_stride,
                               source=str(clip.video))
    except UserError as e:
      raise ClipError("no_face", str(e)) from None
    missing = track.num_missing / max(1, len(track))
    if missing > self.max_missing_faces:
      raise ClipError("no_face", f"{clip.video}: no face in {100 * missing:.0f}% of the frames")
    boxes = track.crop_boxes(pads=(0, 10, 0, 0))
    crops = face.crop_faces(frames, boxes, FACE_SIZE)
    return track, _fill_missing(crops, track.valid)

  def _durations(self, clip: Clip, wav: np.ndarray, n_frames: int):
    """(phoneme labels, durations summing to 4 n_frames)."""
    total = DUR_FRAMES_PER_VIDEO_FRAME * n_frames
    stress = self.vocab.stress
    try:
      if clip.phones is not None:
        return A.to_frame_durations(list(clip.phones), total)
      if clip.textgrid is not None:
        phones = A.mfa_phones(A.read_textgrid(clip.textgrid, "phones"), stress=stress)
        return A.to_frame_durations(phones, total)
      if clip.word_align is not None or clip.words is not None:
        words = (list(clip.words) if clip.words is not None
                 else A.read_grid_align(clip.word_align))
        spoken = [iv.label for iv in words if not _is_pause(iv.label)]
        units = pronounce_transcript(spoken, clip.grid_grammar)
        # The corpus's word spans, its inner pauses shared out between the neighbouring words
        # (the labels keep only the pauses the text gives, as at inference: grid_grammar).
        spans = A.spans_for_units(words, units)
        ali = aligner.align(wav, units, spans=spans)
      else:
        if not clip.text.strip():
          raise ClipError("alignment", f"{clip.uid}: no transcript")
        ali = aligner.align_text(wav, clip.text)
      intervals = A.durations_to_intervals(ali.labels, ali.durations)
      labels, d = A.to_frame_durations(intervals, total)
      return [P.normalize_symbol(l, stress) if not P.is_pause(l) else l for l in labels], d
    except UserError as e:
      raise ClipError("alignment", f"{clip.uid}: {e}") from None

  def process(self, clip: Clip) -> dict:
    """The example of one clip (see the module docstring for the fields).

    Raises:
      ClipError: the clip is skipped (unreadable, no face, not alignable).
    """
    frames = self._frames(clip)
    n = len(frames)
    wav = self._audio(clip, n)
    track, crops = self._faces(clip, frames)
    labels, durations = self._durations(clip, wav, n)
    mel = audio.melspectrogram(wav)
    rng = np.random.default_rng(_seed_of(clip.uid))
    valid = np.flatnonzero(track.valid)
    t = int(valid[rng.integers(len(valid))])
    emb = self.embedder.embed(frames[t], track.face(t)).astype(np.float32)
    ex = {
        "id": clip.uid,
        "speaker": clip.speaker,
        "text": clip.text,
        "phonemes": np.asarray(self.vocab.encode(labels, strict=False), np.int32),
        "durations": np.asarray(durations, np.int32),
        "mel": mel.astype(np.float32),
        "faces": [encode_jpeg(c, self.jpeg_quality) for c in crops],
        "n_frames": np.int32(n),
        "speaker_embedding": emb,
    }
    if self.wav2lip_dir is not None:
      ex["z_a"] = self._za(wav, n)
    return ex


def _is_pause(label: str) -> bool:
  return P.is_pause(label)


def pronounce_transcript(words, grid_grammar: bool):
  """The transcript's `g2p.Word`s, edge `sil` included: the text front end that synthesis uses
  on typed text, so the labels are what a user typing the transcript gets."""
  if grid_grammar and not grid_grammar_of(words):
    raise UserError(f"{' '.join(words)!r} is not a GRID sentence")
  return g2p.g2p_words(" ".join(words))


# -- per-clip cache (resumable preparation) -------------------------------------------------------

def _cache_name(uid: str) -> str:
  return uid.replace(os.sep, "__").replace("/", "__")


def save_cached(cache_dir: pathlib.Path, uid: str, example: dict) -> None:
  """Writes an example to `<cache_dir>/<uid>.npz` (atomically)."""
  faces = example["faces"]
  lengths = np.array([len(b) for b in faces], np.int64)
  arrays = {k: np.asarray(v) for k, v in example.items() if k not in ("faces",)}
  arrays["faces_bytes"] = np.frombuffer(b"".join(faces), np.uint8)
  arrays["faces_lengths"] = lengths
  path = cache_dir / (_cache_name(uid) + ".npz")
  tmp = cache_dir / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.part"
  with open(tmp, "wb") as f:
    np.savez(f, **arrays)
  os.replace(tmp, path)


def load_cached(cache_dir: pathlib.Path, uid: str) -> dict | None:
  """The cached example of `uid`, or None (missing or unreadable cache entry)."""
  path = cache_dir / (_cache_name(uid) + ".npz")
  if not path.exists():
    return None
  try:
    with np.load(path) as z:
      d = {k: z[k] for k in z.files}
  except (OSError, ValueError, EOFError):
    return None
  buf, lengths = d.pop("faces_bytes").tobytes(), d.pop("faces_lengths")
  ends = np.cumsum(lengths)
  d["faces"] = [buf[e - l:e] for e, l in zip(ends, lengths)]
  for k in ("id", "speaker", "text"):
    d[k] = str(d[k])
  d["n_frames"] = np.int32(d["n_frames"])
  return d


def save_skip(cache_dir: pathlib.Path, uid: str, kind: str, message: str) -> None:
  path = cache_dir / (_cache_name(uid) + ".skip")
  tmp = cache_dir / f".{path.name}.{os.getpid()}.part"
  tmp.write_text(f"{kind}\n{message}\n", encoding="utf-8")
  os.replace(tmp, path)


def load_skip(cache_dir: pathlib.Path, uid: str) -> tuple[str, str] | None:
  path = cache_dir / (_cache_name(uid) + ".skip")
  if not path.exists():
    return None
  kind, _, message = path.read_text(encoding="utf-8").partition("\n")
  return kind, message.strip()



# -- one clip, cached, in any process -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FrontEndSpec:
  """The arguments of a `FrontEnd`, picklable, so worker processes build the very same one.

  vocab is a `PhonemeVocab`; the others are `FrontEnd`'s keyword arguments.
  """
  vocab: object
  embedder: str = "dlib"
  arcface_path: str | None = None
  wav2lip_dir: str | None = None
  detect_stride: int = 5
  backbone: str = DEFAULT_BACKBONE

  def build(self) -> FrontEnd:
    return FrontEnd(self.vocab, embedder=self.embedder, arcface_path=self.arcface_path,
                    wav2lip_dir=self.wav2lip_dir, detect_stride=self.detect_stride,
                    backbone=self.backbone)


def prepare_clip(front: FrontEnd, cache_dir: pathlib.Path, clip: Clip):
  """The example of `clip` from the cache, or made by `front` and cached.

  A clip that cannot be used is remembered in the cache as skipped (with its reason), so a
  resumed build does not try it again.

  Returns:
    (example, None), or (None, (kind, message)) for a skipped clip.
  """
  key = clip.cache_id
  ex = load_cached(cache_dir, key)
  if ex is not None:
    return ex, None
  skip = load_skip(cache_dir, key)
  if skip is not None:
    return None, skip
  try:
    ex = front.process(clip)
  except ClipError as e:
    save_skip(cache_dir, key, e.kind, str(e))
    return None, (e.kind, str(e))
  save_cached(cache_dir, key, ex)
  return ex, None
