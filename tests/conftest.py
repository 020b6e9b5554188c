"""Shared pytest setup: CPU JAX, no GPU probing noise, deterministic threads."""
import os
import tempfile

import jax
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# What the library caches (face tracks) goes to a throw-away folder, not the user's home.
if "TAEM_JAX_HOME" not in os.environ:
  os.environ["TAEM_JAX_HOME"] = tempfile.mkdtemp(prefix="taem_jax_home_")


@pytest.fixture(scope="module")
def fast_compile():
  """XLA without most optimisation passes, for a module of tiny models (the passes cost more
  than they save there). Use with `pytestmark = pytest.mark.usefixtures("fast_compile")`."""
  old = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", old)
