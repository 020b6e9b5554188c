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
# Folders that hold one talker's .align files each (the folder's name need not be right: the
# Zenodo alignments.zip files several talkers under another talker's name).
_ALIGN_PARENTS = ("alignments", "align", "aligns")
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

# A GRID file name spells its sentence, one character per slot: command, colour, preposition,
# letter, digit ('z' = zero), adverb; e.g. bbaf2n = "bin blue at f two now".
_SLOT_WORDS = (
    {"b": "bin", "l": "lay", "p": "place", "s": "set"},
    {"b": "blue", "g": "green", "r": "red", "w": "white"},
    {"a": "at", "b": "by", "i": "in", "w": "with"},
    None,  # the letter itself
    {"z": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
     "7": "seven", "8": "eight", "9": "nine"},
    {"a": "again", "n": "now", "p": "please", "s": "soon"},
)
# A folder belongs to the talker whose video names it shares most, if it shares at least this
# share of the smaller of the two sets (two talkers' random 1000 of the 64000 sentences share
# ~2%; a talker's own alignments share ~100%).
MIN_NAME_OVERLAP = 0.5

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
    clips = list_clips(root, self.count_listing_skip, self.listing_report)
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


def sentence_of(utt: str) -> tuple[str, ...] | None:
  """The six words a GRID utterance name spells (`bbaf2n` -> bin blue at f two now), or None
  when the name is not a GRID sentence."""
  u = utt.lower()
  if len(u) != 6:
    return None
  words = []
  for ch, table in zip(u, _SLOT_WORDS):
    if table is None:
      if not ("a" <= ch <= "z"):
        return None
      words.append(ch)
    elif ch in table:
      words.append(table[ch])
    else:
      return None
  return tuple(words)


def _align_folders(root: pathlib.Path, speakers) -> dict[str, dict[str, pathlib.Path]]:
  """{folder label: {utterance: .align path}} of every folder holding .align files."""
  found = {}
  dirs = []
  for parent in _ALIGN_PARENTS:
    base = root / parent
    if base.is_dir():
      dirs += [d for d in sorted(base.iterdir()) if d.is_dir()]
      if any(p.suffix == ".align" for p in base.iterdir()):
        raise UserError(
            f"{base} holds .align files directly: the per-talker align archives were unpacked "
            f"into one folder, where same-named files of different talkers overwrite each "
            f"other. Unpack each talker's archive into its own folder, e.g. `mkdir -p "
            f"alignments/s1 && tar -xf s1.tar -C alignments/s1 --strip-components=1` (see "
            f"taem_jax/data/grid/README.md)")
  dirs += [root / spk / "align" for spk in speakers if (root / spk / "align").is_dir()]
  for d in dirs:
    files = {p.stem: p for p in sorted(d.iterdir()) if p.suffix == ".align"}
    if files:
      found[str(d.relative_to(root))] = files
  return found


def assign_alignments(videos: dict[str, set], folders: dict[str, dict]) -> dict[str, list[str]]:
  """Which alignment folders hold each talker's files, judged by their contents' names.

  Each folder goes to the talker whose video names it shares most, when that is at least
  MIN_NAME_OVERLAP of the smaller set; a folder whose best match is no talker is unused.

  Args:
    videos: {talker: set of utterance names with a video}.
    folders: {folder label: {utterance: path}} (`_align_folders`).
  Returns:
    {talker: [folder labels]} (empty list: no alignments for that talker).
  """
  out = {spk: [] for spk in videos}
  for label, files in sorted(folders.items()):
    names = set(files)
    best, best_n = None, 0
    for spk, vids in sorted(videos.items()):
      n = len(vids & names)
      if n > best_n:
        best, best_n = spk, n
    if best is not None and best_n >= MIN_NAME_OVERLAP * min(len(names), len(videos[best])):
      out[best].append(label)
  return out


def list_clips(root: pathlib.Path, count_skip=None, report=None) -> list:
  """All usable clips of a GRID-layout folder.

  Alignments are matched to talkers by content (`assign_alignments`), so a folder filed under
  another talker's name is still used for its own talker and never for the wrong one; each
  .align must spell the sentence its name encodes.

  Args:
    root: the manual folder.
    count_skip: optional callback(reason) for each clip left out.
    report: optional dict, filled with {talker: {"kept": n, "skipped": {reason: n},
      "alignments": [folder labels], "recovered_from": [labels not named after the talker]}}.
  Raises:
    UserError: no speaker video folders, or no alignments at all.
  """
  speakers = _speaker_dirs(root)
  if not speakers:
    raise UserError(f"no GRID speaker folders with videos in {root}: expected s1/*.mpg (or "
                    ".mp4), s2/..., see taem_jax/data/grid/README.md")
  order = sorted(speakers, key=lambda s: int(s[1:]))
  videos = {spk: sorted(p for p in speakers[spk].iterdir()
                        if p.suffix.lower() in VIDEO_EXTS and not p.name.startswith("."))
            for spk in order}  # dot files: temporary files of an interrupted writer
  folders = _align_folders(root, order)
  if not folders:
    raise UserError(f"no GRID word alignments found in {root}: expected alignments/s1/*.align "
                    "(from the corpus's alignments.zip), see taem_jax/data/grid/README.md")
  owners = assign_alignments({spk: {v.stem for v in vids} for spk, vids in videos.items()},
                             folders)
  report = {} if report is None else report

  def skip(rep, reason):
    rep["skipped"][reason] = rep["skipped"].get(reason, 0) + 1
    if count_skip:
      count_skip(reason)

  clips = []
  for spk in order:
    labels = owners[spk]
    rep = report.setdefault(spk, {"kept": 0, "skipped": {}, "alignments": labels,
                                  "recovered_from": [l for l in labels
                                                     if pathlib.PurePath(l).name != spk
                                                     and not l.startswith(f"{spk}/")]})
    audir = _first_dir(root, _AUDIO_DIRS, spk)
    tdir = _first_dir(root, _TEXTGRID_DIRS, spk)
    for v in videos[spk]:
      utt = v.stem
      cands = [folders[l][utt] for l in labels if utt in folders[l]]
      if not cands:
        skip(rep, "missing_alignment")
        continue
      if len(cands) > 1:
        skip(rep, "ambiguous_alignment")
        continue
      align = cands[0]
      words = [w for w in _align_words(align) if w not in ("sil", "sp")]
      expect = sentence_of(utt)
      if expect is not None and tuple(words) != expect:
        skip(rep, "alignment_mismatch")
        continue
      wav = audir / (utt + ".wav") if audir is not None else None
      tg = tdir / (utt + ".TextGrid") if tdir is not None else None
      rep["kept"] += 1
      clips.append(prepare.Clip(
          uid=f"{spk}/{utt}", speaker=spk, video=v,
          audio=wav if wav is not None and wav.is_file() else None,
          text=" ".join(words),
          textgrid=tg if tg is not None and tg.is_file() else None,
          word_align=align, grid_grammar=True))
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

