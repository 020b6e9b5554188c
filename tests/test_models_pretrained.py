"""save_pretrained / load_pretrained round trip and every refusal."""
import json
import pathlib
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from taem_jax import models
from taem_jax.errors import UserError
from taem_jax.models import pretrained


def _flat(model):
  return {p: np.asarray(v[...]) for p, v in nnx.to_flat_state(nnx.state(model))}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  model = models.create("wav2lip", seed=5, width=0.0625)
  # non-trivial BN running stats so that they are really round-tripped
  model.face_encoder_blocks[1][0].bn.mean[...] = np.linspace(-1, 1, 2).astype(np.float32)
  model.audio_encoder[3].bn.var[...] = np.full((4,), 3.5, np.float32)
  dst = tmp_path_factory.mktemp("ckpt") / "w2l"
  out = pretrained.save_pretrained(model, dst, family="wav2lip", config=model.get_config(),
                                   extra_meta={"source_sha256": "ab" * 32, "key_count": 352})
  return model, pathlib.Path(out)


def test_round_trip(saved):
  model, d = saved
  assert sorted(p.name for p in d.iterdir()) == ["state", "taem_jax.json"]
  assert not [p for p in d.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers
  meta = json.loads((d / "taem_jax.json").read_text())
  assert meta["family"] == "wav2lip" and meta["config"]["width"] == 0.0625
  assert meta["source_sha256"] == "ab" * 32 and meta["key_count"] == 352
  assert meta["num_params"] == sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  loaded = models.load_pretrained(d)
  assert isinstance(loaded, models.Wav2Lip) and loaded.family == "wav2lip"
  assert loaded.get_config() == model.get_config()
  a, b = _flat(model), _flat(loaded)
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=str(k))
  # loaded in eval mode
  assert loaded.face_encoder_blocks[0][0].bn.use_running_average
  assert models.load_pretrained(d, family="wav2lip").family == "wav2lip"


def test_min_channels_round_trips(tmp_path):
  m = models.create("wav2lip", seed=4, width=1 / 16, min_channels=8)
  d = pretrained.save_pretrained(m, tmp_path / "w", family="wav2lip", config=m.get_config())
  loaded = models.load_pretrained(d, family="wav2lip")
  assert loaded.get_config()["min_channels"] == 8
  np.testing.assert_array_equal(np.asarray(loaded.output_block[1].kernel[...]),
                                np.asarray(m.output_block[1].kernel[...]))


def test_other_families_round_trip(tmp_path):
  m = models.create("disc_qual", seed=2, width=0.0625)
  d = pretrained.save_pretrained(m, tmp_path / "disc", family="disc_qual",
                                 config=m.get_config())
  loaded = models.load_pretrained(d, family="disc_qual")
  assert isinstance(loaded, models.Wav2LipDiscQual)
  np.testing.assert_array_equal(np.asarray(loaded.binary_pred[0].kernel[...]),
                                np.asarray(m.binary_pred[0].kernel[...]))


def test_refuses_wrong_family(saved):
  _, d = saved
  with pytest.raises(UserError, match=r"holds a wav2lip checkpoint, expected syncnet_color"):
    models.load_pretrained(d, family="syncnet_color")


def test_refuses_missing_dir_and_missing_sidecar(tmp_path):
  with pytest.raises(UserError, match="not found"):
    models.load_pretrained(tmp_path / "nope")
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="no taem_jax.json"):
    models.load_pretrained(tmp_path / "empty")
  f = tmp_path / "file.pth"
  f.write_bytes(b"x")
  with pytest.raises(UserError, match="not a taem_jax checkpoint directory"):
    models.load_pretrained(f)


def _copy(src, dst):
  shutil.copytree(src, dst)
  return dst


def test_refuses_unknown_family_and_bad_sidecar(saved, tmp_path):
  _, d = saved
  c = _copy(d, tmp_path / "c1")
  meta = json.loads((c / "taem_jax.json").read_text())
  meta["family"] = "fastspeech9"
  (c / "taem_jax.json").write_text(json.dumps(meta))
  with pytest.raises(UserError, match="unknown model family 'fastspeech9'"):
    models.load_pretrained(c)
  (c / "taem_jax.json").write_text('{"family": "wav2l')  # truncated
  with pytest.raises(UserError, match="corrupted"):
    models.load_pretrained(c)


def test_refuses_corrupted_or_partial_state(saved, tmp_path):
  _, d = saved
  # partial: the state directory is gone
  c = _copy(d, tmp_path / "c2")
  shutil.rmtree(c / "state")
  with pytest.raises(UserError, match="partial or corrupted"):
    models.load_pretrained(c)
  # corrupted: every data file of the checkpoint truncated
  c = _copy(d, tmp_path / "c3")
  files = [p for p in (c / "state").rglob("*") if p.is_file() and p.stat().st_size > 0]
  assert files
  for p in files:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
  with pytest.raises(UserError, match="cannot restore|corrupted"):
    models.load_pretrained(c)
  # sidecar config that does not fit the stored arrays
  c = _copy(d, tmp_path / "c4")
  meta = json.loads((c / "taem_jax.json").read_text())
  meta["config"]["width"] = 0.125
  (c / "taem_jax.json").write_text(json.dumps(meta))
  with pytest.raises(UserError, match="cannot restore|do not match"):
    models.load_pretrained(c)


def test_save_refusals(saved, tmp_path):
  model, d = saved
  with pytest.raises(UserError, match="already exists"):
    pretrained.save_pretrained(model, d, family="wav2lip", config=model.get_config())
  with pytest.raises(ValueError, match="not a syncnet_color"):
    pretrained.save_pretrained(model, tmp_path / "x", family="syncnet_color", config={})
  with pytest.raises(ValueError, match="unknown family"):
    pretrained.save_pretrained(model, tmp_path / "x", family="nope", config={})
  assert not (tmp_path / "x").exists()
  # overwrite replaces atomically
  out = pretrained.save_pretrained(model, tmp_path / "o", family="wav2lip",
                                   config=model.get_config())
  out2 = pretrained.save_pretrained(model, tmp_path / "o", family="wav2lip",
                                    config=model.get_config(), extra_meta={"v": 2},
                                    overwrite=True)
  assert out == out2
  assert json.loads((pathlib.Path(out) / "taem_jax.json").read_text())["v"] == 2
  assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]
