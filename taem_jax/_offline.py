"""Neutralises the network calls that third-party packages make on their own.

* g2p_en calls `nltk.download(...)` at import time; offline this prints errors and wastes
  seconds, so `quiet_nltk()` replaces `nltk.download` with a no-op before g2p_en is imported.
* insightface's `FaceAnalysis(name=...)` and `model_zoo.get_model(name)` try to fetch model
  packs from the internet; `no_insightface_downloads()` makes those paths raise a clear error.

Every module of this project that imports g2p_en or insightface calls these first.
"""
import functools

from taem_jax.errors import UserError


@functools.cache
def quiet_nltk():
  """Makes `nltk.download` a no-op returning False (the project ships its own data)."""
  import nltk  # pylint: disable=g-import-not-at-top

  nltk.download = lambda *args, **kwargs: False
  return nltk


@functools.cache
def no_insightface_downloads():
  """Makes insightface's model-pack download fail with a UserError instead of a network call."""
  from insightface.utils import storage  # pylint: disable=g-import-not-at-top

  def _refuse(sub_dir, name, *args, **kwargs):
    raise UserError(
        f"insightface wanted to download model pack '{name}'; this project is offline: "
        "pass the path of an ArcFace .onnx file instead")

  storage.download = _refuse
  storage.ensure_available = _refuse
  return storage
