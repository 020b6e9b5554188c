"""LRS2 (Lip Reading Sentences 2, BBC; Afouras et al. 2018), read from a downloaded folder.

    experiments/build_dataset.py --dataset lrs2 --manual_dir /data/mvlrs_v1 --data_dir OUT

Reads `main/` with the official lists train.txt, val.txt, test.txt, and, when it is unpacked,
`pretrain/` with pretrain.txt as the split `pretrain`. A pretrain clip no longer than
`MAX_PIECE_S` is used whole; a longer one is cut on its word timings into sentence-sized pieces
(`cut_pieces`), each an example of its own. Word timings (the `WORD START END ASDSCORE` table of
a clip's .txt) confine the built-in aligner's phones to their words, as GRID's `.align` files
do. The folder id is a programme/clip group, not a speaker identity; it is stored as `speaker`.
See README.md for the layout.
"""
import dataclasses
import logging
import math
import pathlib

from taem_jax.data import corpus, prepare
from taem_jax.errors import UserError
from taem_jax.rates import VIDEO_FPS
from taem_jax.text import alignments as A
from taem_jax.text import phonemes as P

log = logging.getLogger(__name__)

SPLIT_FILES = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
PRETRAIN_LIST = "pretrain.txt"
WORD_TABLE_HEADER = "WORD START END ASDSCORE"
# Pieces of a long pretrain clip: at most MAX_PIECE_S of words, PAD_S of context on each side
# (never past the middle of the gap to the next word), inner gaps of MIN_PAUSE_S or more
# become `sp`. Not from the papers (they do not say how they used pretrain/).
MAX_PIECE_S = 6.0
PAD_S = 0.15
MIN_PAUSE_S = 0.1

MANUAL = """\
LRS2 (https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs2.html, BBC licence form), the
`mvlrs_v1` folder:
  main/<id>/<clip>.mp4      25 fps face-centred clips with audio
  main/<id>/<clip>.txt      transcript ("Text:  WORDS ..." first line)
  pretrain/<id>/<clip>.mp4 + .txt   optional: longer clips, .txt with the word table
                            "WORD START END ASDSCORE" (cut into sentence-sized pieces)
  train.txt, val.txt, test.txt   official lists, one `<id>/<clip>` per line (extra tokens ignored)
  pretrain.txt              official list of pretrain/ (needed when pretrain/ is there)
  textgrids/<id>/<clip>.TextGrid optional MFA phone alignments of main/ clips
"""


@dataclasses.dataclass(frozen=True)
class Word:
  """One row of an LRS2 word table (times in seconds from the clip start)."""
  word: str
  start: float
  end: float


class Builder(corpus.CorpusBuilder):
  """LRS2 main set with the official train/val/test lists, plus pretrain/ when present."""

  name = "lrs2"
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL
  HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/lip_reading/lrs2.html"
  EXPECTED_SHORT = "main/<id>/<clip>.mp4 + .txt and train.txt/val.txt/test.txt"
  SPLIT_RULE = ("official LRS2 lists train.txt / val.txt / test.txt (main/), pretrain.txt "
                f"(pretrain/, clips longer than {MAX_PIECE_S:g} s of words cut on the word "
                "timings)")

  def list_splits(self, root: pathlib.Path) -> dict:
    return list_splits(root, self.count_listing_skip)


def read_transcript(path: pathlib.Path) -> str:
  """The words of an LRS2 .txt ("Text:  HELLO WORLD" line), lower case."""
  for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
    if line.lower().startswith("text:"):
      return line.split(":", 1)[1].strip().lower()
  return ""


def read_word_table(path: pathlib.Path) -> list[Word] | None:
  """The `WORD START END ASDSCORE` rows of an LRS2 .txt (None when it has no table)."""
  rows, inside = [], False
  for ln, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
    if not inside:
      inside = line.strip().upper() == WORD_TABLE_HEADER
      continue
    parts = line.split()
    if not parts:
      continue
    if len(parts) < 3:
      raise UserError(f"{path} line {ln}: expected 'WORD START END ASDSCORE', got {line!r}")
    try:
      start, end = float(parts[1]), float(parts[2])
    except ValueError:
      raise UserError(f"{path} line {ln}: START and END must be seconds, got {line!r}") from None
    if end < start or (rows and start < rows[-1].start):
      raise UserError(f"{path} line {ln}: word times go backwards ({line.strip()!r})")
    rows.append(Word(parts[0].lower(), start, end))
  return rows if inside else None


def cut_pieces(words: list[Word], max_s: float | None = None) -> list[list[Word]]:
  """Consecutive words grouped greedily so that each group's words span at most `max_s`
  (default MAX_PIECE_S; a single longer word is a group of its own)."""
  max_s = MAX_PIECE_S if max_s is None else max_s
  groups, cur = [], []
  for w in words:
    if cur and w.end - cur[0].start > max_s:
      groups.append(cur)
      cur = []
    cur.append(w)
  return groups + ([cur] if cur else [])


def word_intervals(words: list[Word], t0: float, t1: float) -> tuple[A.Interval, ...]:
  """Words of a piece [t0, t1) s as intervals from t0, covering it: `sil` before the first and
  after the last word, `sp` in gaps of MIN_PAUSE_S or more, shorter gaps split at the middle."""
  out = []
  if words[0].start - t0 > 1e-3:
    out.append(A.Interval(P.SIL, 0.0, words[0].start - t0))
  for k, w in enumerate(words):
    start = out[-1].end if out else w.start - t0
    end = w.end - t0
    if k + 1 < len(words):
      gap = words[k + 1].start - w.end
      if gap < MIN_PAUSE_S:
        end = (w.end + words[k + 1].start) / 2 - t0
    out.append(A.Interval(w.word, start, max(start, end)))
    if k + 1 < len(words) and words[k + 1].start - w.end >= MIN_PAUSE_S:
      out.append(A.Interval(P.SP, w.end - t0, words[k + 1].start - t0))
  if t1 - words[-1].end > 1e-3:
    out.append(A.Interval(P.SIL, words[-1].end - t0, t1 - t0))
  # Pieces cut between close words may clip a word's edge: keep every interval inside the piece.
  span = t1 - t0
  return tuple(A.Interval(iv.label, min(max(iv.start, 0.0), span), min(max(iv.end, 0.0), span))
               for iv in out)


def pretrain_clips(entry: str, video: pathlib.Path, txt: pathlib.Path) -> list[prepare.Clip]:
  """The examples of one pretrain clip: itself, or its pieces (`cut_pieces`)."""
  spk = entry.split("/")[0]
  uid = f"pretrain/{entry}"
  words = read_word_table(txt)
  if not words:  # no table: the whole clip with its transcript
    return [prepare.Clip(uid=uid, speaker=spk, video=video, text=read_transcript(txt))]
  if words[-1].end <= MAX_PIECE_S:
    return [prepare.Clip(uid=uid, speaker=spk, video=video,
                         text=" ".join(w.word for w in words),
                         words=word_intervals(words, 0.0, words[-1].end + PAD_S))]
  groups = cut_pieces(words)
  # Frame boundaries: PAD_S of context, but a piece never reaches past the frame nearest the
  # middle of the gap to its neighbour, so pieces never share a frame.
  lo = [max(0, int(math.floor((g[0].start - PAD_S) * VIDEO_FPS + 1e-6))) for g in groups]
  hi = [int(math.ceil((g[-1].end + PAD_S) * VIDEO_FPS - 1e-6)) for g in groups]
  for k in range(len(groups) - 1):
    cut = int(round((groups[k][-1].end + groups[k + 1][0].start) / 2 * VIDEO_FPS))
    hi[k], lo[k + 1] = min(hi[k], cut), max(lo[k + 1], cut)
  out = []
  for k, g in enumerate(groups):
    f0, f1 = lo[k], max(lo[k] + 1, hi[k])
    out.append(prepare.Clip(uid=f"{uid}_{k:02d}", speaker=spk, video=video,
                            text=" ".join(w.word for w in g),
                            words=word_intervals(g, f0 / VIDEO_FPS, f1 / VIDEO_FPS),
                            span=(f0, f1)))
  return out


def _entry(line: str, part: str) -> str:
  """A list entry as `<id>/<clip>` (a leading `main/` or `pretrain/` dropped)."""
  e = line.strip().replace("\\", "/")
  return e[len(part) + 1:] if e.startswith(part + "/") else e


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
      entry = _entry(entry, "main")
      spk = entry.split("/")[0]
      video = main / (entry + ".mp4")
      txt = main / (entry + ".txt")
      if not video.is_file() or not txt.is_file():
        if count_skip:
          count_skip("listed_but_missing")
        continue
      tg = root / "textgrids" / (entry + ".TextGrid")
      words = read_word_table(txt)
      clips.append(prepare.Clip(
          uid=entry, speaker=spk, video=video, text=read_transcript(txt),
          textgrid=tg if tg.is_file() else None,
          words=word_intervals(words, 0.0, words[-1].end + PAD_S) if words else None))
    out[split] = clips
  out.update(_pretrain_split(root, count_skip))
  if not any(out.values()):
    raise UserError(f"none of the clips listed in {root}/train.txt, val.txt, test.txt exist "
                    f"under {main}")
  return out


def _pretrain_split(root: pathlib.Path, count_skip=None) -> dict:
  folder, listing = root / "pretrain", root / PRETRAIN_LIST
  if not folder.is_dir():
    if listing.is_file():
      log.warning("lrs2: %s is there but pretrain/ is not unpacked: split 'pretrain' left out",
                  listing)
    return {}
  if not listing.is_file():
    raise UserError(f"{folder} is there but its list {listing} is missing: it ships with the "
                    "corpus (one `<id>/<clip>` per line)")
  clips = []
  for entry in corpus.read_split_file(listing):
    entry = _entry(entry, "pretrain")
    video, txt = folder / (entry + ".mp4"), folder / (entry + ".txt")
    if not video.is_file() or not txt.is_file():
      if count_skip:
        count_skip("listed_but_missing")
      continue
    clips += pretrain_clips(entry, video, txt)
  return {"pretrain": clips}
