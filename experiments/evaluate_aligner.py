"""Accuracy of the built-in aligner against espeak-ng truth, and the text front end's speed.

    .venv/bin/python experiments/evaluate_aligner.py [--n 20]

What is measured and how: `taem_jax.text.evaluate_aligner`.
"""
import sys

from taem_jax.errors import cli_main
from taem_jax.text.evaluate_aligner import SENTENCES, evaluate


def main(argv):
  n = int(argv[argv.index("--n") + 1]) if "--n" in argv else len(SENTENCES)
  r = evaluate(SENTENCES[:n])
  print(f"{r['n_sentences']} sentences, {r['n_boundaries']} boundaries: "
        f"mean {r['mean_ms']:.1f} ms, median {r['median_ms']:.1f} ms, "
        f"{100 * r['within_20ms']:.0f}% <= 20 ms, {100 * r['within_40ms']:.0f}% <= 40 ms")
  print(f"median time per sentence: g2p {r['g2p_ms']:.1f} ms, espeak synthesis "
        f"{r['espeak_ms']:.1f} ms, aligner {r['align_ms']:.1f} ms")


if __name__ == "__main__":
  cli_main(main)(sys.argv[1:])
