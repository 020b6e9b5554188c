"""Flax NNX models of the Wav2Lip family and TAEM (+ checkpoint load/save).

`FAMILIES` maps a checkpoint family name to its class (`taem_jax.models.registry`); see
layers.py for the layout conventions that the PyTorch converter relies on.
"""
from taem_jax.models.pcavs import PCAVS
from taem_jax.models.pcavs_generator import PCAVSGenerator
from taem_jax.models.pcavs_vision import PCAVSIdentityEncoder, PCAVSPoseEncoder
from taem_jax.models.pretrained import load_pretrained, save_pretrained
from taem_jax.models.registry import FAMILIES, create
from taem_jax.models.syncnet import SyncNetColor, SyncNetV2
from taem_jax.models.taem import TAEM, TAEMConfig
from taem_jax.models.targets import (BACKBONES, Backbone, PCAVSTarget, Wav2LipTarget, backbone_class,
                                     frozen_call)
from taem_jax.models.wav2lip import Wav2Lip, Wav2LipDiscQual

__all__ = ["BACKBONES", "Backbone", "FAMILIES", "PCAVS", "PCAVSGenerator", "PCAVSIdentityEncoder",
           "PCAVSPoseEncoder", "PCAVSTarget", "SyncNetColor", "SyncNetV2", "TAEM", "TAEMConfig", "Wav2Lip",
           "Wav2LipDiscQual", "Wav2LipTarget", "backbone_class", "create", "frozen_call",
           "load_pretrained", "save_pretrained"]
