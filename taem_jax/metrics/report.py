"""Input checks for a generated / ground-truth pair, and the Table 1 / Table 2 builder.

`check_pair` refuses pairs that would give a silently wrong number (different frame counts,
frame rates or sizes). `Table` renders rows = methods and columns = SSIM / PSNR / LMD / LSE-D /
LSE-C as Markdown and JSON, with a header note (say there which SyncNet produced LSE-D/LSE-C).
`PAPER_TABLE1` / `PAPER_TABLE2` hold the paper's numbers for side-by-side rows.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping

import numpy as np

from taem_jax.errors import UserError

# (key, header, higher is better)
COLUMNS = (("ssim", "SSIM", True), ("psnr", "PSNR", True), ("lmd", "LMD", False),
           ("lse_d", "LSE-D", False), ("lse_c", "LSE-C", True))
KEYS = tuple(c[0] for c in COLUMNS)

# TAEM paper, Table 1: dataset -> (input, method) -> (SSIM, PSNR, LMD, LSE-D, LSE-C).
PAPER_TABLE1 = {
    "grid": {
        ("audio", "Wav2Lip"): (0.920, 33.748, 0.872, 7.009, 6.324),
        ("audio", "PC-AVS"): (0.775, 30.027, 1.335, 6.944, 6.577),
        ("text", "Wav2Lip w/ TTS"): (0.913, 33.537, 1.080, 8.088, 5.244),
        ("text", "PC-AVS w/ TTS"): (0.768, 30.008, 1.577, 8.750, 4.992),
        ("text", "ParaLip (face version)"): (0.919, 33.343, 0.881, 7.305, 5.952),
        ("text", "TAEM + Wav2Lip"): (0.920, 33.734, 0.885, 7.014, 6.306),
    },
    "tcd_timit": {
        ("audio", "Wav2Lip"): (0.859, 32.506, 0.875, 6.855, 5.564),
        ("audio", "PC-AVS"): (0.715, 30.182, 1.381, 6.330, 6.486),
        ("text", "Wav2Lip w/ TTS"): (0.845, 32.216, 1.223, 8.859, 4.546),
        ("text", "PC-AVS w/ TTS"): (0.701, 30.099, 1.797, 9.029, 4.647),
        ("text", "ParaLip (face version)"): (0.859, 32.477, 0.906, 7.082, 5.727),
        ("text", "TAEM + Wav2Lip"): (0.859, 32.485, 0.909, 6.985, 5.886),
    },
    "lrs2": {
        ("audio", "Wav2Lip"): (0.868, 32.044, 1.020, 5.014, 9.556),
        ("audio", "PC-AVS"): (0.688, 29.736, 1.590, 6.560, 7.770),
        ("text", "Wav2Lip w/ TTS"): (0.863, 31.986, 1.122, 7.026, 7.430),
        ("text", "PC-AVS w/ TTS"): (0.650, 29.554, 1.532, 8.238, 6.016),
        ("text", "ParaLip (face version)"): (0.865, 32.046, 1.070, 6.828, 7.378),
        ("text", "TAEM + Wav2Lip"): (0.867, 32.011, 1.055, 5.826, 8.763),
    },
}

# TAEM paper, Table 2 (LRS2, loss ablation): loss -> (SSIM, PSNR, LMD, LSE-D, LSE-C).
PAPER_TABLE2 = {
    "Contrastive": (0.801, 31.077, 1.204, 7.068, 7.648),
    "MSE": (0.867, 32.011, 1.055, 5.826, 8.763),
    "MSE+Contrastive": (0.866, 32.005, 1.059, 5.978, 8.805),
    "MSE+Task": (0.866, 32.018, 1.050, 5.841, 8.718),
}


def _field(meta, name: str):
  if isinstance(meta, Mapping):
    return meta.get(name)
  return getattr(meta, name, None)


def _label(meta, default: str) -> str:
  return str(_field(meta, "path") or default)


def check_pair(gen_meta, gt_meta, fps_tolerance: float = 1e-2) -> None:
  """Refuses a generated / ground-truth pair whose frames do not correspond one to one.

  Args:
    gen_meta, gt_meta: `taem_jax.video.VideoInfo` (from `video.probe`) or any object / mapping
      with `n_frames`, `fps`, `width`, `height` (and optionally `path` for the message).
    fps_tolerance: allowed frame-rate difference.

  Raises:
    UserError: frame counts, frame rates or resolutions differ (one line saying which).
  """
  gen_name, gt_name = _label(gen_meta, "generated video"), _label(gt_meta, "ground truth")
  g_n, t_n = _field(gen_meta, "n_frames"), _field(gt_meta, "n_frames")
  if g_n != t_n:
    raise UserError(f"{gen_name} has {g_n} frames but {gt_name} has {t_n}: metrics compare "
                    "frame t with frame t, so generate exactly one frame per ground-truth frame "
                    "(or trim both to the same length explicitly)")
  g_fps, t_fps = _field(gen_meta, "fps"), _field(gt_meta, "fps")
  if (g_fps is None) != (t_fps is None) or (
      g_fps is not None and abs(float(g_fps) - float(t_fps)) > fps_tolerance):
    raise UserError(f"{gen_name} runs at {g_fps} fps but {gt_name} at {t_fps} fps: write the "
                    "generated video at the ground truth's frame rate")
  g_size = (_field(gen_meta, "width"), _field(gen_meta, "height"))
  t_size = (_field(gt_meta, "width"), _field(gt_meta, "height"))
  if g_size != t_size:
    raise UserError(f"{gen_name} is {g_size[0]}x{g_size[1]} but {gt_name} is "
                    f"{t_size[0]}x{t_size[1]}: paste generated faces back into frames of the "
                    "ground truth's size before evaluating")


def check_frames(gen_frames, gt_frames) -> None:
  """`check_pair` for frame arrays already in memory. Shapes: both (T, H, W, C)."""
  g, t = np.shape(gen_frames), np.shape(gt_frames)
  if g[:1] != t[:1]:
    raise UserError(f"generated video has {g[0]} frames but the ground truth has {t[0]}: "
                    "generate exactly one frame per ground-truth frame")
  if g[1:] != t[1:]:
    raise UserError(f"generated frames are {g[1:]} but ground-truth frames are {t[1:]}")


def mean_over_clips(clips: Iterable[Mapping[str, float | None]]) -> dict[str, float | None]:
  """Mean of each metric over clips (each clip weighs the same; None = not measured).

  Returns a dict with every key of `KEYS` (None where no clip has it) and `num_clips`.
  """
  clips = list(clips)
  out: dict[str, float | None] = {}
  for key in KEYS:
    vals = [float(c[key]) for c in clips if c.get(key) is not None]
    out[key] = float(np.mean(vals)) if vals else None
  out["num_clips"] = len(clips)
  return out


@dataclasses.dataclass
class Row:
  method: str
  values: dict[str, float | None]
  input: str = ""  # "audio" or "text" (the paper's first column), or empty
  note: str = ""
  tts: str = ""  # the speech synthesiser a cascade row used, or empty
  durations: str = ""  # where a text row's phoneme durations came from ("GT", "predicted")


def _json_number(v):
  if v is None or (isinstance(v, float) and math.isnan(v)):
    return None
  if isinstance(v, float) and math.isinf(v):
    return "inf" if v > 0 else "-inf"
  return float(v)


class Table:
  """Rows = methods; columns = SSIM / PSNR / LMD / LSE-D / LSE-C.

  Example:
    t = Table("GRID (sample corpus)", note="LSE-D/LSE-C: expert:lipsync_expert, not syncnet_v2")
    t.add_row("TAEM + Wav2Lip", input="text", ssim=0.91, psnr=33.1, lmd=0.9)
    t.add_paper_rows("grid")
    print(t.to_markdown())
  """

  def __init__(self, title: str = "", note: str = "", decimals: int = 3):
    self.title = title
    self.note = note
    self.decimals = int(decimals)
    self.rows: list[Row] = []

  def add_row(self, method: str, *, input: str = "",  # pylint: disable=redefined-builtin
              note: str = "", tts: str = "", durations: str = "",
              **values: float | None) -> Row:
    """Adds a method's metrics (keywords from `KEYS`; missing ones render as '-')."""
    unknown = set(values) - set(KEYS)
    if unknown:
      raise ValueError(f"unknown metric(s) {sorted(unknown)}; expected some of {KEYS}")
    row = Row(method, {k: (None if values.get(k) is None else float(values[k])) for k in KEYS},
              input, note, tts, durations)
    self.rows.append(row)
    return row

  def add_paper_rows(self, dataset: str, suffix: str = " (paper)") -> None:
    """Appends the paper's Table 1 rows for `dataset` ("grid", "tcd_timit" or "lrs2")."""
    if dataset not in PAPER_TABLE1:
      raise UserError(f"no paper numbers for dataset {dataset!r}; known: {sorted(PAPER_TABLE1)}")
    for (inp, method), vals in PAPER_TABLE1[dataset].items():
      # The paper gave every text method ground-truth durations; its cascades used FastSpeech 2.
      self.add_row(method + suffix, input=inp, tts="FastSpeech 2" if "TTS" in method else "",
                   durations="GT" if inp == "text" else "", **dict(zip(KEYS, vals)))

  def add_paper_table2_rows(self, suffix: str = " (paper, LRS2)") -> None:
    """Appends the paper's Table 2 rows (TAEM loss ablations, all on LRS2)."""
    for objective, vals in PAPER_TABLE2.items():
      self.add_row(f"TAEM + Wav2Lip, {objective}" + suffix, input="text",
                   **dict(zip(KEYS, vals)))

  def _cell(self, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
      return "-"
    if math.isinf(v):
      return "inf" if v > 0 else "-inf"
    return f"{v:.{self.decimals}f}"

  def to_markdown(self) -> str:
    with_input = any(r.input for r in self.rows)
    with_note = any(r.note for r in self.rows)
    with_tts = any(r.tts for r in self.rows)
    with_dur = any(r.durations for r in self.rows)
    head = (["input"] if with_input else []) + ["method"]
    head += (["TTS"] if with_tts else []) + (["durations"] if with_dur else [])
    head += [f"{h} {'↑' if up else '↓'}" for _, h, up in COLUMNS]
    head += ["note"] if with_note else []
    align = ["---"] * (len(head) - len(COLUMNS) - with_note) + ["---:"] * len(COLUMNS)
    align += ["---"] if with_note else []
    lines = []
    if self.title:
      lines += [f"**{self.title}**", ""]
    if self.note:
      lines += [self.note, ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for r in self.rows:
      cells = ([r.input] if with_input else []) + [r.method]
      cells += ([r.tts or "-"] if with_tts else []) + ([r.durations or "-"] if with_dur else [])
      cells += [self._cell(r.values[k]) for k in KEYS]
      cells += [r.note] if with_note else []
      lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"

  def to_dict(self) -> dict:
    return {
        "title": self.title,
        "note": self.note,
        "columns": [{"key": k, "name": h, "higher_is_better": up} for k, h, up in COLUMNS],
        "rows": [{"method": r.method, "input": r.input, "note": r.note, "tts": r.tts,
                  "durations": r.durations,
                  **{k: _json_number(r.values[k]) for k in KEYS}} for r in self.rows],
    }

  def to_json(self, indent: int = 2) -> str:
    return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

  @classmethod
  def from_dict(cls, d: Mapping) -> "Table":
    t = cls(d.get("title", ""), d.get("note", ""))
    for r in d.get("rows", []):
      vals = {k: (float(r[k]) if r.get(k) is not None else None) for k in KEYS}
      t.add_row(r["method"], input=r.get("input", ""), note=r.get("note", ""),
                tts=r.get("tts", ""), durations=r.get("durations", ""), **vals)
    return t
