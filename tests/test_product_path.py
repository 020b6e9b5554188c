"""The README's "From a dataset to the product" commands, run as written, at tiny sizes.

The commands are read from the README block after the `product-path` marker, so the README
cannot drift from what works. Each command runs in a fresh folder (relative paths such as
data/ and runs/ land there; experiments/ and checkpoints/ point into the repository); only
size flags are appended (argparse and absl keep the last value of a repeated flag): 2 speakers
x 3 utterances, a few training steps, one evaluated clip. About 8-10 minutes here.
"""
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
MARKER = "<!-- product-path:"
ENV = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
ENV.pop("XLA_FLAGS", None)

# Appended to each script's command line: tiny sizes, no progress bars.
TINY = {
    "make_sample_corpus.py": ["--speakers=2", "--utterances=3"],
    "build_dataset.py": [],
    "train.py": ["--steps=4", "--noprogress", "--notensorboard", "--config.data.batch_size=2",
                 "--config.train.eval_every=2", "--config.train.eval_batches=1",
                 "--config.train.sample_every=0", "--config.train.checkpoint_every=4"],
    "synthesize.py": ["--no_progress"],
    "evaluate.py": ["--limit=1", "--no_progress"],
}


def readme_commands() -> list[list[str]]:
  """The product-path block's commands, continuation lines joined, comments dropped."""
  text = (REPO / "README.md").read_text()
  start = text.index(MARKER)
  block = re.search(r"```bash\n(.*?)```", text[start:], re.S)
  assert block, "no bash block after the product-path marker"
  joined = re.sub(r"\\\n\s*", " ", block.group(1))
  return [shlex.split(line) for line in joined.splitlines()
          if line.strip() and not line.lstrip().startswith("#")]


def _localise(arg: str) -> str:
  """experiments/... and checkpoints/... (also after `--flag=`) point into the repository."""
  flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
  target = value if eq or not flag else arg
  for top in ("experiments/", "checkpoints/"):
    if target.startswith(top):
      target = str(REPO / target)
  return f"{flag}={target}" if eq else target


def test_readme_block_is_the_whole_path():
  cmds = readme_commands()
  scripts = [pathlib.Path(c[1]).name for c in cmds]
  assert scripts[:2] == ["make_sample_corpus.py", "build_dataset.py"]
  for step in ("train.py", "synthesize.py", "evaluate.py"):
    assert step in scripts, f"README path has no {step} step"
  assert all(c[0] == ".venv/bin/python" for c in cmds)
  train = next(c for c in cmds if c[1].endswith("train.py"))
  assert any(a.startswith("--export=") for a in train)


def test_readme_product_path_runs_as_written(tmp_path):
  for cmd in readme_commands():
    script = pathlib.Path(cmd[1]).name
    argv = [sys.executable, *(_localise(a) for a in cmd[1:]), *TINY[script]]
    proc = subprocess.run(argv, cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"

  export = tmp_path / "runs" / "taem" / "export"
  meta = json.loads((export / "taem_jax.json").read_text())
  assert meta, "the exported TAEM holds no metadata"
  out = tmp_path / "hello.mp4"
  assert out.is_file() and out.stat().st_size > 1000
  table = json.loads((tmp_path / "out" / "eval" / "table.json").read_text())
  table2 = json.loads((tmp_path / "out" / "eval_table2" / "table.json").read_text())
  assert len(table["rows"]) >= 3
  # Table 2: the main TAEM and one row per other objective, named by the objective it recorded.
  labels = " | ".join(r["method"] for r in table2["rows"])
  assert len(table2["rows"]) == 4, labels
  for objective in ("contrastive", "mse+contrastive", "mse+task"):
    assert objective in labels
  for row in table["rows"] + table2["rows"]:
    for key in ("ssim", "psnr", "lmd", "lse_d", "lse_c"):
      assert row[key] == row[key], f"{row}: {key} is NaN"  # every number was measured


if __name__ == "__main__":
  sys.exit(pytest.main([__file__, "-q"]))
