"""Shared pytest setup: CPU JAX, no GPU probing noise, deterministic threads."""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
