"""The project's neutralisers for third-party downloads (taem_jax.offline)."""
import pytest

from taem_jax import offline
from taem_jax.errors import UserError


def test_nltk_download_is_a_noop():
  nltk = offline.quiet_nltk()
  assert nltk.download("cmudict") is False


def test_insightface_model_packs_refuse_clearly():
  offline.no_insightface_downloads()
  from insightface.app import face_analysis
  from insightface.model_zoo import model_zoo
  from insightface.utils import storage
  with pytest.raises(UserError, match="offline"):
    storage.ensure_available("models", "buffalo_l")
  with pytest.raises(UserError, match="offline"):
    face_analysis.ensure_available("models", "buffalo_l")
  with pytest.raises(UserError, match="offline"):
    model_zoo.download_onnx("models", "w600k_r50.onnx")
