"""taem-jax: text-driven talking-face synthesis by reprogramming Wav2Lip, in JAX/Flax.

The package imports nothing heavy at top level; import the submodules you need
(`taem_jax.models`, `taem_jax.audio`, `taem_jax.text`, `taem_jax.face`, ...).
"""

__version__ = "0.1.0"
