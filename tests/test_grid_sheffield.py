"""GRID as Sheffield distributes it: MPEG-1 videos with stereo sound at 44.1 kHz, per-talker align
tars holding a flat `align/` folder (unpacked by the README's command), and separate wav files
that end before their videos."""
import shutil
import subprocess

import numpy as np
import corpus_trees
import pytest
import tensorflow_datasets as tfds  # noqa: TID253 - these tests drive TFDS builders

from taem_jax import audio, video
from taem_jax.data import prepare
from taem_jax.data.grid import grid_dataset_builder as grid
from taem_jax.data.sample import portraits
from taem_jax.face import FaceDetector

UTTS = ("bbaf2n", "pgwr6p")


@pytest.fixture(scope="module")
def sheffield(tmp_path_factory):
  root = tmp_path_factory.mktemp("grid_sheffield")
  work = tmp_path_factory.mktemp("grid_work")
  portrait = portraits.make_portraits(1, 160, np.random.default_rng(0), FaceDetector())[0]
  corpus_trees.grid_sheffield_tree(root, work, portrait, UTTS)
  return root


def test_fixture_is_in_sheffield_formats(sheffield):
  header = subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-i",
                           str(sheffield / "s1" / f"{UTTS[0]}.mpg")],
                          capture_output=True, text=True).stderr
  assert "mpeg1video" in header and "mp2" in header and "44100 Hz" in header
  assert "stereo" in header
  assert sorted(p.name for p in (sheffield / "alignments" / "s1").iterdir()) == [
      f"{u}.align" for u in UTTS]


def test_sheffield_tree_builds_with_the_videos_own_sound(sheffield, tmp_path):
  clips = grid.list_clips(sheffield, lambda reason: None, {})
  assert all(c.audio is not None and c.audio.parent.name == "s1" for c in clips)  # wav found
  b = grid.Builder(data_dir=str(tmp_path / "tfds"))
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(sheffield)))
  examples = {}
  for split in ("train", "test"):
    if split in b.info.splits:
      src = b.as_data_source(split=split)
      examples.update({src[i]["id"].decode(): src[i] for i in range(len(src))})
  assert sorted(examples) == [f"s1/{u}" for u in UTTS]
  for uid, ex in examples.items():
    n = len(ex["faces"])
    assert int(np.sum(ex["durations"])) == 4 * n
    mpg = sheffield / f"{uid}.mpg"
    # The wav ends 0.4 s early, so the mel is the video's own track's, not the padded file's.
    own = audio.melspectrogram(prepare.fit_length(video.extract_audio(mpg), n * 640))
    wav = audio.load_audio(sheffield / "audio_25k" / f"{uid}.wav")
    padded = audio.melspectrogram(prepare.fit_length(wav, n * 640))
    np.testing.assert_allclose(ex["mel"], own, atol=1e-5)
    assert np.abs(ex["mel"] - padded).max() > 0.5
  shutil.rmtree(tmp_path / "tfds")
