"""The README's first command: the end-to-end path that exists today, on generated data.

    .venv/bin/python experiments/demo.py [--text "Place blue at F two now."] [--out out/demo]

Steps (each reuses the project's own CLI, so the demo is exactly what a user would run):
  1. generate a small sample corpus (GRID grammar, espeak-ng voices, animated real photos),
     `experiments/make_sample_corpus.py`;
  2. build it with the GRID TFDS builder (face crops, mels, phonemes, durations, speaker
     embeddings), via `experiments/train.py`'s dataset preparation;
  3. train TAEM at the `:tiny` size for a few dozen steps and show L_dis / L_dur falling;
  4. write `<out>/say.mp4`: a real photographed face saying `--text`, animated by the sample
     corpus's phoneme-driven mouth (espeak-ng speech muxed in).

What it is NOT yet: step 3's frozen Wav2Lip has random weights (no trained or official
Wav2Lip exists on a fresh machine; training one in JAX is issue 8), and step 4 uses the
procedural animator, not TAEM + Wav2Lip (text synthesis through the models is issue 9).
The demo says so in its output. Cost here: about 3-6 minutes on the 2-core CPU.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from taem_jax.errors import UserError, cli_main  # noqa: E402  pylint: disable=g-import-not-at-top


def _run(step, argv):
  print(f"[demo] {step}: {' '.join(argv[1:])}", flush=True)
  t0 = time.time()
  r = subprocess.run(argv, cwd=ROOT, check=False)
  if r.returncode != 0:
    raise UserError(f"demo step '{step}' failed (exit {r.returncode}); see the lines above")
  return time.time() - t0


def _curve(workdir, kind):
  """First and last rows of one kind ("train" or "eval") of the trainer's metrics.jsonl."""
  rows = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines() if l]
  rows = [r for r in rows if r.get("kind") == kind and "mse" in r]
  if not rows:
    raise UserError(f"no training metrics in {workdir}/metrics.jsonl")
  return rows[0], rows[-1]


@cli_main
def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--text", default="Place blue at F two now.",
                 help="the sentence the face says in say.mp4")
  p.add_argument("--out", default="out/demo", help="output folder (created; reused)")
  p.add_argument("--speakers", type=int, default=3, help="sample-corpus speakers")
  p.add_argument("--utterances", type=int, default=8, help="sample-corpus utterances per speaker")
  p.add_argument("--steps", type=int, default=60, help="TAEM :tiny training steps")
  args = p.parse_args(argv)
  if not args.text.strip():
    raise UserError("empty --text: give a sentence, e.g. --text \"Bin red at A one again.\"")

  out = (ROOT / args.out).resolve() if not os.path.isabs(args.out) else pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  py = sys.executable
  corpus, run = out / "sample_corpus", out / "taem_tiny"
  times = {}
  times["corpus"] = _run("generate sample corpus", [
      py, "experiments/make_sample_corpus.py", "--out", str(corpus),
      "--speakers", str(args.speakers), "--utterances", str(args.utterances)])
  times["build+train"] = _run("build dataset and train TAEM :tiny", [
      py, "experiments/train.py", "--dataset=sample", f"--manual_dir={corpus}",
      "--config=experiments/configs/sample.py:tiny", f"--workdir={run}",
      f"--steps={args.steps}", "--config.target.require_pretrained=False", "--notensorboard"])

  print(f"[demo] write say.mp4: {args.text!r}", flush=True)
  t0 = time.time()
  import numpy as np  # pylint: disable=g-import-not-at-top
  from taem_jax.data.sample import dummy, portraits  # pylint: disable=g-import-not-at-top
  from taem_jax.face import FaceDetector  # pylint: disable=g-import-not-at-top
  portrait = portraits.make_portraits(1, 192, np.random.default_rng(0), FaceDetector())[0]
  n = dummy.write_clip(out / "say.mp4", args.text, portrait)
  times["say.mp4"] = time.time() - t0

  print()
  print("| step | seconds |")
  print("|---|---|")
  for k, v in times.items():
    print(f"| {k} | {v:.0f} |")
  print()
  print(f"TAEM :tiny, {args.steps} steps on the generated corpus (frozen Wav2Lip target has "
        "RANDOM weights: no trained Wav2Lip exists yet on a fresh machine):")
  for kind in ("train", "eval"):
    first, last = _curve(run, kind)
    for key in ("mse", "duration"):
      print(f"  {kind} {key}: step {first['step']} {first[key]:.5f} -> step {last['step']} "
            f"{last[key]:.5f}")
  print(f"wrote {out / 'say.mp4'} ({n} frames, H.264 + AAC): a real photo animated by the "
        "sample corpus's phoneme-driven mouth (procedural, not yet TAEM + Wav2Lip)")
  print(f"corpus: {corpus} (generated, NOT GRID); run: {run}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
