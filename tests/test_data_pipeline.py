"""grain pipeline: shapes, bucketing, determinism, sharding, checkpointed state (fake examples)."""
import cv2
import numpy as np
import pytest

from taem_jax.data import pipeline as P
from taem_jax.errors import UserError


def _fake_source(n=23, seed=0, with_za=False):
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    f = int(rng.integers(10, 70))
    L = int(rng.integers(3, 30))
    face = np.full((96, 96, 3), i * 10 % 255, np.uint8)
    jpg = cv2.imencode(".jpg", face)[1].tobytes()
    d = rng.multinomial(4 * f - L, np.ones(L) / L) + 1
    ex = {"id": f"utt{i}", "n_frames": np.int32(f), "phonemes": rng.integers(2, 40, L),
          "durations": d.astype(np.int32), "mel": rng.normal(size=(1 + 16 * f // 5, 80)),
          "faces": [jpg] * f, "speaker_embedding": np.full(128, i, np.float32)}
    if with_za:
      ex["z_a"] = np.full((f, 512), i, np.float32)
    out.append(ex)
  return out


BUCKETS = ((32, 16), (72, 32))


def _cfg(**kw):
  base = dict(batch_size=2, buckets=BUCKETS, process_index=0, process_count=1, num_epochs=2)
  base.update(kw)
  return P.PipelineConfig(**base)


def _ids(batch):
  # speaker embedding holds the example index; -1 for filler rows
  return [int(s[0]) if v else -1 for s, v in zip(batch["speaker"], batch["valid"])]


def test_batch_fields_shapes_and_padding():
  src = _fake_source(with_za=True)
  it = P.make_iterator(src, _cfg())
  b = next(it)
  lv, lt = BUCKETS[0] if b["frame_mask"].shape[1] == BUCKETS[0][0] else BUCKETS[1]
  assert b["phonemes"].shape == (2, lt) and b["phonemes"].dtype == np.int32
  assert b["durations"].shape == (2, lt) and b["durations"].dtype == np.int32
  assert b["mel_windows"].shape == (2, lv, 80, 16, 1) and b["mel_windows"].dtype == np.float32
  assert b["faces"].shape == (2, lv, 96, 96, 3) and b["faces"].dtype == np.uint8
  assert b["z_a"].shape == (2, lv, 512)
  assert b["speaker"].shape == (2, 128)
  for k in range(2):
    i = _ids(b)[k]
    ex = src[i]
    n, L = int(ex["n_frames"]), len(ex["phonemes"])
    assert b["n_frames"][k] == n and b["frame_mask"][k].sum() == n
    assert b["phoneme_mask"][k].sum() == L and (b["phonemes"][k, L:] == 0).all()
    assert b["durations"][k].sum() == 4 * n
    assert (b["mel_windows"][k, n:] == -4.0).all()
    assert (b["faces"][k, n:] == 0).all() and abs(int(b["faces"][k, 0, 0, 0, 0]) - i * 10 % 255) < 3
    assert (b["z_a"][k, :n] == i).all() and (b["z_a"][k, n:] == 0).all()


def test_every_example_in_its_smallest_bucket_once_per_epoch():
  src = _fake_source()
  lengths = np.array([(int(e["n_frames"]), len(e["phonemes"])) for e in src])
  cfg = _cfg(num_epochs=1, drop_remainder=False, shuffle=False)
  ds, plan = P.make_dataset(src, cfg, lengths=lengths)
  seen = []
  for b in ds:
    lv = b["frame_mask"].shape[1]
    for i in _ids(b):
      if i >= 0:
        seen.append(i)
        f, L = lengths[i]
        smallest = next(bv for bv, bt in BUCKETS if f <= bv and L <= bt)
        assert lv == smallest
  too_long = [i for i, (f, L) in enumerate(lengths) if f > 72 or L > 32]
  assert sorted(seen) == [i for i in range(len(src)) if i not in too_long]
  assert plan.dropped == len(too_long)


def test_deterministic_and_epochs_differ():
  src = _fake_source()
  a = [_ids(b) for b in P.make_iterator(src, _cfg(seed=3))]
  b = [_ids(b) for b in P.make_iterator(src, _cfg(seed=3))]
  c = [_ids(b) for b in P.make_iterator(src, _cfg(seed=4))]
  assert a == b and a != c
  half = len(a) // 2
  assert a[:half] != a[half:]  # epoch 2 is reshuffled


def test_state_restore_resumes_same_order():
  src = _fake_source()
  it = P.make_iterator(src, _cfg(seed=1))
  for _ in range(3):
    next(it)
  state = it.get_state()
  rest = [_ids(b) for b in it]
  it2 = P.make_iterator(src, _cfg(seed=1))
  it2.set_state(state)
  assert [_ids(b) for b in it2] == rest


def test_process_shards_are_disjoint_and_same_bucket():
  src = _fake_source(n=40)
  runs = [list(P.make_iterator(src, _cfg(process_index=p, process_count=2, num_epochs=1)))
          for p in range(2)]
  assert len(runs[0]) == len(runs[1]) > 0
  for b0, b1 in zip(*runs):
    assert b0["frame_mask"].shape == b1["frame_mask"].shape  # same static shape every step
    assert not set(_ids(b0)) & set(_ids(b1))


def test_skip_face_decoding():
  b = next(P.make_iterator(_fake_source(), _cfg(decode_faces=False)))
  assert "faces" not in b and "mel_windows" in b


def test_bad_config_messages():
  with pytest.raises(UserError, match="no complete batch"):
    P.make_iterator(_fake_source(n=3), _cfg(batch_size=8))
  with pytest.raises(UserError, match="increasing"):
    P.make_iterator(_fake_source(), _cfg(buckets=((72, 32), (32, 16))))
  with pytest.raises(UserError, match="not a built dataset"):
    P.open_split("/nonexistent/grid/dlib/1.0.0", "train")
