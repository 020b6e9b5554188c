"""Frames/s of the PyTorch reference Wav2Lip generator on this CPU (eval, no_grad, float32).

  .venv-torch/bin/python -m porting.reference.bench_torch [--batches 1 16 64] [--threads 2]

Runs under .venv-torch only; `experiments/bench.py` calls it to set PyTorch beside the JAX
generator in one run. Layouts: eager NCHW (the stock `inference.py` path), eager
channels_last, and `torch.compile` (inductor, freezing, channels_last). Per layout and batch:
one warm-up call (compilation for `compile`), then calls for at least --seconds (and at least
3); the median is reported. A layout that fails (e.g. no C++ compiler for inductor) is reported
as failed with a one-line reason instead of stopping the run. With --json every result is also
printed as one JSON line, with the process's peak RSS during that measurement.

torch is imported inside the functions that need it, so the peak-RSS helpers here can be used
from the JAX environment too.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from porting import families

LAYOUTS = ("nchw", "channels_last", "compile")


def peak_rss_reset() -> None:
  """Starts a new peak-RSS window for this process (Linux; no-op elsewhere)."""
  try:
    with open("/proc/self/clear_refs", "w") as f:
      f.write("5")
  except OSError:
    pass


def peak_rss_bytes() -> int:
  """Peak resident set size of this process since start or the last reset (VmHWM)."""
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return 0


def bench(fn, min_seconds: float) -> tuple[list[float], float]:
  """(seconds per timed call, seconds of the first call) of `fn()` under no_grad."""
  import torch  # noqa: PLC0415 - lazy, so bench.py can import the RSS helpers without torch
  with torch.no_grad():
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times, start = [], time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_seconds and len(times) < 200):
      t0 = time.perf_counter()
      fn()
      times.append(time.perf_counter() - t0)
  return times, first


def _compiled(model):
  """A fresh static-shape compile of `model` (one per batch size).

  Freezing folds the eval-mode BN into the convs and lets inductor pick oneDNN layouts. The
  dynamo cache is reset first: reusing one compiled model across batch sizes recompiled it
  with dynamic shapes, which failed a stride assertion at the second size (torch 2.13).
  """
  import torch  # noqa: PLC0415 - lazy, so bench.py can import the RSS helpers without torch
  import torch._inductor.config as inductor_config  # noqa: PLC0415 - as above
  inductor_config.freezing = True
  torch._dynamo.reset()  # pylint: disable=protected-access
  return torch.compile(model, dynamic=False)


def main(argv=None):
  import torch  # noqa: PLC0415 - lazy, so bench.py can import the RSS helpers without torch

  from porting.reference.make_fixtures import build_model  # noqa: PLC0415 - imports torch
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
  parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--seconds", type=float, default=3.0)
  parser.add_argument("--json", action="store_true", help="also print one JSON line per result")
  args = parser.parse_args(argv)
  torch.set_num_threads(args.threads)
  model = build_model("wav2lip", seed=0)
  cl_model = None
  print(f"torch {torch.__version__}, {args.threads} threads, Wav2Lip generator, eval, float32")
  print(f"{'layout':<14} {'batch':>5} {'ms/batch':>10} {'frames/s':>10}")
  for layout in args.layouts:
    fn_model = model
    if layout != "nchw":
      if cl_model is None:
        cl_model = build_model("wav2lip", seed=0).to(memory_format=torch.channels_last)
      fn_model = cl_model
    for b in args.batches:
      error = None
      if layout == "compile":
        try:
          fn_model = _compiled(cl_model)
        except Exception as e:  # pylint: disable=broad-except
          error = e
      x = families.make_inputs("wav2lip", b, seed=b)
      audio, face = torch.from_numpy(x["audio"]), torch.from_numpy(x["face"])
      if layout != "nchw":
        audio = audio.contiguous(memory_format=torch.channels_last)
        face = face.contiguous(memory_format=torch.channels_last)
      rec = {"layout": layout, "b": b}
      peak_rss_reset()
      if error is None:
        try:
          times, first = bench(lambda m=fn_model, a=audio, f=face: m(a, f), args.seconds)
        except Exception as e:  # pylint: disable=broad-except
          error = e
      if error is not None:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        rec["error"] = f"{type(error).__name__}: {reason}"
        print(f"{layout:<14} {b:>5} failed: {rec['error']}", flush=True)
      else:
        med = float(np.median(times))
        rec.update(median_s=med, fps=b / med, best_fps=b / min(times), n=len(times),
                   first_s=first, peak_rss=peak_rss_bytes())
        print(f"{layout:<14} {b:>5} {med * 1e3:>10.1f} {b / med:>10.1f}", flush=True)
      if args.json:
        print("JSON " + json.dumps(rec), flush=True)


if __name__ == "__main__":
  main()
