"""Where the project looks for files it cannot ship (official weights, ArcFace ONNX).

Order: an explicit path argument; else the environment variable; else the default folder
`$TAEM_JAX_HOME` (default `~/.cache/taem_jax`). Nothing is ever downloaded.
"""
import os
import pathlib

HOME_ENV = "TAEM_JAX_HOME"

# name -> (environment variable, default file name under home, where a user gets it)
OPTIONAL_FILES = {
    "wav2lip": ("TAEM_JAX_WAV2LIP", "wav2lip.pth",
                "official Wav2Lip checkpoint (github.com/Rudrabha/Wav2Lip README links)"),
    "wav2lip_gan": ("TAEM_JAX_WAV2LIP_GAN", "wav2lip_gan.pth",
                    "official Wav2Lip+GAN checkpoint (same README)"),
    "lipsync_expert": ("TAEM_JAX_LIPSYNC_EXPERT", "lipsync_expert.pth",
                       "Wav2Lip's expert lip-sync discriminator"),
    "visual_quality_disc": ("TAEM_JAX_VISUAL_QUALITY_DISC", "visual_quality_disc.pth",
                            "Wav2Lip's visual-quality discriminator"),
    "syncnet_v2": ("TAEM_JAX_SYNCNET_V2", "syncnet_v2.model",
                   "joonson/syncnet_python download_model.sh (for LSE-D/LSE-C)"),
    "s3fd": ("TAEM_JAX_S3FD", "s3fd-619a316812.pth",
             "official Wav2Lip's S3FD face detector (its README links the file; convert it "
             "with `python -m porting.convert --src s3fd-619a316812.pth --dst <dir>`)"),
    "arcface": ("TAEM_JAX_ARCFACE", "arcface.onnx",
                "an ArcFace ONNX model, e.g. w600k_r50.onnx from insightface's buffalo_l pack"),
}


def home() -> pathlib.Path:
  return pathlib.Path(os.environ.get(HOME_ENV, "~/.cache/taem_jax")).expanduser()


def optional_file(name: str) -> pathlib.Path:
  """The path where optional file `name` is looked for (it may not exist)."""
  env, default, _ = OPTIONAL_FILES[name]
  if os.environ.get(env):
    return pathlib.Path(os.environ[env]).expanduser()
  return home() / default


# The demo-scale models this project trained on its generated sample corpus (see the folder's
# README); they sit in the source tree beside the package, so an editable install finds them.
DEMO_DIR = pathlib.Path(__file__).resolve().parents[1] / "checkpoints" / "demo"
DEMO_MODELS = ("expert", "wav2lip", "taem")


def demo_model(name: str) -> pathlib.Path:
  """The committed demo model directory `name` (expert, wav2lip or taem); it may not exist
  when the package was installed without its source tree (callers say so in one line)."""
  if name not in DEMO_MODELS:
    raise KeyError(f"unknown demo model {name!r}; known: {', '.join(DEMO_MODELS)}")
  return DEMO_DIR / name
