"""PyTorch -> taem_jax checkpoint conversion for the Wav2Lip family (no torch needed).

  porting.convert(src, dst_dir, family="auto") -> str      # library call
  python -m porting.convert --src FILE --dst DIR            # CLI

Modules: `torchfile` (torch-free reader of torch.save / torch.jit.save files), `families`
(official key tables, seeded random weights and inputs), `converter` (validation, layout
mapping, model building). `reference/` holds the PyTorch reference models and fixture
scripts; it needs `.venv-torch` and is never imported by taem_jax.
"""
from porting.converter import convert

__all__ = ["convert"]
