"""Flax NNX models of the Wav2Lip family (+ checkpoint load/save).

`FAMILIES` maps a checkpoint family name to its class; every class takes only JSON-storable
keyword config (defaults = the official architecture) plus `rngs`, has a class attribute
`family` and a `get_config()` method. See layers.py for the layout conventions that the
PyTorch converter relies on.
"""
from taem_jax.models.syncnet import SyncNetColor, SyncNetV2
from taem_jax.models.wav2lip import Wav2Lip, Wav2LipDiscQual

FAMILIES = {
    "wav2lip": Wav2Lip,
    "syncnet_color": SyncNetColor,
    "disc_qual": Wav2LipDiscQual,
    "syncnet_v2": SyncNetV2,
}


def load_pretrained(path, family=None):
  """Rebuilds a model saved by `pretrained.save_pretrained` (see there)."""
  from taem_jax.models import pretrained  # orbax is imported only when needed
  return pretrained.load_pretrained(path, family=family)


__all__ = ["FAMILIES", "SyncNetColor", "SyncNetV2", "Wav2Lip", "Wav2LipDiscQual",
           "load_pretrained"]
