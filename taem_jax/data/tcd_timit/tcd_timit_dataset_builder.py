"""TCD-TIMIT audio-visual corpus (Harte & Gillen 2015): volunteers, straight camera.

    experiments/build_dataset.py --dataset tcd_timit --manual_dir /data/tcd_timit --data_dir OUT

Video is 29.97 fps; it is resampled to 25 fps when prepared (`prepare.resample_indices`:
nearest source frame, audio untouched), because Wav2Lip, whose audio windows and generator TAEM
targets, works at 25 fps (the paper does not say how it handled 29.97 fps). See README.md for
the layout.
"""
import pathlib
import re

from taem_jax.data import corpus, prepare
from taem_jax.errors import UserError

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")
_CAMERA_DIRS = ("Clips/straightcam", "straightcam", "Clips/straightCam")
_PROMPT_FILES = ("prompts.txt", "PROMPTS.TXT", "sentences.txt")
_TEXTGRID_DIRS = ("textgrids/{s}", "mfa/{s}")
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
  EXPECTED_SHORT = ("volunteers/<id>/Clips/straightcam/*.mp4 plus prompts.txt "
                    "(see taem_jax/data/tcd_timit/README.md)")
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
      if not text and tg is None:
        if count_skip:
          count_skip("missing_transcript")
        continue
      clips.append(prepare.Clip(uid=f"{spk}/{utt}", speaker=spk, video=v, text=text,
                                textgrid=tg))
  if not found_cam:
    raise UserError(f"no straight-camera clips under {vol}: expected volunteers/<id>/Clips/"
                    "straightcam/*.mp4, see taem_jax/data/tcd_timit/README.md")
  if not clips:
    raise UserError(f"no TCD-TIMIT clip has a transcript: put TIMIT's prompts in "
                    f"{root / 'prompts.txt'} ('text (sa1)' or 'sa1 text' per line)")
  return clips
