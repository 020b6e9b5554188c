"""GRID as Sheffield distributes it: MPEG-1 videos with stereo sound at 44.1 kHz, per-talker align
tars holding a flat `align/` folder (unpacked by the README's command), and separate wav files
that end before their videos."""
import shutil
import subprocess
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds  # noqa: TID253 - these tests drive TFDS builders

from taem_jax import audio, video
from taem_jax.data import prepare
from taem_jax.data.grid import grid_dataset_builder as grid
from taem_jax.data.sample import dummy, portraits
from taem_jax.face import FaceDetector

UTTS = ("bbaf2n", "pgwr6p")
SAMPLE_HZ = 25000  # GRID's .align time unit


def _ffmpeg(*args):
  subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args],
                 check=True)


def _align_lines(words, seconds):
  """A .align with the six words spread evenly over the clip between leading/trailing sil."""
  t0, t1 = 0.15, seconds - 0.1
  edges = np.linspace(t0, t1, len(words) + 1)
  ticks = lambda t: int(round(t * SAMPLE_HZ))  # noqa: E731
  lines = [f"0 {ticks(t0)} sil"]
  lines += [f"{ticks(a)} {ticks(b)} {w}" for w, a, b in zip(words, edges[:-1], edges[1:])]
  lines.append(f"{ticks(t1)} {ticks(seconds)} sil")
  return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def sheffield(tmp_path_factory):
  root = tmp_path_factory.mktemp("grid_sheffield")
  work = tmp_path_factory.mktemp("grid_work")
  portrait = portraits.make_portraits(1, 160, np.random.default_rng(0), FaceDetector())[0]
  (root / "s1").mkdir()
  (work / "align").mkdir()
  (work / "wav").mkdir()
  for k, utt in enumerate(UTTS):
    words = grid.sentence_of(utt)
    mp4 = work / f"{utt}.mp4"
    n = dummy.write_clip(mp4, " ".join(words), portrait, seed=k, trail_s=0.0)
    # Sheffield's format: MPEG-1 video, MPEG audio layer II, stereo, 44.1 kHz.
    _ffmpeg("-i", str(mp4), "-c:v", "mpeg1video", "-q:v", "3", "-c:a", "mp2", "-ac", "2",
            "-ar", "44100", str(root / "s1" / f"{utt}.mpg"))
    (work / "align" / f"{utt}.align").write_text(_align_lines(words, n / 25.0))
    # The separately distributed wav: 25 kHz mono, ending 0.4 s before the video.
    wav = video.extract_audio(mp4, sr=SAMPLE_HZ)
    video.write_wav(work / "wav" / f"{utt}.wav", wav[:len(wav) - int(0.4 * SAMPLE_HZ)],
                    SAMPLE_HZ)
  for name, folder in (("align.tar", "align"), ("audio.tar", "wav")):
    with tarfile.open(work / name, "w") as t:
      t.add(work / folder, arcname=folder)
  # The README's unpack commands for talker 1.
  for sub, name in (("alignments/s1", "align.tar"), ("audio_25k/s1", "audio.tar")):
    (root / sub).mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(work / name), "-C", str(root / sub),
                    "--strip-components=1"], check=True)
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
