"""The package's import graph: imports run downward only, no cycles, no borrowed privates.

Read from the source with `ast` (nothing is imported), so function-local imports count as
much as top-level ones: a cycle hidden behind a lazy import is still a cycle.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "taem_jax"

# Layers, lowest first. A module may import its own layer or a lower one. The longest prefix
# decides, so `taem_jax.data.sample` could be given a layer of its own if it ever needed one.
LAYERS = {
    "taem_jax": 0, "taem_jax.rates": 0, "taem_jax.errors": 0, "taem_jax.paths": 0,
    "taem_jax.offline": 0, "taem_jax.xla_flags": 0,
    "taem_jax.audio": 1, "taem_jax.video": 1,
    "taem_jax.text": 2, "taem_jax.face": 2,
    "taem_jax.face.s3fd_detect": 3,  # runs the S3FD network of taem_jax.models
    "taem_jax.face.detectors": 3,  # builds every kind, S3FD included
    "taem_jax.models": 3, "taem_jax.metrics": 3,
    "taem_jax.data": 4,
    "taem_jax.train": 5, "taem_jax.synthesis": 5,
    "taem_jax.evaluation": 6,
    "taem_jax.cli": 7,
}


def module_files(package: pathlib.Path = PACKAGE) -> dict[str, pathlib.Path]:
  """Dotted module name -> file, for every module of the package."""
  out = {}
  for path in sorted(package.rglob("*.py")):
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts = parts[:-1]
    out[".".join(parts)] = path
  return out


def layer(module: str) -> int:
  parts = module.split(".")
  for k in range(len(parts), 0, -1):
    key = ".".join(parts[:k])
    if key in LAYERS:
      return LAYERS[key]
  raise KeyError(module)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
  if not node.level:
    return node.module or ""
  base = importer.split(".")
  if not is_package:
    base = base[:-1]
  base = base[:len(base) - (node.level - 1)]
  return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: pathlib.Path, modules) -> list[tuple[str, str | None, int]]:
  """(imported module, imported name or None, line) for each package import in the file.

  `from pkg import sub` is an import of module `pkg.sub` when that module exists; otherwise of
  `pkg` with the name `sub`.
  """
  tree = ast.parse(path.read_text(), filename=str(path))
  is_package = path.name == "__init__.py"
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.split(".")[0] == "taem_jax":
          found.append((alias.name, None, node.lineno))
    elif isinstance(node, ast.ImportFrom):
      base = _resolve(name, is_package, node)
      if base.split(".")[0] != "taem_jax":
        continue
      for alias in node.names:
        sub = f"{base}.{alias.name}"
        if sub in modules:
          found.append((sub, None, node.lineno))
        else:
          found.append((base, alias.name, node.lineno))
  return found


def graph(modules) -> dict[str, dict[str, int]]:
  """importer -> {imported module: first line}."""
  g = {}
  for name, path in modules.items():
    edges = {}
    for target, _, line in imports_of(name, path, modules):
      if target != name and target in modules:
        edges.setdefault(target, line)
    g[name] = edges
  return g


def cycles(g) -> list[list[str]]:
  """The strongly connected components with more than one module (Tarjan)."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []
  counter = [0]

  def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on_stack.add(v)
    for w in g.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        out.append(sorted(comp))

  for v in sorted(g):
    if v not in index:
      visit(v)
  return out


def upward_imports(modules) -> list[str]:
  bad = []
  for name, path in modules.items():
    for target, _, line in imports_of(name, path, modules):
      if target in modules and layer(target) > layer(name):
        bad.append(f"{_rel(path)}:{line}: {name} (layer {layer(name)}) imports "
                   f"{target} (layer {layer(target)})")
  return bad


def _rel(path: pathlib.Path) -> str:
  try:
    return str(path.relative_to(ROOT))
  except ValueError:
    return str(path)


def _private(name: str) -> bool:
  return name.startswith("_") and not name.startswith("__")


def private_reaches(files: dict[str, pathlib.Path], modules) -> list[str]:
  """`from other import _x`, and `other._x` where `other` names an imported package module."""
  bad = []
  for name, path in files.items():
    tree = ast.parse(path.read_text(), filename=str(path))
    module_aliases = {}
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        for alias in node.names:
          if alias.name.startswith("taem_jax.") and alias.asname:
            module_aliases[alias.asname] = alias.name
      elif isinstance(node, ast.ImportFrom):
        base = _resolve(name, path.name == "__init__.py", node) if name in modules else (
            node.module or "")
        if base.split(".")[0] not in ("taem_jax", "porting"):
          continue
        for alias in node.names:
          sub = f"{base}.{alias.name}"
          if any(_private(p) for p in sub.split(".")[1:]) and base != name:
            bad.append(f"{_rel(path)}:{node.lineno}: imports {sub}")
          if sub in modules:
            module_aliases[alias.asname or alias.name] = sub
    for node in ast.walk(tree):
      if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
          and node.value.id in module_aliases and _private(node.attr)):
        bad.append(f"{_rel(path)}:{node.lineno}: uses "
                   f"{module_aliases[node.value.id]}.{node.attr}")
  return bad


def test_every_module_has_a_layer():
  missing = [m for m in module_files() if not any(
      m == k or m.startswith(k + ".") for k in LAYERS if k != "taem_jax") and m != "taem_jax"]
  assert not missing, f"give these modules a layer in LAYERS: {missing}"


def test_imports_run_downward():
  bad = upward_imports(module_files())
  assert not bad, "imports from a higher layer:\n" + "\n".join(bad)


def test_no_import_cycles():
  found = cycles(graph(module_files()))
  assert not found, "import cycles between modules: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_private_names_across_modules():
  modules = module_files()
  files = dict(modules)
  for folder in ("porting", "experiments"):
    for path in sorted((ROOT / folder).rglob("*.py")):
      files[str(path.relative_to(ROOT))] = path
  bad = private_reaches(files, modules)
  assert not bad, "private names used across modules:\n" + "\n".join(bad)


# --- the checker itself -------------------------------------------------------------------------


def _tree(tmp_path, files: dict[str, str]) -> pathlib.Path:
  pkg = tmp_path / "taem_jax"
  for rel, text in files.items():
    p = pkg / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
  return pkg


def test_checker_finds_a_cycle_hidden_in_a_function(tmp_path):
  pkg = _tree(tmp_path, {
      "__init__.py": "",
      "synthesis.py": "def edit():\n  from taem_jax import editing\n",
      "editing.py": "def run():\n  from taem_jax import synthesis\n",
  })
  assert cycles(graph(module_files(pkg))) == [["taem_jax.editing", "taem_jax.synthesis"]]


def test_checker_finds_an_upward_import(tmp_path):
  pkg = _tree(tmp_path, {
      "__init__.py": "", "models/__init__.py": "", "train/__init__.py": "",
      "train/checkpoint.py": "X = 1\n",
      "models/taem_checkpoint.py": "def f():\n  from taem_jax.train import checkpoint\n",
  })
  bad = upward_imports(module_files(pkg))
  assert len(bad) == 1 and "taem_jax.models.taem_checkpoint (layer 3) imports" in bad[0]


def test_checker_finds_private_reaches(tmp_path):
  pkg = _tree(tmp_path, {
      "__init__.py": "", "video.py": "def _check_output(p):\n  return p\n",
      "synthesis.py": ("from taem_jax import video\nfrom taem_jax.video import _check_output\n"
                       "y = video._check_output(1)\n"),
  })
  modules = module_files(pkg)
  bad = private_reaches(modules, modules)
  assert len(bad) == 2, bad


@pytest.mark.parametrize("module,expected", [("taem_jax.face.detect", 2), ("taem_jax.cli.app", 7),
                                             ("taem_jax.rates", 0)])
def test_layer_lookup(module, expected):
  assert layer(module) == expected
