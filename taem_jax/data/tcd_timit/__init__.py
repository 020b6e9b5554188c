"""TFDS builder folder for tcd_timit (see README.md)."""
