"""Talking-face synthesis from text or audio on a face image or video (one job or a batch).

  taem-synthesize --face me.jpg --text "Hello there." --out hello.mp4
  taem-synthesize --face me.jpg --text "Hello there." --taem ckpt/taem --wav2lip ckpt/wav2lip \\
      --out hello.mp4 [--speech]
  taem-synthesize --face talk.mp4 --audio speech.m4a --wav2lip ckpt/wav2lip --out synced.mp4
  taem-synthesize --batch jobs.csv --taem ckpt/taem --wav2lip ckpt/wav2lip
  taem-synthesize --face talk.mp4 --transcript "I will meet you on Monday." \\
      --edit "on Monday" --to "on Friday" --taem ckpt/taem --wav2lip ckpt/wav2lip --out edited.mp4

(also `python experiments/synthesize.py ...`). Without --wav2lip and --taem the demo-scale
models committed in checkpoints/demo are used (trained on the generated sample corpus, not on
a real dataset: they show the pipeline, not the paper's quality).

The output is an H.264 + AAC mp4 that browsers play. Text gives a 25 fps video with a silent
audio track, or with --speech an espeak-ng voice timed to the lips; audio gives the face video's
frame rate with that audio. A face video shorter than the speech plays forwards and backwards; a
longer one is cut. Frames without a face are passed through unchanged.

Editing (--edit OLD --to NEW --transcript TEXT): only the frames where the video says OLD are
re-synthesised to say NEW (same length; --fade frames cross-faded at each edge), every other
frame is copied exactly; the output is lossless H.264 RGB (plays in VLC/mpv/ffmpeg, not in
browsers) unless --lossy. The audio is kept (--speech: espeak-ng says NEW in the span); --audio
gives the video's speech when the video has no audio track. --own_length --speech gives NEW
TAEM's predicted duration instead (the frames after it shift; the video changes length).

Batch file: CSV with a header row and the columns face, text, audio, out (one of text/audio per
row; relative paths are relative to the CSV's folder). Every row is tried; a bad row prints one
error line and the others still run; the exit status is 2 if any row failed.

A bad input prints one line "error: ..." and exits with status 2, leaving no output file.
"""
from __future__ import annotations

import argparse
import csv
import os
import pathlib
import sys
import warnings

from tqdm import tqdm

from taem_jax import paths, xla_flags
from taem_jax.cli import add_backbone_argument
from taem_jax.errors import UserError, cli_main
from taem_jax.face import detectors
from taem_jax.models import targets
from taem_jax.synthesis import Options, Synthesizer

_DEFAULTS = Options()  # the flags' defaults
_STAGES = {"detect": "frames", "text": "chunks", "render": "frames", "align": "steps"}  # bar units


class _Bars:
  """One tqdm bar per stage (the previous stage's bar is closed when the next one starts)."""

  def __init__(self, enabled: bool, label: str = ""):
    self.enabled, self.label = enabled, label
    self.bar, self.stage = None, None

  def __call__(self, stage: str, advance: int, total: int | None) -> None:
    if not self.enabled:
      return
    if stage != self.stage:
      self.close()
      self.bar = tqdm(total=total, desc=f"{self.label}{stage}", unit=_STAGES.get(stage, "it"),
                      file=sys.stderr, leave=True, dynamic_ncols=True)
      self.stage = stage
    self.bar.update(advance)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()
    self.bar, self.stage = None, None


class _Parser(argparse.ArgumentParser):
  def error(self, message):  # one line, like every other user error (argparse prints usage)
    raise UserError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
  p = _Parser(prog="taem-synthesize", description=__doc__.split("\n\n")[0],
                              epilog=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--face", help="face image (.jpg/.png) or video")
  src = p.add_mutually_exclusive_group()
  src.add_argument("--text", help="English text to say (needs --taem)")
  src.add_argument("--audio", help="speech audio file (wav/mp3/flac/m4a/..., any rate)")
  p.add_argument("--out", help="output .mp4 (its folder must exist)")
  p.add_argument("--batch", help="CSV of jobs (columns face,text,audio,out) instead of "
                 "--face/--text/--audio/--out")
  p.add_argument("--edit", metavar="OLD", help="edit a video: the words to replace (they must "
                 "occur once in --transcript)")
  p.add_argument("--to", metavar="NEW", help="with --edit: the replacement words")
  p.add_argument("--transcript", help="with --edit: the words spoken in the --face video")
  p.add_argument("--fade", type=int, default=3,
                 help="with --edit: cross-faded frames at each edge of the edited span")
  p.add_argument("--own_length", action="store_true", help="with --edit --speech: the new words "
                 "take TAEM's predicted duration (the video gets longer or shorter) instead of "
                 "the old words' frames")
  p.add_argument("--lossy", action="store_true", help="with --edit: browser-playable H.264 "
                 "yuv420p instead of lossless (untouched frames then only visually identical)")
  p.add_argument("--wav2lip", help="Wav2Lip checkpoint directory (default, with no --taem "
                 "either: the committed demo models)")
  p.add_argument("--taem", help="TAEM checkpoint directory (for text and --edit)")
  add_backbone_argument(p)
  p.add_argument("--force_pairing", action="store_true", help="use --taem with a --wav2lip "
                 "whose audio encoder is not the one the TAEM was trained against (refused by "
                 "default: its mouths would be wrong; a warning is printed instead)")
  p.add_argument("--speech", action="store_true", help="text: add an espeak-ng voice timed to "
                 "TAEM's durations (default: silent audio track)")
  p.add_argument("--voice", default=_DEFAULTS.voice, help="espeak-ng voice for --speech")
  p.add_argument("--arcface", help="ArcFace ONNX file, for a TAEM trained on ArcFace embeddings")
  p.add_argument("--batch_size", type=int, default=_DEFAULTS.batch_size,
                 help="frames per generator batch")
  p.add_argument("--detect_stride", type=int, default=_DEFAULTS.detect_stride,
                 help="run the face detector every k frames (1: every frame)")
  p.add_argument("--smooth", type=int, default=_DEFAULTS.smooth,
                 help="face-box smoothing window (frames)")
  p.add_argument("--pads", type=int, nargs=4, default=_DEFAULTS.pads,
                 metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"), help="face crop padding (px)")
  p.add_argument("--paste", choices=("lower", "box"), default=_DEFAULTS.paste,
                 help="what of the generated face is pasted back: 'lower' (default) the mouth, "
                 "jaw and chin through a soft mask, colour-matched, every other pixel kept; "
                 "'box' the whole face box, as official Wav2Lip does")
  p.add_argument("--feather", type=float, default=_DEFAULTS.feather,
                 help="with --paste box: blend border as a fraction of the face box (0: hard)")
  p.add_argument("--face_index", type=int, default=_DEFAULTS.face_index,
                 help="which face to animate, counted from the left (default: the largest)")
  p.add_argument("--detector", choices=detectors.KINDS, default=detectors.DEFAULT_KIND,
                 help="face detector: 'hog+cnn' (default) dlib's HOG, with dlib's CNN on frames "
                 "where the HOG finds no face (turned, small or dark faces); 'hog' fastest, "
                 "frontal only; 'cnn' every frame (slow on a CPU); 's3fd' official Wav2Lip's "
                 "detector (needs --s3fd_dir)")
  p.add_argument("--s3fd_dir", default=None,
                 help="with --detector s3fd: the folder `python -m porting.convert` wrote from "
                 "s3fd-619a316812.pth (default: $TAEM_JAX_S3FD)")
  p.add_argument("--no_track_cache", action="store_true",
                 help="track the face video's faces again instead of reusing the track stored "
                 "by an earlier run on the same video (cached in $TAEM_JAX_HOME/tracks)")
  p.add_argument("--fps", type=float, default=_DEFAULTS.image_fps,
                 help="frame rate for an image with audio")
  p.add_argument("--no_progress", action="store_true", help="no progress bars")
  return p


def _read_batch(path: str) -> list[dict]:
  p = pathlib.Path(path).expanduser()
  if not p.is_file():
    raise UserError(f"batch file not found: {p}")
  try:
    with open(p, newline="", encoding="utf-8") as f:
      rows = list(csv.DictReader(f))
  except (OSError, UnicodeDecodeError, csv.Error) as e:
    raise UserError(f"cannot read batch file {p}: {e}") from None
  if not rows:
    raise UserError(f"batch file {p} has no jobs (expected a header row face,text,audio,out "
                    "and one row per job)")
  missing = {"face", "out"} - set(rows[0])
  if missing or not ({"text", "audio"} & set(rows[0])):
    raise UserError(f"batch file {p} needs the columns face, out and text and/or audio; it has "
                    f"{', '.join(k for k in rows[0] if k)}")
  base = p.parent
  jobs = []
  for i, row in enumerate(rows, start=2):  # line numbers as an editor shows them
    def rel(v):
      v = (v or "").strip()
      return str(base / os.path.expanduser(v)) if v else None
    text = row.get("text") or None
    jobs.append({"line": i, "face": rel(row.get("face")) or "", "out": rel(row.get("out")) or "",
                 "text": text, "audio": rel(row.get("audio"))})
  return jobs


DEMO_NOTE = ("note: no --wav2lip/--taem given: using the demo-scale models in {}, trained on "
             "the generated sample corpus (they show the pipeline, not the paper's quality)")


def _options(args) -> Options:
  return Options(batch_size=args.batch_size, detect_stride=args.detect_stride,
                 smooth=args.smooth, pads=tuple(args.pads), paste=args.paste,
                 feather=args.feather,
                 face_index=args.face_index, image_fps=args.fps, voice=args.voice,
                 track_cache=not args.no_track_cache)


def _checkpoints(args) -> tuple[str, str | None]:
  """(Wav2Lip dir, TAEM dir or None): the flags, or the committed demo models if neither is
  given (said once on stderr)."""
  if args.wav2lip is not None:
    return args.wav2lip, args.taem
  if args.taem is not None:
    raise UserError("--taem needs the Wav2Lip checkpoint it was trained against: add "
                    "--wav2lip DIR")
  name = targets.backbone_class(args.backbone).demo
  if name is None:
    raise UserError(f"there are no demo models for the {args.backbone} backbone: pass "
                    "--wav2lip DIR (its checkpoint) and --taem DIR")
  demo = [paths.demo_model(name), paths.demo_model("taem")]
  missing = [d for d in demo if not d.is_dir()]
  if missing:
    raise UserError(f"the demo models are not installed ({missing[0]} is missing): pass "
                    "--wav2lip DIR and --taem DIR")
  print(DEMO_NOTE.format(demo[0].parent), file=sys.stderr)
  return str(demo[0]), str(demo[1])


@cli_main
def main(argv=None) -> int:
  # ffmpeg runs through subprocess (fork + immediate exec), which is safe with JAX's threads;
  # Python 3.12 warns about any fork in a threaded process.
  warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
  args = _parser().parse_args(argv)
  xla_flags.prefer_eigen_convolutions()  # before JAX starts: 1.56x faster generator on CPU
  options = _options(args)
  if args.edit is not None or args.to is not None:
    return _edit(args, options)
  if args.transcript is not None:
    raise UserError("--transcript goes with --edit OLD --to NEW")
  if args.batch:
    if args.face or args.text is not None or args.audio or args.out:
      raise UserError("--batch replaces --face/--text/--audio/--out; give one or the other")
    jobs = _read_batch(args.batch)
  else:
    if not args.face:
      raise UserError("--face is required (an image or a video), or --batch FILE")
    if args.text is None and not args.audio:
      raise UserError("give --text \"...\" (with --taem) or --audio FILE")
    if not args.out:
      raise UserError("--out is required (the .mp4 to write)")
    jobs = [{"line": None, "face": args.face, "text": args.text, "audio": args.audio,
             "out": args.out}]
  if any(j["text"] is not None for j in jobs) and args.wav2lip and not args.taem:
    raise UserError("text input needs a TAEM checkpoint: add --taem DIR (or use --audio)")

  wav2lip_dir, taem_dir = _checkpoints(args)
  synth = Synthesizer(wav2lip_dir, taem_dir, options=options, arcface_path=args.arcface,
                      allow_mismatched_wav2lip=args.force_pairing, detector=args.detector,
                      s3fd_dir=args.s3fd_dir, backbone=args.backbone)
  failed = 0
  for job in jobs:
    where = f"row {job['line']}: " if job["line"] is not None else ""
    bars = _Bars(not args.no_progress, label=where)
    try:
      if job["text"] is not None and job["audio"]:
        raise UserError("give text or audio, not both")
      res = synth.synthesize(job["face"], job["out"], text=job["text"],
                             audio=job["audio"] if job["text"] is None else None,
                             speech=args.speech, progress=bars)
    except UserError as e:
      bars.close()
      if job["line"] is None:
        raise
      print(f"error: {where}{e}", file=sys.stderr)
      failed += 1
      continue
    bars.close()
    print(res.summary())
  if failed:
    print(f"error: {failed} of {len(jobs)} jobs failed (see the lines above)", file=sys.stderr)
    return 2
  return 0


def _edit(args, options: Options) -> int:
  if args.edit is None or args.to is None:
    raise UserError("editing needs both --edit OLD and --to NEW")
  if args.batch or args.text is not None:
    raise UserError("--edit works on one --face video; it does not combine with --batch/--text")
  if not args.face:
    raise UserError("--face is required: the video to edit")
  if args.transcript is None:
    raise UserError("--edit needs --transcript \"...\": the words spoken in the video")
  if not args.out:
    raise UserError("--out is required (the .mp4 to write)")
  if args.wav2lip and not args.taem:
    raise UserError("editing needs a TAEM checkpoint: add --taem DIR")
  wav2lip_dir, taem_dir = _checkpoints(args)
  synth = Synthesizer(wav2lip_dir, taem_dir, options=options, arcface_path=args.arcface,
                      allow_mismatched_wav2lip=args.force_pairing, detector=args.detector,
                      s3fd_dir=args.s3fd_dir, backbone=args.backbone)
  bars = _Bars(not args.no_progress)
  try:
    res = synth.edit(args.face, args.out, transcript=args.transcript, old=args.edit,
                     new=args.to, audio=args.audio, fade=args.fade, speech=args.speech,
                     lossless=not args.lossy, keep_length=not args.own_length, progress=bars)
  finally:
    bars.close()
  print(res.summary())
  return 0


if __name__ == "__main__":
  sys.exit(main())
