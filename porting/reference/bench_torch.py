"""Frames/s of the PyTorch reference Wav2Lip generator on this CPU (eval, no_grad, float32).

  .venv-torch/bin/python -m porting.reference.bench_torch [--batches 1 16 64] [--threads 2]

Measures eager NCHW and channels_last memory format at each batch size: one warm-up call,
then repeated calls for at least --seconds (and at least 2 calls); prints a table of
frames/s and ms per batch so the numbers can be set beside the JAX benchmark.
"""
from __future__ import annotations

import argparse
import time

import torch

from porting import families
from porting.reference.make_fixtures import build_model


def bench(model, audio, face, min_seconds: float) -> float:
  """Seconds per call (median-free mean over >= 2 timed calls after one warm-up)."""
  with torch.no_grad():
    model(audio, face)
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < min_seconds:
      model(audio, face)
      n += 1
  return (time.perf_counter() - t0) / n


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--seconds", type=float, default=3.0)
  args = parser.parse_args(argv)
  torch.set_num_threads(args.threads)
  model = build_model("wav2lip", seed=0)
  print(f"torch {torch.__version__}, {args.threads} threads, Wav2Lip generator, eval, float32")
  print(f"{'layout':<14} {'batch':>5} {'ms/batch':>10} {'frames/s':>10}")
  for layout in ("nchw", "channels_last"):
    m = model.to(memory_format=torch.channels_last) if layout == "channels_last" else model
    for b in args.batches:
      x = families.make_inputs("wav2lip", b, seed=b)
      audio, face = torch.from_numpy(x["audio"]), torch.from_numpy(x["face"])
      if layout == "channels_last":
        audio = audio.contiguous(memory_format=torch.channels_last)
        face = face.contiguous(memory_format=torch.channels_last)
      sec = bench(m, audio, face, args.seconds)
      print(f"{layout:<14} {b:>5} {sec * 1e3:>10.1f} {b / sec:>10.1f}", flush=True)


if __name__ == "__main__":
  main()
