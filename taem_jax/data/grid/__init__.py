"""TFDS builder folder for grid (see README.md)."""
