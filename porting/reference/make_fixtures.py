"""Writes every official checkpoint file form from the PyTorch reference models + their outputs.

Run under the PyTorch env (never the main one):

  .venv-torch/bin/python -m porting.reference.make_fixtures --out /tmp/fixtures [--batches 1 3]

For each family the weights come from `porting.families.random_state_dict(family, seed)`
(random weights, non-trivial BatchNorm running statistics). Files written to --out:

  wav2lip_gan.pth           legacy (pre-1.6) format; dict state_dict+optimizer(None)+global_step
                            +global_epoch, keys prefixed `module.` (DataParallel style)
  wav2lip_zip.pth           zip format; dict state_dict+global_step+global_epoch
  Wav2Lip-SD-GAN.pt         TorchScript (torch.jit.trace) like the current official download
  lipsync_expert.pth        legacy; dict with a real Adam state (as color_syncnet_train.py writes)
  lipsync_expert_script.pt  TorchScript (torch.jit.script)
  visual_quality_disc.pth   legacy; dict
  syncnet_v2.model          legacy; plain name -> tensor mapping
  syncnet_v2_nobatches.model zip; plain mapping without num_batches_tracked
  s3fd-619a316812.pth       legacy; plain name -> tensor mapping (the S3FD face detector)
  latest_net_G.pth          zip; plain mapping (PC-AVS netG, as its save_network writes it)
  latest_net_V.pth          zip; plain mapping (PC-AVS identity encoder netV)
  latest_net_E.pth          legacy; plain mapping (PC-AVS pose encoder netE)
  latest_net_A_sync.pth     zip; plain mapping (PC-AVS audio content encoder)
  outputs_<family>_b<B>.npz inputs (PyTorch layout) + eval-mode outputs, one per batch size
  manifest.json             {file: {"family", "format", "batch"?}} for the tests

Outputs are named: wav2lip `out`; syncnet_color `audio_emb`, `face_emb`; disc_qual `out`;
syncnet_v2 `audio_emb`, `lip_emb`, `lip_feat`; s3fd `cls0`..`cls5` (softmax probs), `reg0`..`reg5`;
pcavs_G `out` (stored noise maps).
pcavs_V `id_vector`, `id_map`, `scores`; pcavs_E `feature`, `headpose`, `headpose_embed`,
`mouth`, `mouth_embed`, `scores`.
pcavs_A_sync `feature`.
`--families` limits the run to some families (default: all).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

from porting import families
from porting.reference import torch_models, torch_pcavs_vision
from porting.reference.torch_pcavs_generator import PCAVSGeneratorRef

REFERENCES = {**torch_models.MODELS, **torch_pcavs_vision.MODELS, "pcavs_G": PCAVSGeneratorRef}


def build_model(family: str, seed: int) -> torch.nn.Module:
  """The reference model of `family` in eval mode, loaded with the seeded numpy weights."""
  model = REFERENCES[family]()
  sd = families.random_state_dict(family, seed)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=True)
  return model.eval()


def run_model(family: str, model: torch.nn.Module, inputs: dict) -> dict[str, np.ndarray]:
  """Eval-mode forward of the reference model; inputs/outputs are numpy, PyTorch layout."""
  x = {k: torch.from_numpy(v) for k, v in inputs.items()}
  with torch.no_grad():
    if family == "wav2lip":
      return {"out": model(x["audio"], x["face"]).numpy()}
    if family == "syncnet_color":
      a, v = model(x["audio"], x["face"])
      return {"audio_emb": a.numpy(), "face_emb": v.numpy()}
    if family == "disc_qual":
      return {"out": model(x["face"]).numpy()}
    if family == "s3fd":
      heads = model(x["image"])
      out = {}
      for i in range(6):
        out[f"cls{i}"] = torch.softmax(heads[2 * i], dim=1).numpy()
        out[f"reg{i}"] = heads[2 * i + 1].numpy()
      return out
    if family == "pcavs_G":
      return {"out": model(x["style"], x["identity"]).numpy()}
    if family in torch_pcavs_vision.MODELS:
      return torch_pcavs_vision.run(family, model, x["image"])
    if family == "pcavs_A_sync":
      return {"feature": model.forward_feature(x["mel"]).numpy()}
    if family == "syncnet_v2":
      return {"audio_emb": model.forward_aud(x["mfcc"]).numpy(),
              "lip_emb": model.forward_lip(x["lips"]).numpy(),
              "lip_feat": model.forward_lipfeat(x["lips"]).numpy()}
  raise ValueError(family)


def _adam_state(model: torch.nn.Module) -> dict:
  """A real Adam state_dict for `model` without changing its weights (zero-gradient step)."""
  opt = torch.optim.Adam(model.parameters(), lr=1e-4)
  for p in model.parameters():
    p.grad = torch.zeros_like(p)
  before = {k: v.clone() for k, v in model.state_dict().items()}
  opt.step()
  for k, v in model.state_dict().items():
    assert torch.equal(v, before[k]), "zero-gradient Adam step changed a weight"
  model.zero_grad(set_to_none=True)
  return opt.state_dict()


def _save(obj, path: str, zip_format: bool):
  tmp = path + ".tmp"
  torch.save(obj, tmp, _use_new_zipfile_serialization=zip_format)
  os.replace(tmp, path)


def build(out_dir: str, batches=(1, 3), seed: int = 0, only=None) -> dict:
  """Writes all fixtures to `out_dir`; returns the manifest."""
  os.makedirs(out_dir, exist_ok=True)
  manifest = {}

  def checkpoint(model, with_optimizer):
    return {"state_dict": model.state_dict(),
            "optimizer": _adam_state(model) if with_optimizer else None,
            "global_step": 123000, "global_epoch": 45}

  def add(name, family, fmt, obj=None, zip_format=False):
    if obj is not None:
      _save(obj, os.path.join(out_dir, name), zip_format)
    manifest[name] = {"family": family, "format": fmt}

  for i, family in enumerate(families.FAMILY_NAMES):
    if only and family not in only:
      continue
    model = build_model(family, seed + i)
    sd = model.state_dict()
    if family == "wav2lip":
      prefixed = {"module." + k: v for k, v in sd.items()}
      add("wav2lip_gan.pth", family, "legacy", {"state_dict": prefixed, "optimizer": None,
                                                "global_step": 123000, "global_epoch": 45})
      add("wav2lip_zip.pth", family, "zip", checkpoint(model, False), zip_format=True)
      example = families.make_inputs(family, 1, seed=99)
      traced = torch.jit.trace(
          model, (torch.from_numpy(example["audio"]), torch.from_numpy(example["face"])))
      traced.save(os.path.join(out_dir, "Wav2Lip-SD-GAN.pt"))
      add("Wav2Lip-SD-GAN.pt", family, "torchscript")
    elif family == "syncnet_color":
      add("lipsync_expert.pth", family, "legacy", checkpoint(model, True))
      torch.jit.script(model).save(os.path.join(out_dir, "lipsync_expert_script.pt"))
      add("lipsync_expert_script.pt", family, "torchscript")
    elif family == "disc_qual":
      add("visual_quality_disc.pth", family, "legacy", checkpoint(model, False))
    elif family == "s3fd":
      # The released detector file is a bare state_dict (what face_detection's torch.load reads).
      add("s3fd-619a316812.pth", family, "legacy", dict(sd))
    elif family == "pcavs_G":
      add("latest_net_G.pth", family, "zip", dict(sd), zip_format=True)
    elif family in ("pcavs_V", "pcavs_E"):
      # PC-AVS saves each network as a bare state_dict, `<epoch>_net_<V|E>.pth`.
      add(f"latest_net_{family[-1]}.pth", family, "zip" if family == "pcavs_V" else "legacy",
          dict(sd), zip_format=family == "pcavs_V")
    elif family == "pcavs_A_sync":
      # PC-AVS saves each network's bare state_dict (net.cpu().state_dict()).
      add("latest_net_A_sync.pth", family, "zip", dict(sd), zip_format=True)
    else:
      add("syncnet_v2.model", family, "legacy", dict(sd))
      slim = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
      add("syncnet_v2_nobatches.model", family, "zip", slim, zip_format=True)

    for b in batches:
      inputs = families.make_inputs(family, b, seed=1000 + b)
      outputs = run_model(family, model, inputs)
      name = f"outputs_{family}_b{b}.npz"
      np.savez(os.path.join(out_dir, name), **inputs, **{f"out_{k}": v for k, v in
                                                          outputs.items()})
      manifest[name] = {"family": family, "format": "outputs", "batch": b}

  with open(os.path.join(out_dir, "manifest.json"), "w") as f:
    json.dump({"seed": seed, "files": manifest}, f, indent=1)
  return manifest


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--batches", type=int, nargs="+", default=[1, 3])
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--families", nargs="+", choices=families.FAMILY_NAMES, default=None)
  args = parser.parse_args(argv)
  torch.manual_seed(0)
  torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
  manifest = build(args.out, tuple(args.batches), args.seed, args.families)
  print(f"wrote {len(manifest)} files to {args.out}")


if __name__ == "__main__":
  sys.exit(main())
