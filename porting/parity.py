"""Runs a converted Flax model on PyTorch-layout inputs and compares with reference outputs.

The inputs/outputs are those of `porting.families.make_inputs` and
`porting.reference.make_fixtures.run_model` (NCHW / NCDHW numpy); this module does the layout
changes (NCHW -> NHWC, time-major folding for the quality discriminator) so the two sides
are compared on identical numbers. Used by the parity and golden tests.
"""
from __future__ import annotations

import numpy as np


def _nhwc(x: np.ndarray) -> np.ndarray:
  return np.ascontiguousarray(np.moveaxis(x, 1, -1))


_JIT_CACHE: dict = {}


def _jitted_call():
  """`model(*args)` under nnx.jit, built once: the 224 px generator runs ~10x slower eagerly."""
  if "call" not in _JIT_CACHE:
    from flax import nnx  # noqa: PLC0415  (lazy: the numpy helpers here need no flax)

    _JIT_CACHE["call"] = nnx.jit(lambda m, *args: m(*args))
  return _JIT_CACHE["call"]


def run_flax(family: str, model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Eval-mode outputs of a taem_jax model, returned in the PyTorch reference's layout.

  Shapes (PyTorch layout in and out):
    wav2lip: audio (B,1,80,16), face (B,6,96,96) -> out (B,3,96,96)
    syncnet_color: audio (B,1,80,16), face (B,15,48,96) -> audio_emb, face_emb (B,512)
    disc_qual: face (B,3,T,96,96) -> out (T*B,1) (rows time-major, t*B + b)
    syncnet_v2: mfcc (B,1,13,20), lips (B,3,5,224,224) -> audio_emb, lip_emb (B,1024),
      lip_feat (B,512)
    s3fd: image (B,3,H,W) -> cls0..cls5 (B,2,h,w) softmax probs, reg0..reg5 (B,4,h,w)
    pcavs_G: style (B,2560), identity (B,512,7,7) -> out (B,3,224,224) in [-1, 1] (stored noise)
    pcavs_V: image (B,3,H,W) -> id_vector (B,2048), id_map (B,512,7,7), scores (B,5830)
    pcavs_E: image (B,3,224,224) -> feature, headpose, mouth (B,512), headpose_embed (B,12),
      mouth_embed (B,500), scores (B,5830)
    pcavs_A_sync: mel (B,1,80,20) -> feature (B,512)
  """
  x = inputs
  if family == "wav2lip":
    out = model(_nhwc(x["audio"]), _nhwc(x["face"]))
    return {"out": np.moveaxis(np.asarray(out), -1, 1)}
  if family == "syncnet_color":
    a, v = model(_nhwc(x["audio"]), _nhwc(x["face"]))
    return {"audio_emb": np.asarray(a), "face_emb": np.asarray(v)}
  if family == "disc_qual":
    f = x["face"]
    folded = np.concatenate([f[:, :, t] for t in range(f.shape[2])], axis=0)
    return {"out": np.asarray(model(_nhwc(folded)))}
  if family == "syncnet_v2":
    lips = np.ascontiguousarray(np.moveaxis(x["lips"], 1, -1))  # (B,C,T,H,W) -> (B,T,H,W,C)
    return {"audio_emb": np.asarray(model.embed_audio(_nhwc(x["mfcc"]))),
            "lip_emb": np.asarray(model.embed_lips(lips)),
            "lip_feat": np.asarray(model.lip_features(lips))}
  if family == "s3fd":
    out = {}
    for i, (p, o) in enumerate(model(_nhwc(x["image"]))):
      out[f"cls{i}"] = np.moveaxis(np.asarray(p), -1, 1)
      out[f"reg{i}"] = np.moveaxis(np.asarray(o), -1, 1)
    return out
  if family == "pcavs_G":
    out = _jitted_call()(model, x["style"], _nhwc(x["identity"]))
    return {"out": np.moveaxis(np.asarray(out), -1, 1)}
  if family == "pcavs_V":
    vec, fmap, scores = model(_nhwc(x["image"]))
    return {"id_vector": np.asarray(vec), "id_map": np.moveaxis(np.asarray(fmap), -1, 1),
            "scores": np.asarray(scores)}
  if family == "pcavs_E":
    feat = model.features(_nhwc(x["image"]))
    pose, mouth = model.headpose(feat), model.mouth(feat)
    return {"feature": np.asarray(feat), "headpose": np.asarray(pose),
            "headpose_embed": np.asarray(model.embed_headpose(pose)),
            "mouth": np.asarray(mouth), "mouth_embed": np.asarray(model.embed_mouth(mouth)),
            "scores": np.asarray(model.classify(feat))}
  if family == "pcavs_A_sync":
    return {"feature": np.asarray(model(_nhwc(x["mel"])))}
  raise ValueError(f"unknown family {family!r}")


def max_abs_diffs(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> dict[str, float]:
  """Max |got - want| per output name (shapes must agree; any NaN counts as inf)."""
  out = {}
  for k, w in want.items():
    g = np.asarray(got[k])
    if g.shape != w.shape:
      raise AssertionError(f"output {k}: shape {g.shape} != reference {w.shape}")
    d = np.abs(g.astype(np.float64) - w.astype(np.float64))
    out[k] = float("inf") if np.isnan(d).any() else float(np.max(d, initial=0.0))
  return out
