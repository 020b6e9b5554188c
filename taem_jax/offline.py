"""Neutralises the network calls that third-party packages make on their own.

* g2p_en calls `nltk.download(...)` at import time; offline this prints errors and wastes
  seconds, so `quiet_nltk()` replaces `nltk.download` with a no-op before g2p_en is imported.
* insightface's `FaceAnalysis(name=...)` and `model_zoo.get_model(name)` try to fetch model
  packs from the internet; `no_insightface_downloads()` makes those paths raise a clear error.

Every module of this project that imports g2p_en or insightface calls these first.
"""
import functools
import importlib
import sys

from taem_jax.errors import UserError


@functools.cache
def quiet_nltk():
  """Makes `nltk.download` a no-op returning False (the project ships its own data)."""
  import nltk  # lazy: NLTK is imported only to be silenced before g2p_en loads it

  nltk.download = lambda *args, **kwargs: False
  return nltk


@functools.cache
def no_insightface_downloads():
  """Makes insightface's model downloads raise a UserError instead of reaching the network.

  insightface imports its download helpers by value into several modules (utils, app,
  model_zoo), so every loaded insightface module's reference to them is replaced.
  """
  from insightface.utils import storage  # lazy: insightface is optional and slow to import

  def _refuse(*args, **kwargs):
    del kwargs
    what = " ".join(str(a) for a in args[:2])
    raise UserError(
        f"insightface wanted to download '{what}'; this project works offline: give the path "
        "of an ArcFace .onnx file instead (see `python -m taem_jax.cli.doctor`)")

  names = ("download", "download_file", "download_onnx", "ensure_available")
  originals = {id(getattr(storage, n)) for n in names if hasattr(storage, n)}
  for extra in ("insightface.app.face_analysis", "insightface.model_zoo.model_zoo"):
    try:
      importlib.import_module(extra)
    except Exception:  # pylint: disable=broad-except
      pass  # an optional part that does not import here cannot download either
  for mod_name, mod in list(sys.modules.items()):
    if not mod_name.startswith("insightface") or mod is None:
      continue
    for n in names:
      if id(getattr(mod, n, None)) in originals:
        setattr(mod, n, _refuse)
  return storage
