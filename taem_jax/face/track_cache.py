"""Face tracks computed once per face video and reused (lip-syncing one video to many clips).

A track is stored under a key made of the video's content hash (not its path or date: a file
edited in place is a new video) and every setting that changes the track (detector, stride,
smoothing, which face, this module's format version). Entries are `.npz` files written
atomically in `<TAEM_JAX_HOME>/tracks/`; a missing, unreadable or mismatched entry is
recomputed, never trusted. Tracks are small (about 1.2 KB per frame), so the cache is not
pruned; delete the folder to empty it.

    cache = TrackCache()                       # or TrackCache(folder)
    key = cache.key("talk.mp4", {"stride": 5, "smooth": 5, ...})
    track = cache.get(key) or cache.put(key, track_faces(...))
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import uuid
import zipfile

import numpy as np

from taem_jax import paths
from taem_jax.face.track import BOX_RULES, FaceTrack

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # bump when the tracker's output for the same settings changes
_HASH_BLOCK = 8 << 20


def file_digest(path) -> str:
  """sha256 of a file's bytes (read in 8 MiB blocks: flat memory for long videos)."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    while block := f.read(_HASH_BLOCK):
      h.update(block)
  return h.hexdigest()


def default_dir() -> pathlib.Path:
  return paths.home() / "tracks"


class TrackCache:
  """Face tracks on disk, keyed by video content + tracking settings.

  Args:
    root: the cache folder (created on the first write); default `<TAEM_JAX_HOME>/tracks`.
  """

  def __init__(self, root=None):
    self.root = pathlib.Path(root).expanduser() if root is not None else default_dir()

  def key(self, video_path, settings: dict) -> str:
    """The entry name for `video_path` tracked with `settings` (JSON-serialisable values)."""
    desc = json.dumps({"video": file_digest(video_path), "settings": settings,
                       "format": FORMAT_VERSION}, sort_keys=True)
    return hashlib.sha256(desc.encode()).hexdigest()[:32]

  def _path(self, key: str) -> pathlib.Path:
    return self.root / f"{key}.npz"

  def get(self, key: str) -> FaceTrack | None:
    """The stored track, or None when absent or unreadable (then it is recomputed)."""
    p = self._path(key)
    if not p.is_file():
      return None
    try:
      with np.load(p) as z:
        track = FaceTrack(boxes=z["boxes"], landmarks=z["landmarks"], valid=z["valid"],
                          detected=z["detected"],
                          frame_size=tuple(int(v) for v in z["frame_size"]),
                          rule=str(z["rule"]), smooth=int(z["smooth"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:  # truncated
      log.warning("face-track cache entry %s is unreadable (%s); recomputing it", p, e)
      return None
    n = len(track)
    if not (track.boxes.shape == (n, 4) and track.landmarks.shape == (n, 68, 2)
            and track.detected.shape == (n,) and len(track.frame_size) == 2
            and track.rule in BOX_RULES):
      log.warning("face-track cache entry %s has inconsistent shapes; recomputing it", p)
      return None
    return track

  def put(self, key: str, track: FaceTrack) -> FaceTrack:
    """Stores `track` (atomically; a failure to write is logged, not raised) and returns it."""
    p = self._path(key)
    tmp = p.parent / f".{p.stem}.{os.getpid()}.{uuid.uuid4().hex[:6]}.npz"
    try:
      p.parent.mkdir(parents=True, exist_ok=True)
      np.savez(tmp, boxes=track.boxes, landmarks=track.landmarks, valid=track.valid,
               detected=track.detected, frame_size=np.asarray(track.frame_size, np.int64),
               rule=np.asarray(track.rule), smooth=np.asarray(track.smooth, np.int64))
      os.replace(tmp, p)
    except OSError as e:  # a read-only or full cache folder must not fail the synthesis
      log.warning("could not store the face track in %s (%s)", p, e)
      tmp.unlink(missing_ok=True)
    return track
