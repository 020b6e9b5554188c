"""PC-AVS (Zhou et al., CVPR 2021) as one module: its four inference networks, wired as the
official `inference` wires them.

  z_a   = netA_sync(audio window)                        per-frame speech content (512)
  mouth = netE.mouth_embed(1.2 * z_a)                    (500; 1.2 = mouth_feature_weight)
  id_vec, id_map = netV(identity frame)                  (2048), (7, 7, 512)
  pose  = netE.headpose_embed(netE.to_headpose(netE.forward_feature(pose frame)))   (12)
  frame = netG(concat(id_vec, mouth, pose), id_map)      RGB [-1, 1], 224 px

z_a (before the 1.2 weight) is what TAEM learns to produce. What `decode` takes as "faces":
one aligned crop per output frame (the official loader's crop of it, `prepare_faces`) used
as BOTH the identity and the pose source, like Wav2Lip's same-frame reference. Each frame
thus keeps its own head pose and identity while the mouth comes from the latent. (Official
PC-AVS can take identity from one photo and pose from another clip; a caller that wants that
passes `render(z, identity, pose)` two arrays.)

The generator uses its stored noise maps (deterministic; official inference draws fresh
noise, which `render(..., rng=)` does).

Checkpoint: family "pcavs" holds all four nets under `netG`, `netV`, `netE`, `netA_sync`
(`porting.convert --src FOLDER` builds it from the official `latest_net_*.pth` files).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from taem_jax.models.pcavs_audio import PCAVSAudioSync
from taem_jax.models.pcavs_generator import PCAVSGenerator
from taem_jax.models.pcavs_vision import NUM_CLASSES, PCAVSIdentityEncoder, PCAVSPoseEncoder

MOUTH_FEATURE_WEIGHT = 1.2  # official AvModel.inference default (mouth_feature_weight)
LATENT_DIM = 512  # netA_sync's speech-content feature
STYLE_DIM = 2560  # identity vector 2048 + mouth embedding 500 + head-pose embedding 12
FACE_SIZE = 224  # aligned crop side; netE needs exactly this
# The official files of one checkpoint folder: the net's attribute name -> file name suffix
# (`<epoch>_net_<suffix>.pth`), smallest first so a converter fails fast on a bad folder.
NETS = {"netA_sync": "A_sync", "netE": "E", "netV": "V", "netG": "G"}


class PCAVS(nnx.Module):
  """PC-AVS inference: audio content encoder, identity and pose encoders, generator.

  Config: `num_classes` (the unused identity classifiers' width, 5830 official), `size`
  (generator output side, a multiple of 7: 224 official; 28 for a cheap test model),
  `n_mlp` (the unused mapping MLP's depth, 8 official).

  Shapes:
    encode_audio: mel (N, 80, 20, 1) in [0, 1] (`taem_jax.audio.pcavs_windows`) -> (N, 512).
    render: z (N, 512), identity (N, 224, 224, 3), pose (N, 224, 224, 3) RGB [-1, 1] (the
      official loader's crop, `taem_jax.face.align.loader_crop`) -> (N, size, size, 3) RGB
      [-1, 1].
    decode: z (N, 512), faces (N, 224, 224, 3) as `render`'s identity (also the pose)
      -> (N, size, size, 3) BGR [0, 1] (the frame convention all backbones' decode share).
    __call__: mel (N, 80, 20, 1), faces -> decode(encode_audio(mel), faces).
  """

  family = "pcavs"

  def __init__(self, *, num_classes: int = NUM_CLASSES, size: int = FACE_SIZE, n_mlp: int = 8,
               rngs: nnx.Rngs):
    # A tuple, not a dict: the graph definition must stay hashable (jit caches key on it).
    self._config = (("num_classes", int(num_classes)), ("size", int(size)), ("n_mlp", int(n_mlp)))
    self.netG = PCAVSGenerator(style_dim=STYLE_DIM, size=size, n_mlp=n_mlp, rngs=rngs)
    self.netV = PCAVSIdentityEncoder(num_classes, rngs=rngs)
    self.netE = PCAVSPoseEncoder(num_classes, rngs=rngs)
    self.netA_sync = PCAVSAudioSync(num_classes=num_classes, rngs=rngs)
    self.embed_dim = LATENT_DIM
    self.out_size = int(size)

  def get_config(self) -> dict:
    return dict(self._config)

  def encode_audio(self, mel: jax.Array) -> jax.Array:
    return self.netA_sync(mel)

  def style(self, z: jax.Array, identity: jax.Array, pose: jax.Array):
    """(style (N, 2560), identity map (N, 7, 7, 512)) as official inference builds them."""
    id_vec, id_map, _ = self.netV(identity)
    mouth = self.netE.embed_mouth(z * MOUTH_FEATURE_WEIGHT)
    head = self.netE.embed_headpose(self.netE.headpose(self.netE.features(pose)))
    return jnp.concatenate([id_vec, mouth, head], axis=-1), id_map

  def render(self, z: jax.Array, identity: jax.Array, pose: jax.Array,
             rng: jax.Array | None = None) -> jax.Array:
    style, id_map = self.style(z, identity, pose)
    return self.netG(style, id_map, rng=rng)

  def decode(self, z: jax.Array, faces: jax.Array) -> jax.Array:
    rgb = self.render(z, faces, faces)
    return (rgb[..., ::-1] + 1.0) * 0.5

  def __call__(self, mel: jax.Array, faces: jax.Array) -> jax.Array:
    return self.decode(self.encode_audio(mel), faces)
