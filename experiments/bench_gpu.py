"""Speed of taem-jax on a GPU (or any JAX device): one prepared run, one table + JSON.

    python3 experiments/bench_gpu.py --out out/bench_gpu          # on the GPU machine, ~5 min
    .venv/bin/python experiments/bench_gpu.py --smallest --out /tmp/b   # CPU smoke test, ~1 min

Measures, on `jax.devices()[0]`:

  generator   Wav2Lip generator (width 1, random weights, fp32), frames/s at B = 1 ... 512
              (inputs already on the device), compile seconds, peak device memory.
  pipeline    end to end from a video: decode (OpenCV), crop, generate, paste, encode
              (OpenCV mp4v) each timed alone, then all of them overlapped by
              `runner.pipelined` as synthesis runs them; which stage limits. The face track is
              fixed boxes (the face-track cache hit: dlib and ffmpeg are not on the GPU
              machine, so detection and H.264 are left to the CPU benchmark).
  train       TAEM training steps/s at paper size, batch 64 (L_dis + L_dur, Adam), and
              Wav2Lip generator training steps/s (L1, Adam, 16 windows x 5 frames), each
              with peak device memory.
  transfers   one TAEM step, one generator step and one generator call under
              `jax.transfer_guard("disallow")` with inputs placed beforehand: "ok" or the
              first unexpected host<->device transfer.

It needs only what the GPU machine has (jax with CUDA, flax, optax, numpy, opencv); the two
modules taem_jax imports at the top that are missing there (soundfile, imageio-ffmpeg) are
replaced by empty stand-ins, which nothing measured here calls. `--smallest` shrinks every
size (width 1/16, B = 1, tiny TAEM, 3 frames) for the CPU test.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import pathlib
import platform
import sys
import tempfile
import time
import types

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# soundfile and imageio-ffmpeg are absent on the GPU machine; only functions this script never
# calls use them, so empty modules let taem_jax's top-level imports succeed.
for _name in ("soundfile", "imageio_ffmpeg"):
  try:
    importlib.import_module(_name)
  except ImportError:
    sys.modules[_name] = types.ModuleType(_name)

# pylint: disable=wrong-import-position
import cv2  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402

from taem_jax import face as face_lib  # noqa: E402
from taem_jax import models  # noqa: E402
from taem_jax.models.taem import TAEM, TAEMConfig  # noqa: E402
from taem_jax.synthesis import runner  # noqa: E402
from taem_jax.text import PhonemeVocab  # noqa: E402
from taem_jax.train import losses  # noqa: E402


def _log(msg: str) -> None:
  print(f"[bench_gpu {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _sync(x):
  return jax.block_until_ready(x)


def _timed(fn, seconds: float, min_calls: int = 3) -> float:
  """Median seconds per call of `fn()` over about `seconds` (after one warm-up call)."""
  _sync(fn())
  times, t_start = [], time.perf_counter()
  while len(times) < min_calls or time.perf_counter() - t_start < seconds:
    t0 = time.perf_counter()
    _sync(fn())
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def peak_memory(device) -> int | None:
  """Peak bytes in use on `device` since the process started (None where not reported)."""
  stats = device.memory_stats() if hasattr(device, "memory_stats") else None
  return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def _inputs(b: int, rng):
  """Random generator inputs on the device. Shapes: (b, 80, 16, 1), (b, 96, 96, 6)."""
  mel = rng.standard_normal((b, 80, 16, 1)).astype(np.float32)
  faces = rng.uniform(0, 1, (b, 96, 96, 6)).astype(np.float32)
  return jax.device_put(mel), jax.device_put(faces)


def bench_generator(args, dev) -> list[dict]:
  model = models.create("wav2lip", seed=0, width=args.width)
  graphdef, state = runner.eval_split(model)
  state = jax.device_put(state, dev)
  rows, rng = [], np.random.default_rng(0)
  for b in args.batches:
    mel, faces = _inputs(b, rng)
    t0 = time.perf_counter()
    _sync(runner.generate_batch(graphdef, state, mel, faces))
    compile_s = time.perf_counter() - t0
    sec = _timed(lambda: runner.generate_batch(graphdef, state, mel, faces),  # noqa: B023
                 args.seconds)
    rows.append({"b": b, "fps": b / sec, "median_s": sec, "compile_s": compile_s,
                 "peak_bytes": peak_memory(dev)})
    _log(f"generator B={b}: {b / sec:.1f} frames/s")
  return rows


def _face_video(path: pathlib.Path, n: int, size: int) -> np.ndarray:
  """A video of a moving textured square (OpenCV mp4v) and its face box. Shapes: -> (4,)."""
  rng = np.random.default_rng(0)
  base = rng.integers(0, 255, (size, size, 3), np.uint8)
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (size, size))
  for i in range(n):
    writer.write(np.roll(base, i % 7, axis=1))
  writer.release()
  s = size
  return np.array([s // 4, s // 4, 3 * s // 4, 3 * s // 4], np.int32)


def bench_pipeline(args, dev) -> dict:
  """Each synthesis stage alone, then overlapped (`runner.pipelined`); frames/s."""
  del dev
  model = models.create("wav2lip", seed=0, width=args.width)
  n, bs = args.frames, args.batch_size
  with tempfile.TemporaryDirectory() as tmp:
    src = pathlib.Path(tmp) / "face.mp4"
    box = _face_video(src, n, args.size)
    rng = np.random.default_rng(1)
    mels = rng.standard_normal((n, 80, 16, 1)).astype(np.float32)

    def chunks():
      cap = cv2.VideoCapture(str(src))
      try:
        while True:
          frames = []
          while len(frames) < bs:
            ok, f = cap.read()
            if not ok:
              break
            frames.append(f)
          if not frames:
            return
          yield np.stack(frames)
      finally:
        cap.release()

    def crop(frames):
      boxes = np.repeat(box[None], len(frames), 0)
      return frames, boxes, runner.face_inputs(face_lib.crop_faces(frames, boxes))

    start = [0]

    def generate(job):
      frames, boxes, faces6 = job
      i0 = start[0]
      start[0] += len(frames)
      y = runner.run_batched(model, mels[i0:i0 + len(frames)], faces6, bs)
      return frames, boxes, face_lib.to_uint8(y)

    def paste(job):
      frames, boxes, y = job
      return face_lib.paste_faces(frames, y, boxes)

    def encode(all_chunks):
      writer = cv2.VideoWriter(str(pathlib.Path(tmp) / "out.mp4"),
                               cv2.VideoWriter_fourcc(*"mp4v"), 25, (args.size, args.size))
      count = 0
      for c in all_chunks:
        for f in c:
          writer.write(f)
        count += len(c)
      writer.release()
      return count

    stages = (("crop", crop), ("generate", generate), ("paste", paste))
    # One untimed pass compiles every batch shape; then each stage alone on held inputs.
    for c in chunks():
      paste(generate(crop(c)))
    start[0] = 0
    alone = {}
    t0 = time.perf_counter()
    decoded = list(chunks())
    alone["decode"] = time.perf_counter() - t0
    cur = decoded
    for name, fn in stages:
      t0 = time.perf_counter()
      cur = [fn(x) for x in cur]
      alone[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    encode(cur)
    alone["encode"] = time.perf_counter() - t0
    start[0] = 0
    t0 = time.perf_counter()
    count = encode(runner.pipelined(chunks(), stages))
    end_to_end = time.perf_counter() - t0
    start[0] = 0
    t0 = time.perf_counter()
    encode(paste(generate(crop(c))) for c in chunks())
    sequential = time.perf_counter() - t0
  stage_fps = {k: n / v for k, v in alone.items()}
  slowest = min(stage_fps, key=stage_fps.get)
  return {"frames": count, "size": args.size, "batch_size": bs, "stage_fps": stage_fps,
          "slowest_stage": slowest, "fps_pipelined": n / end_to_end,
          "fps_sequential": n / sequential,
          "slowest_over_pipelined": stage_fps[slowest] / (n / end_to_end)}


def _taem_setup(args, rng):
  vocab = PhonemeVocab()
  size = (dict(hidden=32, encoder_layers=1, refiner_layers=1, heads=2, ffn_filter=64,
               ffn_kernels=(3, 1), dp_filter=32) if args.smallest else {})
  latent = models.wav2lip.scaled(512, args.width)
  cfg = TAEMConfig.from_vocab(vocab, latent_dim=latent, speaker_dim=128, **size)
  model = TAEM(cfg, rngs=nnx.Rngs(0))
  b, lp, lv = args.taem_batch, args.phonemes, args.taem_frames
  ph = rng.integers(4, len(vocab), (b, lp)).astype(np.int32)
  durations = np.full((b, lp), 4 * lv // lp, np.int32)  # 100 fps frames, 4 per video frame
  durations[:, -1] += 4 * lv - durations.sum(1)
  batch = {"phonemes": ph, "phoneme_mask": np.ones((b, lp), bool), "durations": durations,
           "n_frames": np.full((b,), lv, np.int32), "frame_mask": np.ones((b, lv), bool),
           "speaker": rng.standard_normal((b, 128)).astype(np.float32),
           "z_a": rng.standard_normal((b, lv, latent)).astype(np.float32)}
  return model, cfg, jax.device_put(batch)


def taem_train_step(cfg):
  loss_cfg = losses.LossConfig()

  @nnx.jit
  def step(model, opt, batch):
    def loss_fn(m):
      out = m(batch["phonemes"], batch["phoneme_mask"], batch["speaker"], batch["durations"],
              batch["n_frames"], deterministic=False, max_frames=batch["frame_mask"].shape[1])
      total, _ = losses.combine(loss_cfg, out, batch["z_a"], batch["durations"],
                                batch["phoneme_mask"], log_duration=cfg.log_duration)
      return total
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
    return loss
  return step


def generator_train_step():
  @nnx.jit
  def step(model, opt, mel, faces, target):
    def loss_fn(m):
      return jnp.mean(jnp.abs(m(mel, faces) - target))
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    opt.update(model, grads)
    return loss
  return step


def bench_train(args, dev) -> tuple[list[dict], dict]:
  rng = np.random.default_rng(2)
  rows, guard = [], {}
  model, cfg, batch = _taem_setup(args, rng)
  opt = nnx.Optimizer(model, optax.adam(1e-4), wrt=nnx.Param)
  step = taem_train_step(cfg)
  t0 = time.perf_counter()
  _sync(step(model, opt, batch))
  compile_s = time.perf_counter() - t0
  sec = _timed(lambda: step(model, opt, batch), args.seconds)
  _log(f"TAEM step: compiled in {compile_s:.0f} s")
  rows.append({"what": f"TAEM {'tiny' if args.smallest else 'paper size'}, batch "
               f"{args.taem_batch}", "steps_per_s": 1 / sec, "compile_s": compile_s,
               "peak_bytes": peak_memory(dev)})
  guard["TAEM training step"] = _guarded(lambda: step(model, opt, batch))

  gen = models.create("wav2lip", seed=0, width=args.width)
  gopt = nnx.Optimizer(gen, optax.adam(1e-4), wrt=nnx.Param)
  gstep = generator_train_step()
  b = args.generator_train_batch
  mel, faces = _inputs(b, rng)
  target = jax.device_put(rng.uniform(0, 1, (b, 96, 96, 3)).astype(np.float32))
  t0 = time.perf_counter()
  _sync(gstep(gen, gopt, mel, faces, target))
  compile_s = time.perf_counter() - t0
  sec = _timed(lambda: gstep(gen, gopt, mel, faces, target), args.seconds)
  rows.append({"what": f"Wav2Lip generator width {args.width:g}, {b} frames", "steps_per_s":
               1 / sec, "compile_s": compile_s, "peak_bytes": peak_memory(dev)})
  guard["generator training step"] = _guarded(lambda: gstep(gen, gopt, mel, faces, target))
  graphdef, state = runner.eval_split(gen)
  guard["generator call (synthesis)"] = _guarded(
      lambda: runner.generate_batch(graphdef, state, mel, faces))
  return rows, guard


def _guarded(fn) -> str:
  """'ok' when `fn` (compiled already) runs without implicit host<->device transfers."""
  try:
    with jax.transfer_guard("disallow"):
      _sync(fn())
    return "ok"
  except Exception as e:  # pylint: disable=broad-except  # reported in the table
    return f"transfer: {str(e).splitlines()[0][:160]}"


def _gib(b):
  return "-" if b is None else f"{b / 2**30:.2f}"


def table(report: dict) -> str:
  d = report["device"]
  lines = [f"# taem-jax GPU benchmark, {report['started_utc']}", "",
           f"* device: {d['kind']} ({d['platform']}), jax {report['versions']['jax']}, "
           f"host {report['host']}", ""]
  if "generator" in report:
    lines += ["### Wav2Lip generator, inference (fp32)", "",
              "| B | frames/s | compile s | peak device GiB |", "|---|---|---|---|"]
    lines += [f"| {r['b']} | {r['fps']:.1f} | {r['compile_s']:.1f} | {_gib(r['peak_bytes'])} |"
              for r in report["generator"]]
  if "pipeline" in report:
    p = report["pipeline"]
    names = list(p["stage_fps"])
    lines += ["", f"### End to end from a {p['size']}x{p['size']} video, {p['frames']} frames, "
              f"batch {p['batch_size']} (fixed face track: a track-cache hit)", "",
              "| " + " | ".join(names) + " | slowest | pipelined | sequential | "
              "slowest / pipelined |", "|" + "---|" * (len(names) + 4),
              "| " + " | ".join(f"{p['stage_fps'][k]:.1f}" for k in names) +
              f" | {p['slowest_stage']} | {p['fps_pipelined']:.1f} | {p['fps_sequential']:.1f} | "
              f"{p['slowest_over_pipelined']:.2f} |"]
  if "train" in report:
    lines += ["", "### Training", "", "| model | steps/s | compile s | peak device GiB |",
              "|---|---|---|---|"]
    lines += [f"| {r['what']} | {r['steps_per_s']:.2f} | {r['compile_s']:.1f} | "
              f"{_gib(r['peak_bytes'])} |" for r in report["train"]]
    lines += ["", "### Host<->device transfers (jax.transfer_guard('disallow'))", "",
              "| call | result |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report["transfers"].items()]
  return "\n".join(lines) + "\n"


SECTIONS = ("generator", "pipeline", "train")


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--smallest", action="store_true", help="tiny sizes for a CPU smoke test")
  p.add_argument("--only", default=",".join(SECTIONS), help=f"sections, of {SECTIONS}")
  p.add_argument("--out", default=str(ROOT / "out" / "bench_gpu"), help="folder for the table")
  p.add_argument("--seconds", type=float, default=None, help="timing budget per measurement")
  args = p.parse_args(argv)
  s = args.smallest
  args.seconds = args.seconds if args.seconds is not None else (0.05 if s else 2.0)
  args.width = 1 / 16 if s else 1.0
  args.batches = [1] if s else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
  # smallest: batch 1, the generator section's compiled shape
  args.frames, args.size, args.batch_size = (3, 64, 1) if s else (750, 256, 128)
  args.taem_batch, args.phonemes, args.taem_frames = (2, 8, 8) if s else (64, 64, 48)
  args.generator_train_batch = 4 if s else 80
  args.only = [x.strip() for x in args.only.split(",") if x.strip()]
  bad = set(args.only) - set(SECTIONS)
  if bad:
    p.error(f"unknown sections {sorted(bad)}; known: {SECTIONS}")
  return args


def main(argv=None) -> pathlib.Path:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if args.smallest:  # tiny models: XLA's optimisation passes cost more than they save
    jax.config.update("jax_disable_most_optimizations", True)
  dev = jax.devices()[0]
  started = datetime.datetime.now(datetime.timezone.utc)
  report = {"started_utc": started.isoformat(timespec="seconds"), "args": vars(args),
            "device": {"kind": dev.device_kind, "platform": dev.platform,
                       "count": jax.device_count()},
            "versions": {"jax": jax.__version__, "python": platform.python_version()},
            "host": f"{os.cpu_count()} CPUs"}
  t0 = time.perf_counter()
  if "generator" in args.only:
    report["generator"] = bench_generator(args, dev)
    _log(f"generator done ({time.perf_counter() - t0:.0f} s)")
  if "pipeline" in args.only:
    report["pipeline"] = bench_pipeline(args, dev)
    _log(f"pipeline done ({time.perf_counter() - t0:.0f} s)")
  if "train" in args.only:
    report["train"], report["transfers"] = bench_train(args, dev)
    _log(f"train done ({time.perf_counter() - t0:.0f} s)")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  stem = out / f"bench-gpu-{started:%Y%m%dT%H%M%S}{'-smallest' if args.smallest else ''}"
  text = table(report)
  stem.with_suffix(".md").write_text(text)
  stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
  print(text)
  print(f"wrote {stem}.md and {stem}.json")
  return stem


if __name__ == "__main__":
  main()
