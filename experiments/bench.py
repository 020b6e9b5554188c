"""Speed and memory of taem-jax on this machine, side by side with PyTorch: one table + JSON.

    .venv/bin/python experiments/bench.py                   # everything, ~15 min on 2 cores
    .venv/bin/python experiments/bench.py --quick           # tiny sizes, few iterations, ~2-3 min
    .venv/bin/python experiments/bench.py --only generator --batches 1,16 --seconds 3

Sections (--only picks some; each measurement runs in its own process, because XLA_FLAGS and
the device count are fixed when JAX starts and PyTorch lives in another Python):

  generator  Wav2Lip generator, random weights, frames/s and achieved GFLOP/s at each batch
             size: JAX variants (XLA flag set x transposed-conv form, bf16 with its error
             against fp32) and the PyTorch reference (porting/reference/bench_torch.py in
             .venv-torch: eager NCHW, eager channels_last, torch.compile), then JAX/PyTorch
             ratios. FLOPs are counted from the architecture (conv: H'W'k^2 Cin Cout
             multiply-adds; transposed conv: HWk^2 Cin Cout), 2 FLOP per multiply-add.
  taem       TAEM text -> z_t (g2p excluded; the synthesis path: chunking, duration prediction,
             length regulation), utterances/s and seconds of output per second.
  frontend   face detection (dlib, one frame), speaker embedding, Wav2Lip mel, g2p, video
             decode and H.264 encode.
  synthesis  end to end (`taem_jax.synthesis.Synthesizer`) on a generated 30 s face video, from
             audio and from text: frames/s of a first run (compilation, face-track cache
             miss), then compiled with a cache miss, a cache hit (the second run of the same
             video) and a cache hit without the stage pipeline; each stage's own frames/s
             (decode, detect, crop, generate, paste, encode) and the slowest stage against
             end to end.
  train      TAEM training steps/s (experiments/train.py, configs/synthetic.py) at the default
             and :tiny configs, on 1 and on 2 forced CPU devices.

Every row records the peak RSS of its process during that measurement. The table (Markdown)
is printed and written with a JSON of all numbers, versions, flags and the machine to
--out (default out/bench/). The machine is shared: the load average is printed at start and
end, and only ratios measured in one run should be compared.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import runpy
import subprocess
import sys
import tempfile
import time

import cv2
import jax
import jax.numpy as jnp
import numpy as np
import soundfile as sf
from flax import nnx

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# pylint: disable=wrong-import-position
from porting import families  # noqa: E402
from porting.reference.bench_torch import peak_rss_bytes, peak_rss_reset  # noqa: E402
from taem_jax import audio, models, video, xla_flags  # noqa: E402
from taem_jax.data.sample import portraits  # noqa: E402
from taem_jax.face import FaceDetector, SpeakerEmbedder  # noqa: E402
from taem_jax.models import pretrained, taem_checkpoint  # noqa: E402
from taem_jax.models import wav2lip as wav2lip_arch  # noqa: E402
from taem_jax.models.layers import scaled  # noqa: E402
from taem_jax.models.taem import TAEM, TAEMConfig  # noqa: E402
from taem_jax.rates import FACE_SIZE, SAMPLE_RATE, VIDEO_FPS  # noqa: E402
from taem_jax.synthesis import Options, Synthesizer, no_progress, runner  # noqa: E402
from taem_jax.text import PhonemeVocab, g2p  # noqa: E402
from taem_jax.train import reporting  # noqa: E402

# XLA:CPU flag sets. 'eigen' sends convolutions and dots to XLA's own (Eigen) kernels instead
# of YNNPACK, which is faster for Wav2Lip's convs on this CPU (README "Performance").
FLAG_SETS = {
    "default": "",
    "eigen": xla_flags.EIGEN_CONVOLUTIONS,
}
TWO_DEVICES = "--xla_force_host_platform_device_count=2"

# JAX generator variants: (name, XLA flag set, transposed-conv form, dtype, all batch sizes?).
# The side variants run at one batch size only, to keep the default run near 15 minutes.
JAX_VARIANTS = (
    ("JAX default flags, subpixel convT", "default", "subpixel", "float32", False),
    ("JAX eigen flags, direct convT", "eigen", "direct", "float32", False),
    ("JAX eigen flags, subpixel convT", "eigen", "subpixel", "float32", True),
    ("JAX eigen flags, subpixel convT, bf16", "eigen", "subpixel", "bfloat16", False),
)
MAIN_VARIANT = JAX_VARIANTS[2][0]  # what synthesis runs with (the pipeline flag set 'eigen')
TORCH_NAMES = {"nchw": "PyTorch eager NCHW", "channels_last": "PyTorch eager channels_last",
               "compile": "PyTorch torch.compile (inductor, freezing)"}

GRID_SENTENCES = ("Place blue at F two now.", "Set green by A nine again.",
                  "Lay white with P four soon.", "Bin red in G one now.",
                  "Place red at C three please.", "Set white by Z eight again.")
PARAGRAPH = " ".join(GRID_SENTENCES * 6)  # 216 words, for g2p


def text_for(seconds: float) -> str:
  """GRID-style sentences for about `seconds` of speech (~2.5 words/s); the text run is then
  fitted to exactly that many frames."""
  n = max(1, round(seconds * 2.5 / 5.5))
  return " ".join((GRID_SENTENCES * (n // len(GRID_SENTENCES) + 1))[:n])


# ----------------------------------------------------------------------------------------------
# Helpers shared by the workers.


def generator_flops(width: float = 1.0) -> int:
  """FLOPs (2 per multiply-add) of one Wav2Lip generator frame, counted from the architecture.

  Convs count H'W'k^2 Cin Cout multiply-adds, transposed convs HWk^2 Cin Cout (every input
  pixel scattered into a k x k window), as PyTorch FLOP counters do; 7.934 GFLOP at width 1.
  """
  c = lambda n: scaled(n, width)  # noqa: E731
  macs, h, cin, skips = 0, 96, 6, []
  for block in wav2lip_arch.FACE_ENCODER:
    for cout, k, s, p, _ in block:
      h = (h + 2 * p - k) // s + 1
      macs += h * h * k * k * cin * c(cout)
      cin = c(cout)
    skips.append(cin)
  hw, cin = (80, 16), 1
  for cout, k, s, p, _ in wav2lip_arch.AUDIO_ENCODER:
    s = (s, s) if isinstance(s, int) else s
    hw = tuple((n + 2 * p - k) // q + 1 for n, q in zip(hw, s))
    macs += hw[0] * hw[1] * k * k * cin * c(cout)
    cin = c(cout)
  h = 1
  for i, block in enumerate(wav2lip_arch.FACE_DECODER):
    for kind, cout, k, s, p, extra in block:
      if kind == "t":
        macs += h * h * k * k * cin * c(cout)
        h = (h - 1) * s - 2 * p + k + extra
      else:
        h = (h + 2 * p - k) // s + 1
        macs += h * h * k * k * cin * c(cout)
      cin = c(cout)
    cin += skips[len(wav2lip_arch.FACE_DECODER) - 1 - i]
  macs += 96 * 96 * (9 * cin * c(wav2lip_arch.OUTPUT_HIDDEN) + c(wav2lip_arch.OUTPUT_HIDDEN) * 3)
  return 2 * macs


def _emit(**rec) -> None:
  """One result line for the parent, with this process's peak RSS since the last reset."""
  rec.setdefault("peak_rss", peak_rss_bytes())
  print("JSON " + json.dumps(rec), flush=True)


def _timed(fn, seconds: float, min_calls: int = 3, max_calls: int = 200) -> list[float]:
  """Seconds per call of `fn()`, called for about `seconds` (at least `min_calls` times)."""
  times, start = [], time.perf_counter()
  while len(times) < min_calls or (time.perf_counter() - start < seconds
                                   and len(times) < max_calls):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return times


def _median(xs):
  xs = sorted(xs)
  n = len(xs)
  return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def _taem(vocab, latent_dim: int, small: bool):
  """A random TAEM whose duration predictor says 8 mel frames (80 ms) for every phoneme.

  Random predictors give arbitrary lengths; a fixed speaking rate keeps "seconds of output per
  second" meaningful. Paper size unless `small`.
  """
  size = (dict(hidden=64, encoder_layers=2, refiner_layers=2, ffn_filter=128,
               ffn_kernels=(3, 1), dp_filter=64) if small else {})
  cfg = TAEMConfig.from_vocab(vocab, latent_dim=latent_dim, speaker_dim=128, **size)
  model = TAEM(cfg, rngs=nnx.Rngs(0))
  proj = model.duration_predictor.proj
  proj.kernel[...] = np.zeros(proj.kernel.shape, np.float32)
  proj.bias[...] = np.full(proj.bias.shape, np.log1p(8.0), np.float32)
  return model


def _checkpoints(folder: pathlib.Path, width: float, small_taem: bool):
  """Random-weight Wav2Lip and TAEM checkpoint directories (made once per folder)."""
  w2l_dir = folder / f"wav2lip_{width:g}"
  taem_dir = folder / f"taem_{width:g}_{'small' if small_taem else 'paper'}"
  if not w2l_dir.exists():
    w2l = models.create("wav2lip", seed=0, width=width)
    pretrained.save_pretrained(w2l, w2l_dir, family="wav2lip", config=w2l.get_config())
  if not taem_dir.exists():
    vocab = PhonemeVocab()
    taem = _taem(vocab, models.wav2lip.scaled(512, width), small_taem)
    taem_checkpoint.save_taem(taem, taem_dir, vocab=vocab,
                              speaker_embedding=SpeakerEmbedder("dlib").describe())
  return w2l_dir, taem_dir


def _media(folder: pathlib.Path, seconds: float, size: int):
  """A face photo, a video of it moving slightly (25 fps) and a voiced tone, `seconds` long."""
  img_path = folder / f"face_{size}.png"
  if not img_path.exists():
    img = portraits.make_portraits(1, size, np.random.default_rng(0), FaceDetector())[0].image
    cv2.imwrite(str(img_path), img)
  img = cv2.imread(str(img_path))
  n = int(round(seconds * VIDEO_FPS))
  vid = folder / f"face_{size}_{seconds:g}s.mp4"
  if not vid.exists():
    def frames():
      for k in range(0, n, 250):
        yield np.stack([np.roll(img, int(2 * np.sin(i / 7)), axis=1)
                        for i in range(k, min(n, k + 250))])
    video.write_video(vid, frames(), VIDEO_FPS)
  wav = folder / f"speech_{seconds:g}s.wav"
  if not wav.exists():
    sr = SAMPLE_RATE
    with sf.SoundFile(str(wav), "w", sr, 1) as f:  # written in pieces: flat memory
      for k in range(0, int(seconds * sr), 10 * sr):
        t = np.arange(k, min(int(seconds * sr), k + 10 * sr)) / sr
        f.write(0.3 * np.sin(2 * np.pi * 140 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2.5 * t)))
  return img_path, vid, wav


# ----------------------------------------------------------------------------------------------
# Workers: each runs in a child process and reports through `_emit`.


def work_generator(job: dict) -> None:
  """Times the jitted generator call that synthesis uses, at each batch size."""
  model = models.create("wav2lip", seed=0, width=job["width"], convt_impl=job["impl"])
  graphdef, state = runner.eval_split(model)
  bf16 = job["dtype"] == "bfloat16"
  state16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16)
                         if jnp.issubdtype(a.dtype, jnp.floating) else a, state)
  for b in job["batches"]:
    x = families.make_inputs("wav2lip", b, seed=b)  # the same inputs as the PyTorch side
    mel = jnp.asarray(x["audio"].transpose(0, 2, 3, 1))
    faces = jnp.asarray(x["face"].transpose(0, 2, 3, 1))
    if bf16:
      run = lambda: runner.generate_batch(  # noqa: E731
          graphdef, state16, mel.astype(jnp.bfloat16), faces.astype(jnp.bfloat16))
    else:
      run = lambda: runner.generate_batch(graphdef, state, mel, faces)  # noqa: E731
    peak_rss_reset()
    t0 = time.perf_counter()
    y = run().block_until_ready()
    compile_s = time.perf_counter() - t0
    run().block_until_ready()  # warm-up
    times = _timed(lambda: run().block_until_ready(), job["seconds"])
    rec = {"b": b, "median_s": _median(times), "best_s": min(times), "n": len(times),
           "compile_s": compile_s}
    if bf16:
      ref = runner.generate_batch(graphdef, state, mel, faces)
      rec["max_abs_err_vs_fp32"] = float(jnp.max(jnp.abs(y.astype(jnp.float32) - ref)))
    _emit(**rec)
    del y
    np.asarray(0)


def work_taem(job: dict) -> None:
  """TAEM text -> z_t through the synthesis path, one utterance at a time."""
  w2l_dir, taem_dir = pathlib.Path(job["wav2lip"]), pathlib.Path(job["taem"])
  synth = Synthesizer(w2l_dir, taem_dir)
  speaker = np.random.default_rng(0).standard_normal(synth.taem.config.speaker_dim)
  utterances = [g2p.g2p_words(s) for s in GRID_SENTENCES]
  speaker = speaker.astype(np.float32)
  latents = lambda w: synth.text_latents(w, speaker, no_progress)[0]  # noqa: E731
  peak_rss_reset()
  t0 = time.perf_counter()
  frames = sum(len(latents(w)) for w in utterances)  # compiles every shape bucket
  compile_s = time.perf_counter() - t0
  times = _timed(lambda: [latents(w) for w in utterances], job["seconds"])
  per_pass = _median(times)
  _emit(utterances_per_s=len(utterances) / per_pass,
        x_real_time=frames / VIDEO_FPS / per_pass, frames=frames,
        utterances=len(utterances), n=len(times), first_pass_s=compile_s,
        params=sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(synth.taem))))


def work_frontend(job: dict) -> None:
  """Face detection, speaker embedding, mel, g2p, video decode and encode, one at a time."""
  seconds = job["seconds"]
  img = cv2.imread(job["image"])
  det = FaceDetector()
  det.detect(img)  # loads the models
  peak_rss_reset()
  times = _timed(lambda: det.detect(img), seconds)
  _emit(what="face detection (dlib, one frame)", rate=1 / _median(times), unit="frames/s",
        detail=f"{img.shape[1]}x{img.shape[0]} frame")
  face = det.detect(img)[0]
  emb = SpeakerEmbedder("dlib")
  emb.embed(img, face)
  peak_rss_reset()
  times = _timed(lambda: emb.embed(img, face), seconds)
  _emit(what="speaker embedding (dlib)", rate=1 / _median(times), unit="faces/s", detail="")
  wav = audio.load_audio(job["audio"])
  peak_rss_reset()
  times = _timed(lambda: audio.melspectrogram(wav), seconds)
  _emit(what="Wav2Lip mel (80 fps)", rate=len(wav) / audio.SAMPLE_RATE / _median(times),
        unit="x real time", detail=f"{len(wav) / audio.SAMPLE_RATE:g} s of audio")
  g2p.g2p_words(GRID_SENTENCES[0])  # loads g2p_en and the tagger
  peak_rss_reset()
  times = _timed(lambda: g2p.g2p_words(PARAGRAPH), seconds)
  _emit(what="g2p (g2p_en + POS tags)", rate=len(PARAGRAPH.split()) / _median(times),
        unit="words/s", detail=f"{len(PARAGRAPH.split())}-word paragraph")
  peak_rss_reset()
  t0 = time.perf_counter()
  n = sum(len(c) for c in video.iter_frames(job["video"], chunk=64))
  _emit(what="video decode (ffmpeg)", rate=n / (time.perf_counter() - t0), unit="frames/s",
        detail=f"{img.shape[1]}x{img.shape[0]}, {n} frames")
  frames = np.stack([np.roll(img, i, axis=1) for i in range(min(n, 100))])
  with tempfile.TemporaryDirectory() as tmp:
    peak_rss_reset()
    t0 = time.perf_counter()
    video.write_video(pathlib.Path(tmp) / "enc.mp4", frames, VIDEO_FPS)
    _emit(what="video encode (H.264)", rate=len(frames) / (time.perf_counter() - t0),
          unit="frames/s", detail=f"{img.shape[1]}x{img.shape[0]}, {len(frames)} frames")


def _stage_clock():
  """A `progress` callback that notes when each stage reported first and last, and the
  stages' spans {stage: seconds} it measured (from the previous report to its last one)."""
  marks = {}
  last = [time.perf_counter()]

  def progress(stage, advance, total):
    del advance, total
    now = time.perf_counter()
    marks.setdefault(stage, [last[0], now])[1] = now
    last[0] = now

  def spans():
    return {k: v[1] - v[0] for k, v in marks.items()}

  def start():
    marks.clear()
    last[0] = time.perf_counter()
  return progress, spans, start


def _generator_seconds(synth, n_frames: int, batch_size: int, method: str) -> float:
  """Seconds the generator alone takes for `n_frames` frames: one warm `runner.run_batched`
  call per output chunk of the run, on zero inputs of the run's shapes (compiled already)."""
  bs = runner.bucket_size(n_frames, batch_size)
  if method == "decode":
    drive = np.zeros((bs, synth.wav2lip.embed_dim), np.float32)
  else:
    drive = np.zeros((bs, 80, 16, 1), np.float32)
  faces6 = runner.face_inputs(np.zeros((bs, FACE_SIZE, FACE_SIZE, 3), np.uint8))
  sizes = [min(bs, n_frames - i) for i in range(0, n_frames, bs)]
  for k in sorted(set(sizes)):  # compile every shape first (cached after the synthesis)
    runner.run_batched(synth.wav2lip, drive[:k], faces6[:k], batch_size, method)
  t0 = time.perf_counter()
  for k in sizes:
    runner.run_batched(synth.wav2lip, drive[:k], faces6[:k], batch_size, method)
  return time.perf_counter() - t0


RENDER_STAGES = ("decode", "crop", "generate", "paste")


def _encode_seconds(path: str, n_frames: int, fps: float, limit: int = 250) -> float:
  """Seconds H.264 encoding of `n_frames` frames of the video `path` takes (timed on its
  first `limit` frames, held in memory, and scaled)."""
  frames = np.concatenate(list(video.iter_frames(path, max_frames=limit)))
  with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    video.write_video(pathlib.Path(tmp) / "enc.mp4", frames, fps)
    return (time.perf_counter() - t0) * n_frames / len(frames)


def work_synthesis(job: dict) -> None:
  """End to end (`Synthesizer.synthesize`), timed per stage through the progress callback:
  a first run (compilation, face-track cache miss), then compiled: cache miss, cache hit (the
  second run of the same video), and the cache hit again without the pipeline, whose stage
  seconds are the stages' own speeds (no stage shares the CPU with another)."""
  os.environ["TAEM_JAX_HOME"] = job["home"]  # a fresh face-track cache
  t0 = time.perf_counter()
  synth = Synthesizer(job["wav2lip"], job["taem"], options=Options(batch_size=job["batch_size"]))
  g2p.g2p_words(GRID_SENTENCES[0])  # loads g2p_en and the tagger, once per process like dlib
  synth.detector.detect(np.zeros((64, 64, 3), np.uint8))
  load_s = time.perf_counter() - t0
  kw = ({"text": text_for(job["frames"] / VIDEO_FPS), "n_frames": job["frames"]}
        if job["route"] == "text" else {"audio": job["audio"]})
  progress, spans, start = _stage_clock()
  tracks = pathlib.Path(job["home"]) / "tracks"

  def run(cache_hit: bool, pipeline: bool = True):
    if not cache_hit:
      for f in tracks.glob("*.npz"):
        f.unlink()
    synth.options = Options(batch_size=job["batch_size"], pipeline=pipeline)
    synth.stage_seconds = {}
    start()
    t = time.perf_counter()
    res = synth.synthesize(job["video"], job["out"], progress=progress, **kw)
    return res, time.perf_counter() - t, spans(), dict(synth.stage_seconds)

  peak_rss_reset()
  res, total, stage, _ = run(cache_hit=False)
  peak = peak_rss_bytes()
  _, warm, warm_stage, _ = run(cache_hit=False)
  _, hit, hit_stage, _ = run(cache_hit=True)
  _, seq, seq_stage, seq_busy = run(cache_hit=True, pipeline=False)
  n = res.frames
  busy = {k: seq_busy.get(k, 0.0) for k in RENDER_STAGES}
  busy["detect"] = warm_stage.get("detect", 0.0)  # (the miss run: detection, decode overlapped)
  busy["encode"] = _encode_seconds(job["out"], n, res.fps)
  if job["route"] == "text":
    busy["text"] = hit_stage.get("text", 0.0)
  stage_fps = {k: n / v for k, v in busy.items() if v > 0}
  method = "decode" if job["route"] == "text" else "__call__"
  generator_s = _generator_seconds(synth, n, job["batch_size"], method)
  render_stages = [k for k in stage_fps if k not in ("detect", "text")]
  slowest = min(render_stages, key=stage_fps.get)
  _emit(route=job["route"], frames=n, total_s=total, load_s=load_s, peak_rss=peak,
        fps=n / total, fps_warm=n / warm, warm_total_s=warm, fps_hit=n / hit, hit_total_s=hit,
        fps_sequential_hit=n / seq, sequential_hit_total_s=seq,
        detect_s=warm_stage.get("detect", 0.0), text_s=stage.get("text", 0.0),
        render_s=hit_stage.get("render", 0.0), generator_s=generator_s,
        compile_s=max(0.0, total - warm), cache_hit_detect_s=hit_stage.get("detect", 0.0),
        render_other_s=max(0.0, seq_stage.get("render", 0.0) - generator_s),
        stage_s=busy, stage_fps=stage_fps, slowest_stage=slowest,
        slowest_over_hit=stage_fps[slowest] / (n / hit))


def work_train(job: dict) -> None:
  """experiments/train.py in this process (its peak RSS is ours); reads steps/s it logged."""
  with tempfile.TemporaryDirectory() as tmp:
    # Two logging windows: the first holds the compilation, the second is timed.
    steps = job["steps"]
    sys.argv = ["train.py", f"--config={ROOT}/experiments/configs/synthetic.py{job['variant']}",
                f"--workdir={tmp}", f"--steps={2 * steps}", f"--config.train.log_every={steps}",
                "--config.train.eval_every=0", "--config.train.sample_every=0",
                f"--config.train.checkpoint_every={2 * steps}", "--progress=false",
                "--tensorboard=false"]
    peak_rss_reset()
    t0 = time.perf_counter()
    try:
      runpy.run_path(str(ROOT / "experiments" / "train.py"), run_name="__main__")
    except SystemExit as e:
      if e.code not in (None, 0):
        raise
    wall = time.perf_counter() - t0
    recs = reporting.read_jsonl(pathlib.Path(tmp) / "metrics.jsonl", kind="train")
    sps = [r["steps_per_sec"] for r in recs if "steps_per_sec" in r][-1]
    _emit(steps_per_s=sps, steps=steps, wall_s=wall, devices=jax.device_count())


WORKERS = {"generator": work_generator, "taem": work_taem, "frontend": work_frontend,
           "synthesis": work_synthesis, "train": work_train}


# ----------------------------------------------------------------------------------------------
# The parent: spawn, collect, print.


def _spawn(kind: str, job: dict, xla_flags: str = "", python: str | None = None,
           argv: list[str] | None = None) -> tuple[list[dict], str | None]:
  """Runs a worker in a fresh process; (result records, one-line error or None)."""
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags,
             PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  cmd = argv or [python or sys.executable, str(pathlib.Path(__file__).resolve()), "--worker",
                 kind, "--job", json.dumps(job)]
  proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
  recs = [json.loads(line[5:]) for line in proc.stdout.splitlines() if line.startswith("JSON ")]
  if proc.returncode != 0:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    return recs, (lines[-1][:200] if lines else f"exit status {proc.returncode}")
  return recs, None


def _log(msg: str) -> None:
  print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _versions(torch_py: pathlib.Path | None) -> dict:
  out = {"python": platform.python_version()}
  for name in ("jax", "jaxlib", "flax", "numpy", "dlib", "opencv-python-headless"):
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      pass
  if torch_py is not None:
    r = subprocess.run([str(torch_py), "-c", "import torch, platform; print(torch.__version__, "
                        "platform.python_version(), torch.backends.mkldnn.is_available())"],
                       capture_output=True, text=True, check=False)
    if r.returncode == 0:
      tv, pv, mkldnn = r.stdout.split()
      out.update(torch=tv, torch_python=pv, torch_onednn=mkldnn == "True")
  return out


def _machine() -> dict:
  cpu = platform.processor()
  flags = []
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          cpu = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
          flags = sorted({x for x in line.split(":", 1)[1].split()
                          if x.startswith(("avx512", "amx", "avx2", "fma"))})
          break
  except OSError:
    pass
  mem = 0
  try:
    with open("/proc/meminfo") as f:
      mem = int(f.readline().split()[1]) * 1024
  except OSError:
    pass
  return {"cpu": cpu, "cpus": os.cpu_count(), "isa": flags, "memory_gib": round(mem / 2**30, 1),
          "os": platform.platform()}


def _fmt(v, digits=1):
  return "-" if v is None else f"{v:.{digits}f}"


def _mib(rec):
  return f"{rec['peak_rss'] / 2**20:.0f}" if rec.get("peak_rss") else "-"


def run_generator(args, report):
  gflop = generator_flops(args.width) / 1e9
  rows = []  # (name, flags, {b: rec})
  for name, flags, impl, dtype, every_b in JAX_VARIANTS:
    if args.quick and name != MAIN_VARIANT:
      continue  # --quick: only the variant synthesis uses
    batches = args.batches if every_b else args.batches[len(args.batches) // 2:][:1]
    _log(f"generator: {name}")
    recs, err = _spawn("generator", {"width": args.width, "impl": impl, "dtype": dtype,
                                     "batches": batches, "seconds": args.seconds},
                       FLAG_SETS[flags])
    by_b = {r["b"]: dict(r, fps=r["b"] / r["median_s"]) for r in recs}
    rows.append({"name": name, "framework": "jax", "flags": FLAG_SETS[flags], "impl": impl,
                 "dtype": dtype, "by_b": by_b, "error": err})
  torch_py = ROOT / ".venv-torch" / "bin" / "python"
  if not args.torch or args.width != 1.0:
    why = "--no-torch" if not args.torch else "the reference is width 1.0 only"
    rows.append({"name": "PyTorch", "framework": "torch", "by_b": {},
                 "error": f"skipped ({why})"})
  elif not torch_py.exists():
    rows.append({"name": "PyTorch", "framework": "torch", "by_b": {},
                 "error": "skipped (.venv-torch missing: bash setup.sh --test)"})
  else:
    layouts = ["nchw", "channels_last"] + (["compile"] if args.torch_compile else [])
    _log(f"generator: PyTorch {', '.join(layouts)}, {args.torch_threads} thread(s)")
    recs, err = _spawn("", {}, argv=[
        str(torch_py), "-m", "porting.reference.bench_torch", "--json", "--threads",
        str(args.torch_threads), "--seconds", str(args.seconds),
        "--batches", *map(str, args.batches), "--layouts", *layouts])
    for layout in layouts:
      mine = [r for r in recs if r["layout"] == layout]
      failed = [r["error"] for r in mine if "error" in r]
      rows.append({"name": f"{TORCH_NAMES[layout]}, {args.torch_threads} thr",
                   "framework": "torch", "layout": layout, "threads": args.torch_threads,
                   "by_b": {r["b"]: r for r in mine if "error" not in r},
                   "error": (f"failed: {failed[0]}" if failed else
                             (f"failed: {err}" if err and not mine else None))})
    if not args.torch_compile:
      rows.append({"name": TORCH_NAMES["compile"], "framework": "torch", "layout": "compile",
                   "by_b": {}, "error": "skipped (--quick or --no-torch_compile)"})
  report["generator"] = {"gflop_per_frame": gflop, "width": args.width, "rows": rows}

  lines = [f"### Wav2Lip generator, width {args.width:g}, random weights, "
           f"{gflop:.3f} GFLOP/frame; frames/s (median) and achieved GFLOP/s", ""]
  head = "| variant | " + " | ".join(f"B={b} fps | B={b} GFLOP/s" for b in args.batches)
  lines += [head + " | peak RSS MiB | note |",
            "|---|" + "---|---|" * len(args.batches) + "---|---|"]
  for r in rows:
    cells = []
    for b in args.batches:
      rec = r["by_b"].get(b)
      cells += ([_fmt(rec["fps"]), f"{rec['fps'] * gflop:.0f}"] if rec else ["-", "-"])
    peak = max((x.get("peak_rss", 0) for x in r["by_b"].values()), default=0)
    note = r["error"] or ""
    errs = [x["max_abs_err_vs_fp32"] for x in r["by_b"].values() if "max_abs_err_vs_fp32" in x]
    if errs:
      note = f"max abs error vs fp32 {max(errs):.1e}"
    if r["framework"] == "jax" and not note:
      note = "compile " + ", ".join(f"{x['compile_s']:.1f}" for x in r["by_b"].values()) + " s"
    lines.append(f"| {r['name']} | " + " | ".join(cells) +
                 f" | {peak / 2**20:.0f} | {note} |" if peak else
                 f"| {r['name']} | " + " | ".join(cells) + f" | - | {note} |")

  # Ratios: the best fp32 JAX variant at each B against each PyTorch row.
  jax_rows = [r for r in rows if r["framework"] == "jax" and r.get("dtype") == "float32"]
  torch_rows = [r for r in rows if r["framework"] == "torch" and r["by_b"]]
  ratios = {}
  if jax_rows and torch_rows:
    lines += ["", "JAX / PyTorch frames/s, best fp32 JAX variant at each B (> 1: JAX faster)",
              "", "| against | " + " | ".join(f"B={b}" for b in args.batches) + " |",
              "|---|" + "---|" * len(args.batches)]
    for t in torch_rows:
      cells = []
      for b in args.batches:
        best = max((r["by_b"][b]["fps"] for r in jax_rows if b in r["by_b"]), default=None)
        if best and b in t["by_b"]:
          ratios.setdefault(t["name"], {})[b] = best / t["by_b"][b]["fps"]
          cells.append(f"{best / t['by_b'][b]['fps']:.2f}")
        else:
          cells.append("-")
      lines.append(f"| {t['name']} | " + " | ".join(cells) + " |")
  report["generator"]["ratios"] = ratios
  return lines


def run_taem(args, report, ckpt):
  _log("taem")
  recs, err = _spawn("taem", {"wav2lip": str(ckpt[0]), "taem": str(ckpt[1]),
                              "seconds": args.seconds}, FLAG_SETS[args.flags])
  report["taem"] = {"records": recs, "error": err, "paper_size": not args.quick}
  lines = ["### TAEM text -> z_t (GRID-style sentences, one at a time, 80 ms per phoneme)", "",
           "| model | params | utterances/s | x real time | first pass s (compile) | "
           "peak RSS MiB | note |", "|---|---|---|---|---|---|---|"]
  size = "small" if args.quick else "paper size"
  for r in recs:
    lines.append(f"| TAEM {size} | {r['params'] / 1e6:.1f} M | {r['utterances_per_s']:.1f} | "
                 f"{r['x_real_time']:.0f} | {r['first_pass_s']:.1f} | {_mib(r)} | |")
  if err:
    lines.append(f"| TAEM {size} | - | - | - | - | - | failed: {err} |")
  return lines


def run_frontend(args, report, media):
  _log("frontend")
  recs, err = _spawn("frontend", {"image": str(media[0]), "video": str(media[1]),
                                  "audio": str(media[2]), "seconds": min(args.seconds, 3.0)},
                     FLAG_SETS[args.flags])
  report["frontend"] = {"records": recs, "error": err}
  lines = ["### Front end", "", "| stage | rate | unit | input | peak RSS MiB |",
           "|---|---|---|---|---|"]
  for r in recs:
    lines.append(f"| {r['what']} | {r['rate']:.1f} | {r['unit']} | {r['detail']} | {_mib(r)} |")
  if err:
    lines.append(f"| (failed) | - | - | {err} | - |")
  return lines


def run_synthesis(args, report, ckpt, folder):
  recs_all, lines = [], [
      f"### End-to-end synthesis, Wav2Lip width {args.synthesis_width:g}, {args.size}x{args.size} "
      f"face video at {VIDEO_FPS:g} fps, batch {args.batch_size}, XLA flags '{args.flags}'", "",
      "frames/s of the whole job (decode, detect, text, generate, paste, encode), run 1 with "
      "compilation, then compiled; 'cache hit' is the second run of the same face video "
      "(face-track cache); the pipeline overlaps the stages in threads", "",
      "| input | frames | fps run 1 (compile, cache miss) | fps cache miss | fps cache hit | "
      "fps cache hit, no pipeline | detect s | text s | compile s | peak RSS MiB |",
      "|---|---|---|---|---|---|---|---|---|---|"]
  stage_lines = []
  for seconds in args.synthesis_seconds:
    img, vid, wav = _media(folder, seconds, args.size)
    for route in ("audio", "text"):
      if route == "text" and seconds != args.synthesis_seconds[0]:
        continue
      _log(f"synthesis: {seconds:g} s from {route}")
      recs, err = _spawn("synthesis", {
          "wav2lip": str(ckpt[0]), "taem": str(ckpt[1]), "video": str(vid), "audio": str(wav),
          "route": route, "frames": int(round(seconds * VIDEO_FPS)), "batch_size": args.batch_size,
          "out": str(folder / f"out_{route}.mp4"), "home": str(folder / f"home_{route}")},
          FLAG_SETS[args.flags])
      name = f"{seconds:g} s video + {'audio' if route == 'audio' else 'text'}"
      for r in recs:
        r["input"] = name
        lines.append(
            f"| {name} | {r['frames']} | {r['fps']:.1f} | {r['fps_warm']:.1f} | "
            f"{r['fps_hit']:.1f} | {r['fps_sequential_hit']:.1f} | {r['detect_s']:.1f} | "
            f"{r['text_s']:.1f} | {r['compile_s']:.1f} | {_mib(r)} |")
        cells = [f"{r['stage_fps'][k]:.1f}" if k in r["stage_fps"] else "-"
                 for k in STAGE_COLUMNS]
        stage_lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['slowest_stage']} | "
                           f"{r['fps_hit']:.1f} | {r['slowest_over_hit']:.2f} |")
      if err:
        lines.append(f"| {name} | failed: {err} |" + " |" * 8)
      recs_all += recs
  if stage_lines:
    lines += ["", "Each stage's own frames/s (timed without the pipeline, so no stage shares the "
              "CPU; detect: tracking with decoding overlapped; encode: H.264 of the output), "
              "against end to end on a cache hit (goal: slowest / end to end <= 1.3)", "",
              "| input | " + " | ".join(STAGE_COLUMNS) + " | slowest | end to end | "
              "slowest / end to end |", "|---|" + "---|" * (len(STAGE_COLUMNS) + 3)] + stage_lines
  by_audio = [r for r in recs_all if r["route"] == "audio"]
  if len(by_audio) >= 2:  # the streaming criterion: memory must not grow with the input
    ratio = by_audio[-1]["peak_rss"] / by_audio[0]["peak_rss"]
    lines += ["", f"peak RSS {by_audio[-1]['input']} / {by_audio[0]['input']} = {ratio:.2f} "
              f"({'within' if ratio <= 1.5 else 'ABOVE'} the 1.5x streaming budget)"]
  report["synthesis"] = {"records": recs_all}
  return lines


STAGE_COLUMNS = ("detect", "text") + RENDER_STAGES + ("encode",)


def run_train(args, report):
  lines = ["### TAEM training (configs/synthetic.py: in-memory batches, 48 frames)", "",
           "| config | devices | steps/s | steps timed | scaling (2 dev / 1 dev) | "
           "wall s (incl. compile) | peak RSS MiB | note |", "|---|---|---|---|---|---|---|---|"]
  recs_all = []
  variants = [(":tiny", args.train_steps_tiny)] + ([] if args.quick else
                                                   [("", args.train_steps)])
  for variant, steps in variants:
    one = None
    for devices in (1, 2):
      _log(f"train: synthetic{variant or ' (default)'} on {devices} device(s)")
      flags = " ".join(x for x in (FLAG_SETS[args.flags], TWO_DEVICES if devices == 2 else "")
                       if x)
      recs, err = _spawn("train", {"variant": variant, "steps": steps}, flags)
      name = f"synthetic{variant or ' (default, batch 64)'}"
      for r in recs:
        r["config"] = name
        scale = (f"{r['steps_per_s'] / one:.2f}" if devices == 2 and one else "")
        one = r["steps_per_s"] if devices == 1 else one
        lines.append(f"| {name} | {r['devices']} | {r['steps_per_s']:.2f} | {r['steps']} | "
                     f"{scale} | {r['wall_s']:.0f} | {_mib(r)} | |")
      if err:
        lines.append(f"| {name} | {devices} | - | - | - | - | - | failed: {err} |")
      recs_all += recs
  report["train"] = {"records": recs_all}
  return lines


SECTIONS = ("generator", "taem", "frontend", "synthesis", "train")


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              epilog=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--quick", action="store_true",
                 help="tiny sizes and few iterations (~2-3 min): B=1, no torch.compile, small "
                      "TAEM, 2 s synthesis at width 1/8, :tiny training only")
  p.add_argument("--only", default=",".join(SECTIONS), help=f"sections, of {SECTIONS}")
  p.add_argument("--batches", default=None, help="generator batch sizes (default 1,16,64)")
  p.add_argument("--seconds", type=float, default=None,
                 help="timing budget per measurement (default 2; --quick 0.5)")
  p.add_argument("--width", type=float, default=1.0,
                 help="generator width in the generator section (PyTorch needs 1.0)")
  p.add_argument("--torch", default=True, action=argparse.BooleanOptionalAction,
                 help="time the PyTorch reference (.venv-torch) in the same run")
  p.add_argument("--torch_compile", default=None, action=argparse.BooleanOptionalAction,
                 help="include torch.compile (default: on, off with --quick)")
  p.add_argument("--torch_threads", type=int, default=None,
                 help="PyTorch intra-op threads (default: all CPUs on an idle machine, 1 when "
                      "the 1-minute load average is >= 1: oneDNN's 2-thread barriers collapse "
                      "when another job holds a core, e.g. 0.5 instead of 6 frames/s at B=1)")
  p.add_argument("--flags", default="eigen", choices=sorted(FLAG_SETS),
                 help="XLA flag set for the taem, frontend, synthesis and train sections")
  p.add_argument("--synthesis_seconds", type=float, nargs="+", default=None,
                 help="face video / audio durations (default 30; --quick 2); the text run "
                      "uses the first. E.g. 30 600 compares peak RSS of a 10-minute input")
  p.add_argument("--synthesis_width", type=float, default=None,
                 help="Wav2Lip width for taem/synthesis (default 1.0; --quick 0.125)")
  p.add_argument("--size", type=int, default=None, help="face video side, px (default 256)")
  p.add_argument("--batch_size", type=int, default=None, help="synthesis generator batch")
  p.add_argument("--train_steps", type=int, default=1,
                 help="timed steps, default config (as many again run first, with the compile)")
  p.add_argument("--train_steps_tiny", type=int, default=None, help="timed steps, :tiny")
  p.add_argument("--out", default=str(ROOT / "out" / "bench"),
                 help="folder for bench-<time>.md and .json")
  p.add_argument("--workdir", default=None, help="keep generated media/checkpoints here")
  p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  p.add_argument("--job", default=None, help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  q = args.quick
  pick = lambda v, full, quick: v if v is not None else (quick if q else full)  # noqa: E731
  args.batches = [int(b) for b in pick(args.batches, "1,16,64", "1").split(",")]
  args.seconds = pick(args.seconds, 2.0, 0.5)
  args.torch_compile = pick(args.torch_compile, True, False)
  args.synthesis_seconds = pick(args.synthesis_seconds, [30.0], [2.0])
  args.synthesis_width = pick(args.synthesis_width, 1.0, 0.125)
  args.size = pick(args.size, 256, 160)
  args.batch_size = pick(args.batch_size, 64, 16)
  args.train_steps_tiny = pick(args.train_steps_tiny, 50, 5)
  if args.torch_threads is None:
    args.torch_threads = 1 if os.getloadavg()[0] >= 1 else os.cpu_count()
  args.only = [s.strip() for s in args.only.split(",") if s.strip()]
  bad = set(args.only) - set(SECTIONS)
  if bad:
    p.error(f"unknown sections {sorted(bad)}; known: {SECTIONS}")
  return args


def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  if args.worker:
    WORKERS[args.worker](json.loads(args.job))
    return
  started = datetime.datetime.now(datetime.timezone.utc)
  torch_py = ROOT / ".venv-torch" / "bin" / "python"
  load0 = os.getloadavg()
  report = {"started_utc": started.isoformat(timespec="seconds"), "args": vars(args),
            "machine": _machine(), "versions": _versions(torch_py if torch_py.exists() else None),
            "xla_flag_sets": FLAG_SETS, "xla_flags_env": os.environ.get("XLA_FLAGS", ""),
            "load_average_start": load0}
  m, v = report["machine"], report["versions"]
  head = [f"# taem-jax benchmark, {started:%Y-%m-%d %H:%M} UTC{' (--quick)' if args.quick else ''}",
          "", f"* machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, "
          f"{' '.join(x for x in m['isa'] if x.startswith(('avx512f', 'avx512_bf16', 'amx')))}",
          "* versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
          "* XLA flag sets: " + "; ".join(f"{k} = '{val}'" for k, val in FLAG_SETS.items()) +
          f"; pipeline sections use '{args.flags}'",
          f"* load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}"]
  print("\n".join(head), flush=True)

  tmp = None
  if args.workdir:
    folder = pathlib.Path(args.workdir)
    folder.mkdir(parents=True, exist_ok=True)
  else:
    tmp = tempfile.TemporaryDirectory(prefix="taem_bench_")
    folder = pathlib.Path(tmp.name)
  body = []
  t_start = time.perf_counter()
  try:
    if "generator" in args.only:
      body += [""] + run_generator(args, report)
    ckpt = media = None
    if {"taem", "synthesis"} & set(args.only):
      _log("making random-weight checkpoints")
      ckpt = _checkpoints(folder, args.synthesis_width, small_taem=args.quick)
    if {"frontend", "synthesis"} & set(args.only):
      media = _media(folder, args.synthesis_seconds[0], args.size)
    if "taem" in args.only:
      body += [""] + run_taem(args, report, ckpt)
    if "frontend" in args.only:
      body += [""] + run_frontend(args, report, media)
    if "synthesis" in args.only:
      body += [""] + run_synthesis(args, report, ckpt, folder)
    if "train" in args.only:
      body += [""] + run_train(args, report)
  finally:
    if tmp is not None:
      tmp.cleanup()
  load1 = os.getloadavg()
  report["load_average_end"] = load1
  report["wall_s"] = time.perf_counter() - t_start
  tail = ["", f"* load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}; "
          f"benchmark wall time {report['wall_s'] / 60:.1f} min"]
  print("\n".join(body + tail), flush=True)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  stem = out / f"bench-{started:%Y%m%dT%H%M%S}{'-quick' if args.quick else ''}"
  stem.with_suffix(".md").write_text("\n".join(head + body + tail) + "\n")
  stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str) + "\n")
  print(f"\nwrote {stem}.md and {stem}.json")


if __name__ == "__main__":
  main()
