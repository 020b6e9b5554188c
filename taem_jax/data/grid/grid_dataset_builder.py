"""GRID audio-visual sentence corpus (Cooke et al. 2006), read from a downloaded folder.

    from taem_jax.data.grid import grid_dataset_builder
    b = grid_dataset_builder.Builder(data_dir="~/tensorflow_datasets")
    b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir="/data/grid"))

or `experiments/build_dataset.py --dataset grid --manual_dir /data/grid --data_dir OUT`.
The generated sample corpus (experiments/make_sample_corpus.py) uses the same layout and is
read unchanged. See README.md for the layout and corpus.py for the features.
"""
import pathlib
import re

from taem_jax.data import corpus, prepare
from taem_jax.errors import UserError

VIDEO_EXTS = (".mpg", ".mp4", ".avi", ".mov", ".mkv")
# Where each kind of file may live (the official downloads unpack differently; both accepted).
_VIDEO_PARENTS = ("", "video", "videos")
_VIDEO_SUBDIRS = ("", "video/mpg_6000", "video")
_ALIGN_DIRS = ("alignments/{s}", "align/{s}", "aligns/{s}", "{s}/align")
_AUDIO_DIRS = ("audio_16k/{s}", "audio_25k/{s}", "audio_50k/{s}", "audio/{s}", "{s}/audio")
_TEXTGRID_DIRS = ("textgrids/{s}", "TextGrid/{s}", "mfa/{s}")
_SPEAKER_RE = re.compile(r"^s\d+$")

# ParaLip's seen-speaker split holds out, from every speaker, the same share of utterances for
# test; its released code reads the lists `train_path_v250.txt` / `test_path_v250.txt`
# (Dianezzy/ParaLip, datasets/lipgen/grid/gen_grid_high.py), which are not public. The common
# "overlapped speakers" GRID split holds out 255 of each speaker's 1000 sentences (LipNet;
# e.g. klauscc/dataseter GRID/split_train_val.py, test_num_per_speaker=255). We use that share.
TEST_FRACTION = 0.255
SPLIT_SEED = 0

MANUAL = """\
The GRID corpus (https://spandh.dcs.shef.ac.uk/gridcorpus/ or Zenodo record 3625687), unpacked
so that the manual folder holds, per speaker s1 ... s34 (s21 has no video):
  s1/*.mpg                      videos (`s1.mpg_vcd.zip`; `s1/video/mpg_6000/*.mpg` and
                                .mp4/.avi also accepted; `video/s1/` or `videos/s1/` too)
  alignments/s1/*.align         word alignments (`alignments.zip`; also align/s1, s1/align)
  audio_25k/s1/*.wav            optional audio (`audio_25k.zip`; audio_50k/, audio_16k/ too);
                                without it the audio track of the video is used
  textgrids/s1/*.TextGrid       optional MFA phone alignments (used instead of the built-in
                                aligner when present)
  splits/train.txt, test.txt    optional: exact split lists of clip ids `s1/bbaf2n`
"""


class Builder(corpus.CorpusBuilder):
  """GRID: 33 speakers x 1000 six-word sentences, 25 fps, word alignments."""

  name = "grid"
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL
  HOMEPAGE = "https://spandh.dcs.shef.ac.uk/gridcorpus/"
  EXPECTED_SHORT = ("speaker folders s1/ ... with videos and alignments/s1/*.align "
                    "(see taem_jax/data/grid/README.md)")
  SPLIT_RULE = (f"seen speakers (as ParaLip): per speaker round({TEST_FRACTION} n) utterances "
                f"held out for test by a seed-{SPLIT_SEED} permutation of the sorted ids; "
                "<manual_dir>/splits/*.txt overrides")

  def list_splits(self, root: pathlib.Path) -> dict:
    clips = list_clips(root, self.count_listing_skip)
    user = corpus.user_splits(root, clips)
    if user is not None:
      return user
    train, test = corpus.held_out_per_speaker(clips, TEST_FRACTION, SPLIT_SEED)
    return {"train": train, "test": test}


def _speaker_dirs(root: pathlib.Path) -> dict:
  found = {}
  for parent in _VIDEO_PARENTS:
    base = root / parent if parent else root
    if not base.is_dir():
      continue
    for d in sorted(base.iterdir()):
      if d.is_dir() and _SPEAKER_RE.match(d.name) and d.name not in found:
        for sub in _VIDEO_SUBDIRS:
          vd = d / sub if sub else d
          if vd.is_dir() and any(p.suffix.lower() in VIDEO_EXTS for p in vd.iterdir()):
            found[d.name] = vd
            break
  return found


def _first_dir(root: pathlib.Path, patterns, spk: str) -> pathlib.Path | None:
  for pat in patterns:
    d = root / pat.format(s=spk)
    if d.is_dir():
      return d
  return None


def list_clips(root: pathlib.Path, count_skip=None) -> list:
  """All usable clips of a GRID-layout folder.

  Raises:
    UserError: no speaker video folders, or no alignments at all.
  """
  speakers = _speaker_dirs(root)
  if not speakers:
    raise UserError(f"no GRID speaker folders with videos in {root}: expected s1/*.mpg (or "
                    ".mp4), s2/..., see taem_jax/data/grid/README.md")
  clips, any_align = [], False
  for spk in sorted(speakers, key=lambda s: int(s[1:])):
    vdir = speakers[spk]
    adir = _first_dir(root, _ALIGN_DIRS, spk)
    audir = _first_dir(root, _AUDIO_DIRS, spk)
    tdir = _first_dir(root, _TEXTGRID_DIRS, spk)
    any_align = any_align or adir is not None
    for v in sorted(p for p in vdir.iterdir() if p.suffix.lower() in VIDEO_EXTS):
      if v.name.startswith("."):
        continue  # temporary files of an interrupted writer
      utt = v.stem
      align = adir / (utt + ".align") if adir is not None else None
      if align is None or not align.is_file():
        if count_skip:
          count_skip("missing_alignment")
        continue
      wav = audir / (utt + ".wav") if audir is not None else None
      tg = tdir / (utt + ".TextGrid") if tdir is not None else None
      words = [w for w in _align_words(align) if w not in ("sil", "sp")]
      clips.append(prepare.Clip(
          uid=f"{spk}/{utt}", speaker=spk, video=v,
          audio=wav if wav is not None and wav.is_file() else None,
          text=" ".join(words),
          textgrid=tg if tg is not None and tg.is_file() else None,
          word_align=align, grid_grammar=True))
  if not any_align:
    raise UserError(f"no GRID word alignments found in {root}: expected alignments/s1/*.align "
                    "(from the corpus's alignments.zip), see taem_jax/data/grid/README.md")
  return clips


def _align_words(path: pathlib.Path) -> list[str]:
  words = []
  try:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
      parts = line.split()
      if len(parts) == 3:
        words.append(parts[2].lower())
  except OSError:
    pass
  return words

