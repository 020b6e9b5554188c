"""Shared pytest setup: CPU JAX, no GPU probing noise, deterministic threads."""
import os

import jax
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def fast_compile():
  """XLA without most optimisation passes, for a module of tiny models (the passes cost more
  than they save there). Use with `pytestmark = pytest.mark.usefixtures("fast_compile")`."""
  old = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", old)
