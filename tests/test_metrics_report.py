"""Pair refusals (frames, fps, size), per-clip means, and Table rendering (Markdown, JSON)."""
import json

import numpy as np
import pytest

from taem_jax import metrics
from taem_jax.errors import UserError
from taem_jax.video import VideoInfo


def _info(path, n=75, fps=25.0, w=360, h=288):
  return VideoInfo(path, fps, n, w, h, True, "h264", "aac", n / fps)


def test_check_pair_accepts_matching_videos():
  metrics.check_pair(_info("gen.mp4"), _info("gt.mp4"))
  metrics.check_pair({"n_frames": 10, "fps": 29.97, "width": 8, "height": 8},
                     {"n_frames": 10, "fps": 29.97, "width": 8, "height": 8})


@pytest.mark.parametrize("gen, match", [
    (_info("gen.mp4", n=74), "gen.mp4 has 74 frames but gt.mp4 has 75"),
    (_info("gen.mp4", fps=30.0), "30.0 fps but gt.mp4 at 25.0 fps"),
    (_info("gen.mp4", w=96, h=96), "96x96 but gt.mp4 is 360x288"),
])
def test_check_pair_refuses_mismatches(gen, match):
  with pytest.raises(UserError, match=match):
    metrics.check_pair(gen, _info("gt.mp4"))


def test_check_frames():
  a = np.zeros((5, 8, 8, 3), np.uint8)
  metrics.check_frames(a, a)
  with pytest.raises(UserError, match="4 frames but the ground truth has 5"):
    metrics.check_frames(a[:4], a)
  with pytest.raises(UserError, match="frames are"):
    metrics.check_frames(a[:, :4], a)


def test_mean_over_clips_skips_missing_values():
  m = metrics.mean_over_clips([{"ssim": 0.5, "psnr": 30.0, "lse_d": None},
                               {"ssim": 0.7, "psnr": 32.0, "lse_d": 7.0}])
  assert m["ssim"] == pytest.approx(0.6) and m["psnr"] == pytest.approx(31.0)
  assert m["lse_d"] == 7.0 and m["lmd"] is None and m["num_clips"] == 2


def test_markdown_table():
  t = metrics.Table("GRID (sample corpus)", note="LSE-D / LSE-C by expert:lipsync_expert")
  t.add_row("TAEM + Wav2Lip", input="text", ssim=0.91234, psnr=33.1, lmd=0.9)
  t.add_row("Wav2Lip", input="audio", ssim=0.9, psnr=float("inf"), lse_d=7.0, lse_c=6.25,
            note="GT audio")
  md = t.to_markdown()
  lines = md.strip().splitlines()
  assert lines[0] == "**GRID (sample corpus)**"
  assert "LSE-D / LSE-C by expert:lipsync_expert" in md
  header = next(ln for ln in lines if ln.startswith("| input"))
  assert [c.strip() for c in header.strip("|").split("|")] == [
      "input", "method", "SSIM ↑", "PSNR ↑", "LMD ↓", "LSE-D ↓", "LSE-C ↑", "note"]
  rows = [ln for ln in lines if ln.startswith("| text") or ln.startswith("| audio")]
  assert [c.strip() for c in rows[0].strip("|").split("|")] == [
      "text", "TAEM + Wav2Lip", "0.912", "33.100", "0.900", "-", "-", ""]
  assert [c.strip() for c in rows[1].strip("|").split("|")][3:7] == ["inf", "-", "7.000", "6.250"]


def test_json_round_trip_and_paper_rows():
  t = metrics.Table("LRS2", note="n")
  t.add_row("ours", ssim=0.8, psnr=float("inf"))
  t.add_paper_rows("lrs2")
  d = json.loads(t.to_json())
  assert d["rows"][0]["psnr"] == "inf" and d["rows"][0]["lmd"] is None
  assert [c["name"] for c in d["columns"]] == ["SSIM", "PSNR", "LMD", "LSE-D", "LSE-C"]
  assert len(d["rows"]) == 7
  paper = {r["method"]: r for r in d["rows"]}["TAEM + Wav2Lip (paper)"]
  assert (paper["input"], paper["lse_d"], paper["lse_c"]) == ("text", 5.826, 8.763)
  back = metrics.Table.from_dict(d)
  assert back.to_markdown() == t.to_markdown()
  with pytest.raises(UserError, match="no paper numbers"):
    t.add_paper_rows("voxceleb")
  with pytest.raises(ValueError, match="unknown metric"):
    t.add_row("x", fid=3.0)
