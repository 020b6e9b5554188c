"""TFDS builder folder for lrs2 (see README.md)."""
