"""The checkpoint families: family name -> model class, and fast random initialisation.

`FAMILIES` maps a checkpoint family name to its class; every class takes only JSON-storable
keyword config (defaults = the official architecture) plus `rngs`, has a class attribute
`family` and a `get_config()` method.
"""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from taem_jax.models import layers
from taem_jax.models import pcavs_generator
from taem_jax.models.pcavs import PCAVS
from taem_jax.models.pcavs_generator import PCAVSGenerator
from taem_jax.models.pcavs_vision import PCAVSIdentityEncoder, PCAVSPoseEncoder
from taem_jax.models.pcavs_audio import PCAVSAudioSync
from taem_jax.models.s3fd import S3FD, L2Norm
from taem_jax.models.syncnet import SyncNetColor, SyncNetV2
from taem_jax.models.wav2lip import Wav2Lip, Wav2LipDiscQual

FAMILIES = {
    "wav2lip": Wav2Lip,
    "syncnet_color": SyncNetColor,
    "disc_qual": Wav2LipDiscQual,
    "syncnet_v2": SyncNetV2,
    "s3fd": S3FD,
    "pcavs_G": PCAVSGenerator,
    "pcavs_V": PCAVSIdentityEncoder,
    "pcavs_E": PCAVSPoseEncoder,
    "pcavs_A_sync": PCAVSAudioSync,
    "pcavs": PCAVS,  # the four nets above as inference wires them (the PC-AVS backbone)
}


def create(family, *, seed: int = 0, **config):
  """Builds a randomly initialised model fast, with the random numbers drawn on the host.

  Same distributions as the constructors' initializers (PyTorch-default conv/linear kernels
  U(+-1/sqrt(fan_in)), zero biases, BatchNorm scale 1 / bias 0 / mean 0 / var 1), but no XLA
  program per parameter shape is compiled, which takes tens of seconds on a busy CPU box.

  Args:
    family: a key of FAMILIES or a module class built from layers of this package.
    seed: numpy seed.
    **config: the constructor's keyword config.
  """
  cls = FAMILIES[family] if isinstance(family, str) else family
  model = nnx.eval_shape(lambda: cls(**config, rngs=nnx.Rngs(0)))
  rng = np.random.default_rng(seed)

  def uniform(shape, fan_in):
    bound = 1.0 / np.sqrt(fan_in)
    return jnp.asarray(rng.uniform(-bound, bound, shape).astype(np.float32))

  if any(isinstance(node, PCAVSGenerator) for _, node in nnx.iter_graph(model)):
    pcavs_generator.host_initialize(model, rng)  # StyleGAN2 layers: N(0, 1) equalized-lr weights
  for _, node in nnx.iter_graph(model):
    if isinstance(node, (nnx.Conv, nnx.Linear)):
      shape = node.kernel.shape
      node.kernel.set_value(uniform(shape, int(np.prod(shape[:-1]))))
      if node.bias is not None:  # PC-AVS's BatchNorm-followed convs have none
        node.bias.set_value(jnp.zeros(shape[-1:], jnp.float32))
    elif isinstance(node, layers.ConvTranspose2d):
      shape = node.kernel.shape
      node.kernel.set_value(uniform(shape, int(np.prod(shape[:2])) * shape[3]))
      node.bias.set_value(jnp.zeros(shape[-1:], jnp.float32))
    elif isinstance(node, L2Norm):  # keeps its official initial scale (10, 8 or 5)
      node.scale.set_value(jnp.full(node.scale.shape, node.init, jnp.float32))
    elif isinstance(node, nnx.BatchNorm):
      n = node.scale.shape
      for var, fill in ((node.scale, 1.0), (node.bias, 0.0), (node.mean, 0.0), (node.var, 1.0)):
        var.set_value(jnp.full(n, fill, jnp.float32))
  left = [v for v in jax.tree.leaves(nnx.state(model)) if not isinstance(v, jax.Array)]
  if left:
    raise TypeError(f"create() does not know how to initialise {len(left)} arrays of "
                    f"{cls.__name__}")
  return model
