"""TCD-TIMIT audio-visual corpus (Harte & Gillen 2015): volunteers, straight camera.

    experiments/build_dataset.py --dataset tcd_timit --manual_dir /data/tcd_timit --data_dir OUT

Phones and durations come from the corpus's own HTK label file `volunteer_labelfiles.mlf`
(`read_labels`); MFA TextGrids, then the transcript plus the built-in aligner, are the fallbacks
for clips it does not cover. Video is 29.97 fps; it is resampled to 25 fps when prepared
(`prepare.resample_indices`: nearest source frame, audio untouched), because Wav2Lip, whose audio
windows and generator TAEM targets, works at 25 fps (the paper does not say how it handled 29.97
fps); evaluation converts the ground truth the same way. See README.md for the layout.
"""
import difflib
import pathlib
import re

from taem_jax.data import corpus, prepare
from taem_jax.errors import UserError
from taem_jax.text import alignments as A
from taem_jax.text import g2p
from taem_jax.text import phonemes as P

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")
_CAMERA_DIRS = ("Clips/straightcam", "straightcam", "Clips/straightCam")
_PROMPT_FILES = ("prompts.txt", "PROMPTS.TXT", "sentences.txt")
_TEXTGRID_DIRS = ("textgrids/{s}", "mfa/{s}")
# Where the label file sits: the corpus root as unpacked, or a folder beside the clips.
LABEL_FILES = ("volunteer_labelfiles.mlf", "MLFfiles/volunteer_labelfiles.mlf",
               "volunteers/volunteer_labelfiles.mlf")
_TIMIT_PROMPT = re.compile(r"^(?P<text>.*?)\s*\((?P<id>s[aix]\d+)\)\s*$", re.IGNORECASE)

# Not stated by ParaLip/TAEM: per speaker a tenth of the sentences is held out for test (seen
# speakers, like the GRID split). TCD-TIMIT's own speaker-independent protocol can be used by
# putting its lists in <manual_dir>/splits/.
TEST_FRACTION = 0.1
SPLIT_SEED = 0

MANUAL = """\
TCD-TIMIT (https://sigmedia.tcd.ie/, licence form required), volunteers subset, unpacked so
that the manual folder holds:
  volunteers/01M/Clips/straightcam/sa1.mp4 ...   straight-camera clips (29.97 fps, with audio);
                                                 volunteers/01M/straightcam/*.mp4 also accepted
  volunteer_labelfiles.mlf                       the corpus's HTK phone labels (phones and
                                                 durations of every clip; also accepted in
                                                 MLFfiles/ or volunteers/)
  prompts.txt                                    transcripts, TIMIT's PROMPTS.TXT format
                                                 ("text (sa1)") or "<sentence id> text" lines;
                                                 or a <clip>.txt next to each clip
  textgrids/01M/sa1.TextGrid                     optional MFA phone alignments
  splits/train.txt, test.txt                     optional split lists of ids `01M/sa1`
"""


class Builder(corpus.CorpusBuilder):
  """TCD-TIMIT volunteers, straight camera, resampled to 25 fps."""

  name = "tcd_timit"
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL
  HOMEPAGE = "https://sigmedia.tcd.ie/"
  EXPECTED_SHORT = ("volunteers/<id>/Clips/straightcam/*.mp4 plus volunteer_labelfiles.mlf or "
                    "prompts.txt (see taem_jax/data/tcd_timit/README.md)")
  SPLIT_RULE = (f"seen speakers: per volunteer round({TEST_FRACTION} n) sentences held out for "
                f"test (seed-{SPLIT_SEED} permutation of sorted ids); "
                "<manual_dir>/splits/*.txt overrides")

  def list_splits(self, root: pathlib.Path) -> dict:
    clips = list_clips(root, self.count_listing_skip)
    user = corpus.user_splits(root, clips, normalize_split_id)
    if user is not None:
      return user
    train, test = corpus.held_out_per_speaker(clips, TEST_FRACTION, SPLIT_SEED)
    return {"train": train, "test": test}


def normalize_split_id(entry: str) -> str:
  """A published TCD-TIMIT list entry as this builder's clip id `01M/sa1`.

  Accepted: `01M/sa1`, `01M_sa1`, and clip paths such as
  `volunteers/01M/Clips/straightcam/sx191.mp4` (any prefix before `volunteers/`, any extension).
  """
  e = entry.strip().replace("\\", "/")
  parts = [p for p in e.split("/") if p]
  if "volunteers" in parts:
    k = parts.index("volunteers")
    if len(parts) > k + 2:
      return f"{parts[k + 1]}/{pathlib.PurePosixPath(parts[-1]).stem.lower()}"
  if len(parts) == 1 and "_" in parts[0]:
    spk, utt = parts[0].rsplit("_", 1)
    return f"{spk}/{pathlib.PurePosixPath(utt).stem.lower()}"
  if len(parts) == 2:
    return f"{parts[0]}/{pathlib.PurePosixPath(parts[1]).stem.lower()}"
  return e


def label_key(name: str) -> tuple[str, str] | None:
  """(speaker, sentence id) of an MLF label-file name, None when it names no speaker.

  Accepted: `*/01M/sa1.lab`, and paths through the corpus tree such as
  `Q:/TCDTIMIT/volunteers/01M/Clips/straightcam/sa1.rec` (any prefix, `/` or `\\`).
  """
  parts = [p for p in name.replace("\\", "/").split("/") if p]
  if not parts:
    return None
  utt = pathlib.PurePosixPath(parts[-1]).stem.lower()
  low = [p.lower() for p in parts]
  spk = None
  for top in ("volunteers", "lipspeakers"):
    if top in low[:-1] and low.index(top) + 2 < len(parts):
      spk = parts[low.index(top) + 1]
      break
  else:
    if "clips" in low and low.index("clips") > 0:
      spk = parts[low.index("clips") - 1]
    elif len(parts) >= 2:
      spk = parts[-2]
  return None if spk in (None, "*", "..", ".") else (spk, utt)


def read_labels(path: pathlib.Path) -> dict:
  """{(speaker, sentence id): phone intervals in project symbols} of a TCD-TIMIT label file."""
  out = {}
  for name, items in A.read_htk_mlf(path).items():
    key = label_key(name)
    if key is None or not items:
      continue
    try:
      out[key] = tuple(A.htk_phones(items))
    except UserError as e:
      raise UserError(f"{path}, {name}: {e}") from None
  if not out:
    raise UserError(f"{path} holds no labelled utterance with a speaker in its name "
                    "(expected names like \"*/01M/sa1.lab\")")
  return out


def find_label_file(root: pathlib.Path) -> pathlib.Path | None:
  return next((root / n for n in LABEL_FILES if (root / n).is_file()), None)


def label_differences(phones, text: str) -> dict:
  """How a clip's corpus labels differ from g2p of its transcript (the inference path).

  Pauses are compared apart from phonemes: TCD-TIMIT's labeller puts `sil` wherever the speaker
  paused, g2p only at punctuation.

  Returns:
    {"phonemes": n labelled phonemes, "substituted", "inserted" (in the labels, not in g2p),
     "deleted" (in g2p, not in the labels), "pauses_labels", "pauses_g2p": inner pauses,
     "pairs": [(g2p, label), ...] of the substitutions}.
  """
  lab = [p.label for p in phones]
  ref = g2p.text_to_phonemes(text)
  inner = lambda seq: sum(P.is_pause(p) for p in seq[1:-1])  # noqa: E731
  a = [p for p in ref if not P.is_pause(p)]
  b = [p for p in lab if not P.is_pause(p)]
  out = {"phonemes": len(b), "substituted": 0, "inserted": 0, "deleted": 0,
         "pauses_labels": inner(lab), "pauses_g2p": inner(ref), "pairs": []}
  for op, i0, i1, j0, j1 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
    if op == "replace":
      k = min(i1 - i0, j1 - j0)
      out["substituted"] += k
      out["pairs"] += list(zip(a[i0:i0 + k], b[j0:j0 + k]))
      out["deleted"] += (i1 - i0) - k
      out["inserted"] += (j1 - j0) - k
    elif op == "delete":
      out["deleted"] += i1 - i0
    elif op == "insert":
      out["inserted"] += j1 - j0
  return out


def read_prompts(path: pathlib.Path) -> dict:
  """{sentence id (lower case): text} from TIMIT's PROMPTS.TXT or "<id> text" lines."""
  out = {}
  for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
    line = line.strip()
    if not line or line.startswith(";"):
      continue
    m = _TIMIT_PROMPT.match(line)
    if m:
      out[m.group("id").lower()] = m.group("text").strip()
      continue
    parts = line.split(None, 1)
    if len(parts) == 2:
      out[parts[0].lower()] = parts[1].strip()
  return out


def list_clips(root: pathlib.Path, count_skip=None) -> list:
  vol = root / "volunteers"
  if not vol.is_dir():
    raise UserError(f"expected the TCD-TIMIT volunteers folder at {vol} (volunteers/01M/Clips/"
                    "straightcam/*.mp4), see taem_jax/data/tcd_timit/README.md")
  prompts = {}
  for name in _PROMPT_FILES:
    if (root / name).is_file():
      prompts = read_prompts(root / name)
      break
  label_file = find_label_file(root)
  labels = read_labels(label_file) if label_file is not None else {}
  clips = []
  speakers = sorted(d for d in vol.iterdir() if d.is_dir())
  found_cam = False
  for spk_dir in speakers:
    cam = next((spk_dir / c for c in _CAMERA_DIRS if (spk_dir / c).is_dir()), None)
    if cam is None:
      continue
    found_cam = True
    spk = spk_dir.name
    tdir = next((root / p.format(s=spk) for p in _TEXTGRID_DIRS
                 if (root / p.format(s=spk)).is_dir()), None)
    for v in sorted(p for p in cam.iterdir() if p.suffix.lower() in VIDEO_EXTS):
      if v.name.startswith("."):
        continue
      utt = v.stem.lower()
      side = v.with_suffix(".txt")
      text = side.read_text(encoding="utf-8", errors="replace").strip() if side.is_file() \
          else prompts.get(utt, "")
      tg = tdir / (v.stem + ".TextGrid") if tdir is not None else None
      tg = tg if tg is not None and tg.is_file() else None
      phones = labels.get((spk, utt))
      if not text and tg is None and phones is None:
        if count_skip:
          count_skip("missing_labels" if labels else "missing_transcript")
        continue
      clips.append(prepare.Clip(uid=f"{spk}/{utt}", speaker=spk, video=v, text=text,
                                textgrid=tg, phones=phones))
  if not found_cam:
    raise UserError(f"no straight-camera clips under {vol}: expected volunteers/<id>/Clips/"
                    "straightcam/*.mp4, see taem_jax/data/tcd_timit/README.md")
  if not clips:
    if labels:
      raise UserError(f"{label_file} labels none of the clips under {vol} (its names give "
                      f"speaker/sentence {next(iter(labels))[0]}/{next(iter(labels))[1]}); "
                      "use the label file that came with these clips")
    raise UserError(f"no TCD-TIMIT clip has labels or a transcript: put the corpus's "
                    f"volunteer_labelfiles.mlf in {root}, or TIMIT's prompts in "
                    f"{root / 'prompts.txt'} ('text (sa1)' or 'sa1 text' per line)")
  return clips
