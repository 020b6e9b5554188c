"""LRS2 (Lip Reading Sentences 2, BBC; Afouras et al. 2018), read from a downloaded folder.

    experiments/build_dataset.py --dataset lrs2 --manual_dir /data/mvlrs_v1 --data_dir OUT

Uses `main/` only (as Wav2Lip does; `pretrain/` is ignored) and the official lists train.txt,
val.txt, test.txt. The folder id is a programme/clip group, not a speaker identity; it is stored
as `speaker`. See README.md for the layout.
"""
import pathlib

from taem_jax.data import corpus, prepare
from taem_jax.errors import UserError

SPLIT_FILES = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}

MANUAL = """\
LRS2 (https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs2.html, BBC licence form), the
`mvlrs_v1` folder:
  main/<id>/<clip>.mp4      25 fps face-centred clips with audio
  main/<id>/<clip>.txt      transcript ("Text:  WORDS ..." first line)
  train.txt, val.txt, test.txt   official lists, one `<id>/<clip>` per line (extra tokens ignored)
  textgrids/<id>/<clip>.TextGrid optional MFA phone alignments
(pretrain/ is not used.)
"""


class Builder(corpus.CorpusBuilder):
  """LRS2 main set with the official train/val/test lists."""

  name = "lrs2"
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL
  HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs2.html"
  EXPECTED_SHORT = "main/<id>/<clip>.mp4 + .txt and train.txt/val.txt/test.txt"
  SPLIT_RULE = "official LRS2 lists train.txt / val.txt / test.txt (main/ only)"

  def list_splits(self, root: pathlib.Path) -> dict:
    return list_splits(root, self.count_listing_skip)


def read_transcript(path: pathlib.Path) -> str:
  """The words of an LRS2 .txt ("Text:  HELLO WORLD" line), lower case."""
  for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
    if line.lower().startswith("text:"):
      return line.split(":", 1)[1].strip().lower()
  return ""


def list_splits(root: pathlib.Path, count_skip=None) -> dict:
  main = root / "main"
  if not main.is_dir():
    raise UserError(f"expected LRS2's main/ folder at {main} (main/<id>/<clip>.mp4 + .txt), "
                    "see taem_jax/data/lrs2/README.md")
  missing = [f for f in SPLIT_FILES.values() if not (root / f).is_file()]
  if missing:
    raise UserError(f"LRS2 split list(s) {', '.join(missing)} missing in {root}: they ship with "
                    "the corpus (one `<id>/<clip>` per line)")
  out = {}
  for split, name in SPLIT_FILES.items():
    clips = []
    for entry in corpus.read_split_file(root / name):
      spk = entry.split("/")[0]
      video = main / (entry + ".mp4")
      txt = main / (entry + ".txt")
      if not video.is_file() or not txt.is_file():
        if count_skip:
          count_skip("listed_but_missing")
        continue
      tg = root / "textgrids" / (entry + ".TextGrid")
      clips.append(prepare.Clip(uid=entry, speaker=spk, video=video, text=read_transcript(txt),
                                textgrid=tg if tg.is_file() else None))
    out[split] = clips
  if not any(out.values()):
    raise UserError(f"none of the clips listed in {root}/train.txt, val.txt, test.txt exist "
                    f"under {main}")
  return out
