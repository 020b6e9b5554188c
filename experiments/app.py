"""The web app: text or audio -> talking face, and word editing, in the browser.

    .venv/bin/python experiments/app.py                      # demo models, 127.0.0.1:7860
    .venv/bin/python experiments/app.py --wav2lip ckpt/wav2lip --taem ckpt/taem --port 8080

The same command is installed as `taem-app`; see taem_jax/cli/app.py for every flag.
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from taem_jax.cli.app import main  # noqa: E402  pylint: disable=g-import-not-at-top

if __name__ == "__main__":
  sys.exit(main())
