"""Console scripts: argument parsing and printing for the taem-* commands."""

import argparse

from taem_jax.models.targets import BACKBONES, DEFAULT_BACKBONE


def add_backbone_argument(parser: argparse.ArgumentParser) -> None:
  """--backbone: which registered frozen backbone renders (and defines TAEM's latent)."""
  parser.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=sorted(BACKBONES),
                      help="frozen audio-driven backbone: the TAEM must have been trained for "
                      "it, and --wav2lip names its checkpoint directory (default: "
                      f"{DEFAULT_BACKBONE})")
