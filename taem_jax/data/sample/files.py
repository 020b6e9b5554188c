"""Writers for the corpus's text files: GRID `.align` and Praat TextGrid (as MFA writes it).

The readers live in `taem_jax.text.alignments`; these writers produce exactly what those readers
(and the real corpora / MFA) expect, so one reader serves generated and real data. Every file is
written to a temporary name and renamed, so a killed run never leaves half a file.
"""
import os
import pathlib
import uuid

GRID_TIME_UNIT = 25000  # .align times are in 1/25000 s


def atomic_write_bytes(path, data: bytes) -> None:
  """Writes `data` to `path` through a temporary file, so a reader never sees half of it."""
  p = pathlib.Path(path)
  tmp = p.parent / f".{p.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.part"
  tmp.write_bytes(data)
  os.replace(tmp, p)


def atomic_write_text(path, text: str) -> None:
  atomic_write_bytes(path, text.encode("utf-8"))


def grid_align_text(words) -> str:
  """`start end word` lines in 1/25000 s from (word, start_s, end_s) triples."""
  lines = []
  for w, s, e in words:
    a, b = int(round(s * GRID_TIME_UNIT)), int(round(e * GRID_TIME_UNIT))
    lines.append(f"{a} {b} {w}")
  return "\n".join(lines) + "\n"


def _q(s: str) -> str:
  return '"' + s.replace('"', '""') + '"'


def textgrid_text(tiers, xmax: float) -> str:
  """A long-format ("ooTextFile") TextGrid with interval tiers.

  Args:
    tiers: list of (tier name, [(label, start_s, end_s), ...]); intervals must tile [0, xmax]
      (silences get an empty label, as MFA writes them).
    xmax: the clip duration, seconds.
  """
  out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "",
         "xmin = 0", f"xmax = {xmax:.6f}", "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
  for t, (name, items) in enumerate(tiers, 1):
    out += [f"    item [{t}]:", '        class = "IntervalTier"', f"        name = {_q(name)}",
            "        xmin = 0", f"        xmax = {xmax:.6f}",
            f"        intervals: size = {len(items)}"]
    for k, (label, s, e) in enumerate(items, 1):
      out += [f"        intervals [{k}]:", f"            xmin = {s:.6f}",
              f"            xmax = {e:.6f}", f"            text = {_q(label)}"]
  return "\n".join(out) + "\n"
