"""Synthesis memory and speed: peak RSS of a 10-minute input vs a 30-second one, per-stage fps.

    .venv/bin/python experiments/bench_synthesis.py                    # 30 s and 10 min
    .venv/bin/python experiments/bench_synthesis.py --seconds 30 120 --width 0.25

For each duration it generates a face video (a real photo from an installed package, moving a
little every frame, --size px square, 25 fps) and a voiced tone of the same length, then runs
the audio-driven synthesis (face video + audio -> mp4, the streaming path) in a fresh process
and reads that process's peak RSS (VmHWM). A text run (photo + a short paragraph through TAEM)
is timed once. Models are random-weight checkpoints (Wav2Lip --width; TAEM tiny): memory and
speed do not depend on the weights' values. Prints one table; the streaming criterion is
"peak RSS of the longest input <= 1.5 x that of the shortest".

Stage rates are frames (or text chunks) per second from the end of the previous stage, so they
include jit compilation and, for the first stage, the input checks (audio decoding, g2p).
Cost here (2 shared cores): about 10-25 minutes with the defaults, most of it the 10-minute run.

Measured 2026-11-30 on the 2-core box shared with other jobs (load average ~8), width 0.125,
160x160 video, batch 32:
  | input                  | frames | peak RSS | total   | detect fps | render fps |
  | audio + video, 30 s    |    747 | 730 MiB  |  39.9 s |       53.0 |       30.1 |
  | audio + video, 600 s   |  14997 | 771 MiB  | 574.2 s |       87.5 |       38.9 |
  peak RSS 600 s / 30 s = 1.06 (before the mel was computed in blocks: 791 / 1189 MiB = 1.50).
  text + image, 25 words (random TAEM: 18 frames): 64 s, nearly all jit compilation at load ~17.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXT = ("Place blue at F two now. Set green by A nine again, please. Lay white with P four soon. "
        "Bin red in G one now.")


def _make_inputs(folder: pathlib.Path, seconds: float, size: int) -> tuple[pathlib.Path, ...]:
  import cv2  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from taem_jax import video  # pylint: disable=g-import-not-at-top
  from taem_jax.data.sample import portraits  # pylint: disable=g-import-not-at-top
  from taem_jax.face import FaceDetector  # pylint: disable=g-import-not-at-top
  img_path = folder / "face.png"
  if not img_path.exists():
    img = portraits.make_portraits(1, size, np.random.default_rng(0), FaceDetector())[0].image
    cv2.imwrite(str(img_path), img)
  img = cv2.imread(str(img_path))
  n = int(round(seconds * 25))
  vid = folder / f"face_{seconds:g}s.mp4"
  if not vid.exists():
    def frames():
      for k in range(0, n, 250):
        yield np.stack([np.roll(img, int(2 * np.sin(i / 7)), axis=1)
                        for i in range(k, min(n, k + 250))])
    video.write_video(vid, frames(), 25)
  wav = folder / f"speech_{seconds:g}s.wav"
  if not wav.exists():
    sr = 16000
    with sf.SoundFile(str(wav), "w", sr, 1) as f:  # written in pieces: flat memory here too
      for k in range(0, int(seconds * sr), 10 * sr):
        t = np.arange(k, min(int(seconds * sr), k + 10 * sr)) / sr
        f.write(0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2.5 * t)))
  return img_path, vid, wav


def _make_checkpoints(folder: pathlib.Path, width: float) -> tuple[pathlib.Path, pathlib.Path]:
  from flax import nnx  # pylint: disable=g-import-not-at-top
  from taem_jax import models  # pylint: disable=g-import-not-at-top
  from taem_jax.face import SpeakerEmbedder  # pylint: disable=g-import-not-at-top
  from taem_jax.models import pretrained, taem_checkpoint  # pylint: disable=g-import-not-at-top
  from taem_jax.models.taem import TAEM, TAEMConfig  # pylint: disable=g-import-not-at-top
  from taem_jax.text import PhonemeVocab  # pylint: disable=g-import-not-at-top
  w2l_dir, taem_dir = folder / f"wav2lip_{width:g}", folder / f"taem_{width:g}"
  if not w2l_dir.exists():
    w2l = models.create("wav2lip", seed=0, width=width)
    pretrained.save_pretrained(w2l, w2l_dir, family="wav2lip", config=w2l.get_config())
  if not taem_dir.exists():
    vocab = PhonemeVocab()
    cfg = TAEMConfig.from_vocab(vocab, hidden=64, latent_dim=int(512 * width), speaker_dim=128,
                                encoder_layers=2, refiner_layers=2, ffn_filter=128,
                                ffn_kernels=(3, 1), dp_filter=64)
    taem_checkpoint.save_taem(TAEM(cfg, rngs=nnx.Rngs(0)), taem_dir, vocab=vocab,
                              speaker_embedding=SpeakerEmbedder("dlib").describe())
  return w2l_dir, taem_dir


def _child(args) -> None:
  """One synthesis in this process; prints a JSON line with timings and peak RSS."""
  from taem_jax import synthesis  # pylint: disable=g-import-not-at-top
  stages = {}  # stage -> {"start": end of the previous stage, "end": last report, "count"}
  last = {"t": None}

  def progress(stage, advance, total):
    now = time.perf_counter()
    if stage not in stages:
      stages[stage] = {"start": last["t"], "end": now, "count": 0, "total": total}
    s = stages[stage]
    s["end"], s["count"] = now, s["count"] + advance
    last["t"] = now

  t0 = time.perf_counter()
  synth = synthesis.Synthesizer(args.wav2lip, args.taem,
                                options=synthesis.Options(batch_size=args.batch_size))
  t_load = time.perf_counter() - t0
  t0 = time.perf_counter()
  last["t"] = t0  # the first stage also pays for the input checks (audio decoding, g2p)
  kw = {"text": TEXT} if args.job_text else {"audio": args.job_audio}
  res = synth.synthesize(args.job_face, args.job_out, progress=progress, **kw)
  total = time.perf_counter() - t0
  peak = 0
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        peak = int(line.split()[1]) * 1024
  print(json.dumps({"frames": res.frames, "total_s": total, "load_s": t_load, "peak_rss": peak,
                    "stages": {k: {"s": v["end"] - v["start"], "n": v["count"]}
                               for k, v in stages.items()}}))


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--seconds", type=float, nargs="+", default=[30, 600],
                 help="input durations to compare (the first is the reference)")
  p.add_argument("--size", type=int, default=160, help="face video side, px")
  p.add_argument("--width", type=float, default=0.125, help="Wav2Lip channel width")
  p.add_argument("--batch_size", type=int, default=32, help="generator batch")
  p.add_argument("--workdir", default=None, help="keep inputs here (default: a temp folder)")
  p.add_argument("--no_text", action="store_true", help="skip the text run")
  for name in ("wav2lip", "taem", "job_face", "job_audio", "job_out", "job_text"):
    p.add_argument(f"--{name}", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.job_out:
    _child(args)
    return

  tmp = None
  if args.workdir:
    folder = pathlib.Path(args.workdir)
    folder.mkdir(parents=True, exist_ok=True)
  else:
    tmp = tempfile.TemporaryDirectory(prefix="bench_synthesis_")
    folder = pathlib.Path(tmp.name)
  w2l, taem = _make_checkpoints(folder, args.width)
  runs = []
  jobs = [("audio + video", s, False) for s in args.seconds]
  if not args.no_text:
    jobs.append(("text + image", None, True))
  for label, seconds, is_text in jobs:
    img, vid, wav = _make_inputs(folder, seconds or min(args.seconds), args.size)
    cmd = [sys.executable, __file__, "--wav2lip", str(w2l), "--taem", str(taem),
           "--batch_size", str(args.batch_size), "--job_out", str(folder / "out.mp4")]
    cmd += (["--job_face", str(img), "--job_text", "1"] if is_text else
            ["--job_face", str(vid), "--job_audio", str(wav)])
    print(f"[bench] {label} {'' if is_text else f'{seconds:g} s'} ...", file=sys.stderr,
          flush=True)
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
      sys.exit(f"benchmark run failed:\n{r.stderr[-2000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    runs.append((label, seconds, res))

  load = os.getloadavg()[0]
  print(f"\nSynthesis, Wav2Lip width {args.width:g} (random weights), {args.size}x{args.size} "
        f"face video at 25 fps, batch {args.batch_size}; load average {load:.1f} on "
        f"{os.cpu_count()} CPUs\n")
  print("| input | output frames | peak RSS (MiB) | total s | detect fps | text chunks/s | "
        "render fps (generate + paste + encode) |")
  print("|---|---|---|---|---|---|---|")
  for label, seconds, res in runs:
    st = res["stages"]
    rate = lambda k: (f"{st[k]['n'] / st[k]['s']:.1f}" if k in st and st[k]["s"] > 0  # noqa
                      else "-")
    name = f"{label}, {seconds:g} s" if seconds else f"{label} ({len(TEXT.split())} words)"
    print(f"| {name} | {res['frames']} | {res['peak_rss'] / 2**20:.0f} | {res['total_s']:.1f} | "
          f"{rate('detect')} | {rate('text')} | {rate('render')} |")
  audio_runs = [r for r in runs if r[1] is not None]
  if len(audio_runs) >= 2:
    ref, longest = audio_runs[0][2]["peak_rss"], audio_runs[-1][2]["peak_rss"]
    ratio = longest / ref
    print(f"\npeak RSS {audio_runs[-1][1]:g} s / {audio_runs[0][1]:g} s = {ratio:.2f} "
          f"({'within' if ratio <= 1.5 else 'ABOVE'} the 1.5x streaming budget)")
  if tmp is not None:
    tmp.cleanup()


if __name__ == "__main__":
  main()
