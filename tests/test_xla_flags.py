"""The project's default XLA:CPU flag: added once, never over a user's own choice."""
from taem_jax import xla_flags


def test_adds_the_flag_to_existing_flags():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  assert xla_flags.prefer_eigen_convolutions(env)
  assert env["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=2 "
                              + xla_flags.EIGEN_CONVOLUTIONS)
  assert not xla_flags.prefer_eigen_convolutions(env)  # already there: unchanged
  assert env["XLA_FLAGS"].count("ynn_fusion_type") == 1


def test_respects_the_user():
  env = {}
  assert xla_flags.prefer_eigen_convolutions(env) and env["XLA_FLAGS"] == \
      xla_flags.EIGEN_CONVOLUTIONS
  own = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=individual_convolution"}
  assert not xla_flags.prefer_eigen_convolutions(own)
  assert own["XLA_FLAGS"] == "--xla_cpu_experimental_ynn_fusion_type=individual_convolution"
  off = {xla_flags.OPT_OUT: "0"}
  assert not xla_flags.prefer_eigen_convolutions(off) and "XLA_FLAGS" not in off
