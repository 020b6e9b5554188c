"""PyTorch reference side of the port (runs only under .venv-torch; never imported by taem_jax)."""
