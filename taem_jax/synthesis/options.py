"""How a clip is synthesised (`Options`) and the progress-callback type every stage reports to."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

from taem_jax.errors import UserError
from taem_jax.face import PASTE_REGIONS
from taem_jax.models.taem import MAX_PHONEME_FRAMES
from taem_jax.rates import VIDEO_FPS

# progress(stage, advance, total): `advance` more units of `stage` are done, of `total` (None:
# unknown). Stages: "align" (editing), "detect", "text", "render".
Progress = Callable[[str, int, "int | None"], None]


def no_progress(stage: str, advance: int, total: int | None) -> None:
  """The default `Progress`: reports nowhere."""
  del stage, advance, total


@dataclasses.dataclass(frozen=True)
class Options:
  """How a clip is synthesised (the CLI flags map one to one)."""
  batch_size: int = 64  # generator batch (and frames per streamed chunk)
  detect_stride: int = 5  # run the face detector every k frames (1 = every frame)
  smooth: int = 5  # face-box moving average window in frames
  pads: tuple[int, int, int, int] = (0, 10, 0, 0)  # crop pads (top, bottom, left, right)
  paste: str = "lower"  # "lower": mouth, jaw and chin from the generator; "box": the whole box
  feather: float = 0.0  # paste="box" blend border, fraction of the box side (0 = hard paste)
  face_index: int | None = None  # None: the largest face; k: the k-th face from the left
  image_fps: float = VIDEO_FPS  # output frame rate for a still image with audio
  voice: str = "en-us"  # espeak-ng voice for `speech`
  max_chunk_phonemes: int = 96  # text is split at pauses into TAEM calls of at most this
  max_phoneme_frames: int = MAX_PHONEME_FRAMES  # cap on one predicted duration (100 fps frames)
  block_bytes: int = 256 << 20  # memory for frames read backwards (ping-pong loops)
  track_cache: bool = True  # reuse a face video's track (`taem_jax.face.track_cache`)
  pipeline: bool = True  # overlap decode, detect/crop, generate, paste and encode (threads)

  def __post_init__(self):
    if self.paste not in PASTE_REGIONS:
      raise UserError(f"paste must be one of {', '.join(PASTE_REGIONS)}, got {self.paste!r}")
