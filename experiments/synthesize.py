"""Talking-face synthesis from text (TAEM) or audio on a face image or video.

    .venv/bin/python experiments/synthesize.py --face me.jpg --text "Hello there." --out hello.mp4
    .venv/bin/python experiments/synthesize.py --face me.jpg --text "Hello there." \\
        --taem ckpt/taem --wav2lip ckpt/wav2lip --out hello.mp4 --speech
    .venv/bin/python experiments/synthesize.py --face talk.mp4 --audio speech.wav \\
        --wav2lip ckpt/wav2lip --out synced.mp4
    .venv/bin/python experiments/synthesize.py --batch jobs.csv --taem ... --wav2lip ...

The same command is installed as `taem-synthesize`; see taem_jax/cli/synthesize.py for every
flag and taem_jax/synthesis/ for the engine.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from taem_jax.cli.synthesize import main  # noqa: E402  pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  sys.exit(main())
