"""Cost of preparing a corpus here: seconds per clip with 1 and N workers, and the whole corpus.

    .venv/bin/python experiments/build_cost.py                      # 4 clips per corpus, ~10 min
    .venv/bin/python experiments/build_cost.py --corpora grid --clips 2 --workers 1

For each corpus a few clips are generated at the real distribution's frame size, frame rate and
a typical length (a portrait animated by the sample corpus's code, speaking with espeak-ng, put
on a canvas of that size), then prepared by the builders' own per-clip work
(`prepare.FrontEnd.process` through `corpus.ClipPreparer`: decode, 25 fps resampling, face
tracking, crops, JPEG, mel, speaker embedding, alignment of the transcript; no z_a), once in this
process and once by `corpus.parallel_prepare` on N spawned workers. Models are loaded and the
workers started before the clock runs. The totals scale the seconds per second of video to the
real corpus's size (GRID: 33 talkers x 1000 clips of 3 s; TCD-TIMIT: 62 speakers x 98
sentences, ~4 s each; LRS2: main 45,839 + val/test 2,325 utterances, ~29 h, and pretrain 96,318,
~195 h, as counted in the LRS2 release). The machine is shared: the load average is printed.
"""
import argparse
import dataclasses
import os
import pathlib
import sys
import tempfile
import time

import cv2
import numpy as np

from taem_jax import video
from taem_jax.data import corpus, prepare
from taem_jax.data.sample import dummy, portraits
from taem_jax.errors import UserError, cli_main
from taem_jax.face import FaceDetector
from taem_jax.text import PhonemeVocab


@dataclasses.dataclass(frozen=True)
class Layout:
  """One distribution's video format and size (for the extrapolation)."""
  name: str
  width: int
  height: int
  fps: float
  seconds: float
  face_px: int  # side of the rendered head square on the canvas
  corpus_hours: float
  corpus_clips: int
  note: str


LAYOUTS = {
    "grid": Layout("GRID", 360, 288, 25.0, 3.0, 288, 33 * 1000 * 3.0 / 3600, 33 * 1000,
                   "33 x 1000 clips, 3 s"),
    "tcd_timit": Layout("TCD-TIMIT", 1920, 1080, 29.97, 4.0, 1080, 62 * 98 * 4.0 / 3600, 62 * 98,
                        "62 x 98 sentences, ~4 s"),
    "lrs2": Layout("LRS2", 160, 160, 25.0, 3.0, 160, 29.0 + 195.0, 48164 + 96318,
                   "main+val+test 48,164 (~29 h) + pretrain 96,318 (~195 h)"),
}
SENTENCES = ["bin blue at f two now", "place green by k seven soon", "lay red with d nine again",
             "set white in q five please", "she had your dark suit in greasy wash water"]


def make_clip(path: pathlib.Path, lay: Layout, portrait, text: str, seed: int) -> None:
  """A clip of `lay`'s size, rate and length: the animated portrait centred on a grey canvas."""
  tmp = path.with_suffix(".square.mp4")
  dummy.write_clip(tmp, text, portrait, fps=lay.fps, seed=seed, trail_s=1.0)
  frames, _ = video.read_video(tmp)
  wav = video.extract_audio(tmp)
  tmp.unlink()
  n = int(round(lay.seconds * lay.fps))
  idx = np.minimum(np.arange(n), len(frames) - 1)  # hold the last frame if the speech is short
  side = min(lay.face_px, lay.height, lay.width)
  y0, x0 = (lay.height - side) // 2, (lay.width - side) // 2

  def canvas():
    for i in idx:
      img = np.full((lay.height, lay.width, 3), 110, np.uint8)
      img[y0:y0 + side, x0:x0 + side] = cv2.resize(frames[i], (side, side),
                                                    interpolation=cv2.INTER_LINEAR)
      yield img

  video.write_video(path, canvas(), lay.fps, audio_wav=prepare.fit_length(
      wav, int(lay.seconds * 16000)), audio_sr=16000)


def _timed(results) -> float:
  t0 = time.perf_counter()
  for _, (ex, skip) in results:
    if skip is not None:
      raise UserError(f"a benchmark clip was skipped ({skip[0]}): {skip[1]}")
    assert ex["faces"]
  return time.perf_counter() - t0


def measure(key: str, clips: int, workers_list, work: pathlib.Path, portrait) -> list[dict]:
  lay = LAYOUTS[key]
  folder = work / key
  folder.mkdir(parents=True, exist_ok=True)
  paths = []
  for i in range(clips + 1):  # +1: the warm-up clip
    p = folder / f"c{i}.mp4"
    if not p.exists():
      make_clip(p, lay, portrait, SENTENCES[i % len(SENTENCES)], seed=i)
    paths.append(p)
  spec = prepare.FrontEndSpec(PhonemeVocab())
  rows = []
  for workers in workers_list:
    cache = pathlib.Path(tempfile.mkdtemp(dir=work, prefix=f"cache-{key}-{workers}-"))
    mk = [prepare.Clip(uid=f"{tag}/{i}", speaker="s", video=p,
                       text=SENTENCES[i % len(SENTENCES)])
          for tag in ("warm", "run") for i, p in enumerate(paths)]
    warm, run = mk[:workers], mk[len(paths) + 1:]
    preparer = corpus.ClipPreparer(spec, str(cache), "bench")
    if workers == 1:
      front = spec.build()
      prepare.prepare_clip(front, cache, warm[0])
      secs = _timed((c, prepare.prepare_clip(front, cache, c)) for c in run)
    else:
      pool = corpus.WorkerPool(workers)
      try:
        # One warm-up clip per worker, submitted together: each idle worker takes one.
        for f in [pool.submit(preparer.result, c) for c in warm]:
          f.result()
        secs = _timed(corpus.parallel_prepare(preparer, run, pool))
      finally:
        pool.close()
    per_clip = secs / len(run)
    per_video_s = per_clip / lay.seconds
    rows.append({"corpus": lay.name, "size": f"{lay.width}x{lay.height}", "fps": lay.fps,
                 "clip_s": lay.seconds, "workers": workers, "s_per_clip": per_clip,
                 "clips_per_s": 1.0 / per_clip,
                 "total_h": per_video_s * lay.corpus_hours,
                 "extent": lay.note})
    print(f"  {lay.name} workers={workers}: {per_clip:.2f} s/clip "
          f"({len(run)} clips in {secs:.1f} s)", flush=True)
  return rows


def table(rows) -> str:
  out = ["| corpus | frames | workers | s / clip | clips / s | whole corpus here | corpus extent |",
         "|---|---|---|---|---|---|---|"]
  for r in rows:
    total = r["total_h"]
    when = f"{total:.1f} h" if total < 48 else f"{total / 24:.1f} days"
    out.append(f"| {r['corpus']} | {r['size']} @ {r['fps']:g} fps, {r['clip_s']:g} s | "
               f"{r['workers']} | {r['s_per_clip']:.2f} | {r['clips_per_s']:.2f} | {when} | "
               f"{r['extent']} |")
  return "\n".join(out)


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--corpora", default="grid,tcd_timit,lrs2",
                 help=f"comma-separated, from {', '.join(LAYOUTS)}")
  p.add_argument("--clips", type=int, default=4, help="timed clips per corpus and worker count")
  p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
  p.add_argument("--work_dir", default=None, help="where clips are generated (default: temp)")
  args = p.parse_args(argv)
  args.corpora = [c for c in args.corpora.split(",") if c]
  bad = [c for c in args.corpora if c not in LAYOUTS]
  if bad:
    p.error(f"unknown corpus {bad[0]!r}: choose from {', '.join(LAYOUTS)}")
  try:
    args.workers = [int(w) for w in args.workers.split(",") if w]
  except ValueError:
    p.error(f"--workers takes comma-separated integers, got {args.workers!r}")
  if not args.workers or min(args.workers) < 1 or args.clips < 1:
    p.error("--workers must be >= 1 and --clips >= 1")
  return args


@cli_main
def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  work = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="build_cost-"))
  work.mkdir(parents=True, exist_ok=True)
  print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores); "
        f"clips in {work}", flush=True)
  portrait = portraits.make_portraits(1, 256, np.random.default_rng(0), FaceDetector())[0]
  rows = []
  for key in args.corpora:
    rows += measure(key, args.clips, args.workers, work, portrait)
  print(f"load average at end: {os.getloadavg()[0]:.1f}")
  print(table(rows))


if __name__ == "__main__":
  main()
