"""Training: losses (losses.py); trainer, optimizers, checkpointing and sharding live beside it.

Import submodules directly (`from taem_jax.train import losses`); nothing heavy is imported here.
"""
