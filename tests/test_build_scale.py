"""Builds that scale out: N worker processes and Apache Beam give the plain build's examples.

One tiny sample corpus (phone timings from its TextGrids, so no aligner is involved) with one
corrupt clip is built three ways, each with its own cache: in this process, by 2 spawned
workers, and on Beam's DirectRunner with 2 worker processes. Every feature of every example
is compared bit for bit, in the order the files hold them, and so are the skip counts.
"""
import concurrent.futures
import concurrent.futures.process
import importlib.util
import pathlib
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds  # noqa: TID253 - these tests drive TFDS builders

from taem_jax.data import corpus, prepare
from taem_jax.data.grid import grid_dataset_builder as grid
from taem_jax.data.sample.generate import SampleCorpusConfig, generate_corpus
from taem_jax.errors import UserError
from taem_jax.text import PhonemeVocab

REPO = pathlib.Path(__file__).resolve().parents[1]
TINY = SampleCorpusConfig(speakers=2, utterances=2, seed=3, frame_size=160)


def _load_cli():
  spec = importlib.util.spec_from_file_location("build_dataset_cli",
                                                REPO / "experiments" / "build_dataset.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
  root = tmp_path_factory.mktemp("sample")
  generate_corpus(root, TINY)
  bad = sorted((root / "s2").glob("*.mp4"))[-1]
  bad.write_bytes(b"\x00not a video" * 64)  # skipped as unreadable_video by every build
  return root


def _build(manual, data_dir, **kwargs):
  cfg = kwargs.pop("download_config", None) or tfds.download.DownloadConfig(
      manual_dir=str(manual))
  b = grid.Builder(data_dir=str(data_dir), **kwargs)
  b.download_and_prepare(download_config=cfg)
  return b


def _examples(b):
  out = {}
  for split in sorted(b.info.splits):
    src = b.as_data_source(split=split)
    out[split] = [src[i] for i in range(len(src))]
  return out


def _assert_same_examples(a, b):
  assert sorted(a) == sorted(b)
  for split in a:
    assert [e["id"] for e in a[split]] == [e["id"] for e in b[split]], split
    for x, y in zip(a[split], b[split]):
      assert sorted(x) == sorted(y)
      for k in x:
        if k == "faces":
          assert [bytes(f) for f in x[k]] == [bytes(f) for f in y[k]], (split, x["id"], k)
        else:
          vx, vy = np.asarray(x[k]), np.asarray(y[k])
          assert vx.dtype == vy.dtype and vx.shape == vy.shape, (split, x["id"], k)
          assert vx.tobytes() == vy.tobytes(), (split, x["id"], k)


@pytest.fixture(scope="module")
def plain(sample, tmp_path_factory):
  b = _build(sample, tmp_path_factory.mktemp("plain"))
  return _examples(b), b.info.metadata["skipped"]


@pytest.mark.slow  # ~50 s: spawns two workers that load JAX and dlib; the Beam test below and
# the thread-pool test of parallel_prepare cover the same paths by default.
def test_two_workers_give_the_plain_build(sample, plain, tmp_path):
  b = _build(sample, tmp_path, workers=2)
  examples, skipped = _examples(b), b.info.metadata["skipped"]
  assert sum(len(v) for v in examples.values()) == 3
  _assert_same_examples(plain[0], examples)
  assert skipped == plain[1] and sum(skipped["train"].values()) + sum(
      skipped["test"].values()) == 1
  # The examples were made by the workers, not read from the plain build's cache.
  assert len(list(tmp_path.glob("_prep_cache/grid/*/*.npz"))) == 3


def test_beam_direct_runner_with_two_workers_gives_the_plain_build(sample, plain, tmp_path):
  cli = _load_cli()
  with pytest.raises(UserError, match="unknown Beam pipeline option"):
    cli.beam_download_config(sample, "DirectRunner", ["--no_such_beam_option=1"])
  cfg = cli.beam_download_config(sample, "DirectRunner", [
      "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
  b = _build(sample, tmp_path, beam=True, download_config=cfg)
  _assert_same_examples(plain[0], _examples(b))
  assert b.info.metadata["skipped"] == plain[1]


class _ThreadPool(corpus.WorkerPool):
  """Runs the work in threads (a cheap stand-in for processes) and records what was sent."""

  def __init__(self, workers):
    super().__init__(workers)
    self.sent = []
    self._ex = concurrent.futures.ThreadPoolExecutor(workers)

  def submit(self, fn, *args):
    self.sent.append(args[0].uid)
    return self._ex.submit(fn, *args)


def test_parallel_prepare_keeps_order_bounds_the_window_and_reads_the_cache_here(tmp_path):
  clips = [prepare.Clip(uid=f"s/{i}", speaker="s", video=tmp_path / f"{i}.mp4")
           for i in range(9)]
  prepare.save_skip(tmp_path, clips[4].cache_id, "no_face", "cached skip")

  class Fake(corpus.ClipPreparer):
    def result(self, clip):
      time.sleep(0.02 * (9 - int(clip.uid[2:])))  # later clips finish first
      return None, ("fake", clip.uid)

  preparer = Fake(prepare.FrontEndSpec(PhonemeVocab()), str(tmp_path), "train")
  pool = _ThreadPool(2)
  seen = [(c.uid, r) for c, r in corpus.parallel_prepare(preparer, clips, pool, window=3)]
  assert [u for u, _ in seen] == [c.uid for c in clips]
  assert dict(seen)["s/4"] == (None, ("no_face", "cached skip"))
  assert "s/4" not in pool.sent and len(pool.sent) == 8
  assert all(r == (None, ("fake", u)) for u, r in seen if u != "s/4")


def test_cli_scaling_flags():
  cli = _load_cli()
  base = ["--dataset", "grid", "--manual_dir", "x"]
  assert cli.parse_args(base).workers is None and cli.default_workers() >= 1
  assert cli.parse_args([*base, "--workers", "3"]).workers == 3
  args = cli.parse_args([*base, "--beam_runner", "DirectRunner", "--direct_num_workers=2"])
  assert args.beam_runner == "DirectRunner" and args.beam_flags == ["--direct_num_workers=2"]
  for bad in (["--workers", "0"], ["--direct_num_workers=2"],
              ["--beam_runner", "DirectRunner", "--workers", "2"]):
    with pytest.raises(SystemExit):
      cli.parse_args([*base, *bad])
  with pytest.raises(UserError, match="workers"):
    grid.Builder(data_dir="unused", workers=0)


def test_a_dead_worker_is_a_user_error(tmp_path):
  class Dead(corpus.WorkerPool):
    def submit(self, fn, *args):
      f = concurrent.futures.Future()
      f.set_exception(concurrent.futures.process.BrokenProcessPool("killed"))
      return f

  preparer = corpus.ClipPreparer(prepare.FrontEndSpec(PhonemeVocab()), str(tmp_path), "train")
  clip = prepare.Clip(uid="s/0", speaker="s", video=tmp_path / "0.mp4")
  with pytest.raises(UserError, match="worker process died while preparing s/0"):
    list(corpus.parallel_prepare(preparer, [clip], Dead(2)))
