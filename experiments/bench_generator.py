"""Wav2Lip generator throughput in JAX on this machine (jit, fp32, random weights, after warm-up).

    .venv/bin/python experiments/bench_generator.py                     # all variants, B=1,16,64
    .venv/bin/python experiments/bench_generator.py --batches 64 --impls subpixel --flags eigen

Each variant (transposed-conv form x XLA flag set) runs in its own process, because XLA_FLAGS
are read once at JAX start-up. The timed function is the one `taem_jax.generate` uses. Prints
one table: frames/s = B / median seconds per forward. Cost: about 1-3 min on the 2-core CPU.
Numbers are only comparable within one run (the machine is shared: the load average is printed).

Measured on the 2-core box at load ~4 (other jobs running), fps median, B = 1 / 16 / 64:
  default flags, direct convT    8.8 / 13.6 / 12.3
  default flags, subpixel convT  8.8 / 12.7 / 13.0
  eigen flags,   direct convT   10.1 / 16.6 / 15.7
  eigen flags,   subpixel convT  9.8 / 16.5 / 16.5
(docs/performance.md measured ~34 fps on an idle machine of the same kind.)
"""
import argparse
import json
import os
import subprocess
import sys
import time

# XLA:CPU flag sets (docs/performance.md §9): 'eigen' routes convolutions and dots to XLA's
# Eigen runtime instead of YNNPACK, which was faster for this network.
FLAG_SETS = {
    "default": "",
    "eigen": "--xla_cpu_experimental_ynn_fusion_type=-individual_dot,-individual_convolution",
}


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--batches", default="1,16,64", help="comma-separated batch sizes")
  p.add_argument("--impls", default="direct,subpixel", help="transposed-conv forms")
  p.add_argument("--flags", default="default,eigen", help=f"XLA flag sets: {sorted(FLAG_SETS)}")
  p.add_argument("--seconds", type=float, default=6.0, help="timing budget per batch size")
  p.add_argument("--width", type=float, default=1.0, help="generator width (1.0 = official)")
  p.add_argument("--torch", default=True, action=argparse.BooleanOptionalAction,
                 help="also time the PyTorch reference (porting/reference, run in .venv-torch) "
                      "in the same invocation, so the two are measured side by side")
  p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
  return p.parse_args(argv)


def worker(impl, batches, seconds, width):
  """Runs in a child process with XLA_FLAGS already set; prints one JSON line per batch size."""
  import jax.numpy as jnp
  import numpy as np

  from taem_jax import generate, models

  model = models.create("wav2lip", seed=0, width=width, convt_impl=impl)
  graphdef, state = generate.eval_split(model)
  rng = np.random.default_rng(0)
  for b in batches:
    mel = jnp.asarray(rng.uniform(-4, 4, (b, 80, 16, 1)).astype(np.float32))
    faces = jnp.asarray(rng.uniform(0, 1, (b, 96, 96, 6)).astype(np.float32))
    t0 = time.perf_counter()
    generate._generate_batch(graphdef, state, mel, faces).block_until_ready()
    compile_s = time.perf_counter() - t0
    generate._generate_batch(graphdef, state, mel, faces).block_until_ready()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < seconds and len(times) < 200):
      t0 = time.perf_counter()
      generate._generate_batch(graphdef, state, mel, faces).block_until_ready()
      times.append(time.perf_counter() - t0)
    med = float(np.median(times))
    print(json.dumps({"b": b, "median_s": med, "fps": b / med, "best_fps": b / min(times),
                      "n": len(times), "compile_s": compile_s}), flush=True)


def main(argv):
  args = parse_args(argv)
  batches = [int(b) for b in args.batches.split(",")]
  if args.worker:
    worker(args.worker, batches, args.seconds, args.width)
    return
  rows = []
  for flags in args.flags.split(","):
    for impl in args.impls.split(","):
      env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=FLAG_SETS[flags])
      cmd = [sys.executable, __file__, "--worker", impl, "--batches", args.batches,
             "--seconds", str(args.seconds), "--width", str(args.width)]
      proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
      if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(f"worker {impl}/{flags} failed")
      for line in proc.stdout.splitlines():
        if line.startswith("{"):
          rows.append(dict(json.loads(line), impl=impl, flags=flags))
  print(f"Wav2Lip generator (width {args.width}), JAX {_jax_version()}, fp32, jit; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
  print(f"{'XLA flags':<9} {'convT':<9} {'B':>4} {'fps (median)':>13} {'fps (best)':>11} "
        f"{'ms/forward':>11} {'n':>4} {'compile s':>10}")
  for r in rows:
    print(f"{r['flags']:<9} {r['impl']:<9} {r['b']:>4} {r['fps']:>13.1f} {r['best_fps']:>11.1f} "
          f"{1000 * r['median_s']:>11.0f} {r['n']:>4} {r['compile_s']:>10.1f}")
  if args.torch:
    _torch_reference(batches, args.seconds)


def _torch_reference(batches, seconds):
  """Times porting/reference's PyTorch Wav2Lip (eager NCHW and channels_last) right after JAX."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  torch_py = os.path.join(root, ".venv-torch", "bin", "python")
  if not os.path.exists(torch_py):
    print("PyTorch reference: skipped (.venv-torch missing: run `bash setup.sh --test`)")
    return
  print(f"\nPyTorch reference, same machine, load average {os.getloadavg()[0]:.1f}:")
  subprocess.run([torch_py, "-m", "porting.reference.bench_torch", "--batches",
                  *map(str, batches), "--seconds", str(seconds)], cwd=root, check=True)


def _jax_version():
  out = subprocess.run([sys.executable, "-c", "import jax; print(jax.__version__)"],
                       capture_output=True, text=True)
  return out.stdout.strip()


if __name__ == "__main__":
  main(sys.argv[1:])
