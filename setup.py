"""taem-jax: text-driven talking-face synthesis (TAEM + Wav2Lip) in JAX/Flax.

Install the whole stack with `bash setup.sh`; `pip install -e .` installs the package with the
pinned stack from requirements.txt.
"""
import pathlib

import setuptools

_HERE = pathlib.Path(__file__).parent


def _requirements(name):
  lines = (_HERE / name).read_text().splitlines()
  return [l.strip() for l in lines if l.strip() and not l.startswith("#")]


setuptools.setup(
    name="taem-jax",
    version="0.1.0",
    description="Text-driven talking-face synthesis by reprogramming Wav2Lip, in JAX/Flax",
    long_description=(_HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["taem_jax", "taem_jax.*", "porting", "porting.*"]),
    include_package_data=True,
    install_requires=_requirements("requirements.txt"),
    extras_require={"test": _requirements("requirements-test.txt")},
    entry_points={"console_scripts": ["taem-doctor=taem_jax.doctor:main",
                                      "taem-app=taem_jax.cli.app:main",
                                      "taem-synthesize=taem_jax.synthesis_cli:main"]},
)
