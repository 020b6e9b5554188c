"""The paper's Table 1 (SSIM, PSNR, LMD, LSE-D, LSE-C) for audio-driven Wav2Lip, the Wav2Lip +
TTS cascade and TAEM + Wav2Lip, on the test split of any corpus a builder reads.

    .venv/bin/python experiments/evaluate.py --dataset=sample --manual_dir=out/demo/sample_corpus \\
        --wav2lip=out/demo/wav2lip --taem=out/demo/taem --sync=out/demo/expert --out=out/eval
    .venv/bin/python experiments/evaluate.py --dataset=grid --manual_dir=~/data/GRID \\
        --wav2lip=ckpt/wav2lip --taem=runs/grid/taem --sync=ckpt/syncnet_v2 --paper
    # Table 2: TAEMs trained with other loss objectives (--config.loss.objective) as extra rows
    .venv/bin/python experiments/evaluate.py ... --table2=runs/taem_contrastive,runs/taem_task

Each method re-synthesises every test clip from the clip's own video (see
taem_jax/evaluation.py for exactly what each method gets), the generated videos are kept in
<out>/<method>/ (an interrupted evaluation resumes and reuses them), and the table is printed
and written to <out>/table.md and <out>/table.json, with every clip's numbers in
<out>/clips.json.

LSE-D / LSE-C use the network given by --sync: the official syncnet_v2 (convert
syncnet_v2.model with `python -m porting.convert`) gives numbers comparable with the paper; a
lip-sync expert (official lipsync_expert.pth converted, or one trained by this project) gives
numbers comparable with each other only, and the table's header says which was used.
Cost here (2-core CPU): about 5-10 s per clip and method for a 3 s clip at demo scale.
"""
import argparse
import json
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

import ml_collections  # noqa: E402
from tqdm import tqdm  # noqa: E402

from taem_jax import evaluation, metrics, xla_flags  # noqa: E402
from taem_jax.cli import add_backbone_argument  # noqa: E402
from taem_jax.data.prepared import prepared_dataset_dir  # noqa: E402
from taem_jax.errors import UserError, cli_main  # noqa: E402
from taem_jax.models import backbone_class, load_pretrained  # noqa: E402
from taem_jax.text import flite  # noqa: E402

DATASETS = ("sample", "grid", "tcd_timit", "lrs2")


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n\n", 1)[1])
  p.add_argument("--dataset", required=True, choices=DATASETS,
                 help="corpus ('sample' = the generated corpus, read by the GRID builder)")
  p.add_argument("--manual_dir", required=True, help="the corpus folder (raw videos)")
  p.add_argument("--data_dir", default=None, help="TFDS data dir with (or for) the built dataset "
                 "(default: <manual_dir>/_tfds for sample, ~/tensorflow_datasets otherwise)")
  p.add_argument("--builder_config", default="dlib", help="dataset config (dlib, arcface, ...)")
  p.add_argument("--split", default="test", help="split to evaluate")
  p.add_argument("--limit", type=int, default=None, help="evaluate the first N clips only")
  p.add_argument("--wav2lip", required=True, help="Wav2Lip checkpoint dir (converted or trained)")
  add_backbone_argument(p)
  p.add_argument("--taem", default=None, help="TAEM checkpoint dir (needed for --methods taem)")
  p.add_argument("--sync", required=True, help="syncnet_v2 or lip-sync expert checkpoint dir for "
                 "LSE-D / LSE-C")
  p.add_argument("--methods", default=",".join(evaluation.METHODS),
                 help="comma-separated: wav2lip (audio), wav2lip_tts (espeak-ng cascade), "
                 "wav2lip_flite (Flite cascade), taem_gt (TAEM, ground-truth durations: the "
                 "paper's protocol), taem (TAEM, predicted durations: what a user gets)")
  p.add_argument("--table2", default="", metavar="DIR[,DIR...]",
                 help="more TAEM checkpoint dirs, one row each, named by the loss objective each "
                 "recorded (the paper's Table 2: mse, contrastive, mse+contrastive, mse+task); "
                 "same Wav2Lip, so rows differ only in the TAEM")
  p.add_argument("--voice", default="en-us", help="espeak-ng voice of the TTS cascade")
  p.add_argument("--out", default="out/eval", help="output folder (videos, table.md/json)")
  p.add_argument("--paper", action="store_true", help="add the paper's Table 1 rows for the "
                 "dataset (grid, tcd_timit, lrs2) below the measured ones (with --table2: also "
                 "its Table 2 rows, measured on LRS2)")
  p.add_argument("--arcface", default=None, help="ArcFace ONNX, if TAEM was trained on ArcFace")
  p.add_argument("--force_pairing", action="store_true", help="evaluate --taem / --table2 "
                 "checkpoints with a --wav2lip whose audio encoder is not the one they were "
                 "trained against (refused by default: their rows would measure a broken pair)")
  p.add_argument("--no_progress", action="store_true", help="no progress bar")
  return p.parse_args(argv)


@cli_main
def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  xla_flags.prefer_eigen_convolutions()  # before JAX starts: 1.56x faster generator on CPU
  methods = [m.strip() for m in args.methods.split(",") if m.strip()]
  bad = [m for m in methods if m not in evaluation.METHODS]
  if bad or not methods:
    what = f"unknown method {bad[0]!r}" if bad else "no method given"
    raise UserError(f"--methods: {what}; choose from {', '.join(evaluation.METHODS)}")
  taem_methods = [m for m in methods if m in evaluation.TAEM_METHODS]
  if taem_methods and not args.taem:
    raise UserError(f"--methods includes {taem_methods[0]}: give --taem DIR (a TAEM "
                    "checkpoint), or drop it")
  if args.paper and args.dataset == "sample":
    raise UserError("--paper: the paper has no rows for the generated sample corpus")
  manual = pathlib.Path(args.manual_dir).expanduser()
  if not manual.is_dir():
    raise UserError(f"--manual_dir {manual} does not exist or is not a folder")
  for flag in ("wav2lip", "taem", "sync"):
    d = getattr(args, flag)
    if d and not pathlib.Path(d).expanduser().is_dir():
      raise UserError(f"--{flag} {d} is not a checkpoint folder")
  table2 = [d.strip() for d in args.table2.split(",") if d.strip()]
  for d in table2:
    if not pathlib.Path(d).expanduser().is_dir():
      raise UserError(f"--table2 {d} is not a checkpoint folder")
  out = pathlib.Path(args.out).expanduser()
  out.mkdir(parents=True, exist_ok=True)

  # Build (or find) the dataset before JAX starts its threads: building forks ffmpeg.
  cfg = ml_collections.ConfigDict({"data": {"dataset": args.dataset,
                                            "builder_config": args.builder_config}})
  dataset_dir = prepared_dataset_dir(cfg, args.data_dir, str(manual))
  builder = "grid" if args.dataset == "sample" else args.dataset
  clips = evaluation.load_clips(builder, manual, dataset_dir, args.split, args.limit)

  # One Synthesizer per TAEM (the main one, each Table 2 one), all sharing the loaded Wav2Lip.
  synth, variants = evaluation.load_synthesizers(
      args.wav2lip, args.taem if taem_methods else None, table2, arcface_path=args.arcface,
      allow_mismatched_wav2lip=args.force_pairing, backbone=args.backbone)
  sync_model = load_pretrained(args.sync)
  scorer = metrics.scorer_for(sync_model, name=pathlib.Path(args.sync).name)

  bar = None
  if not args.no_progress:
    bar = tqdm(total=len(clips) * (len(methods) + len(variants)), desc="evaluate", unit="video",
               file=sys.stderr)
  results = evaluation.evaluate(
      clips, synth, methods, out, scorer, voice=args.voice,
      progress=(lambda m, uid: (bar.set_postfix_str(f"{m} {uid}"), bar.update(1)))
      if bar else None, variants=variants)
  if bar:
    bar.close()

  label = "generated sample corpus (NOT GRID)" if args.dataset == "sample" else args.dataset
  if scorer.name == "syncnet_v2":
    note = "LSE-D / LSE-C by syncnet_v2 (comparable with the paper's)."
  else:
    note = (f"LSE-D / LSE-C by the lip-sync expert {scorer.name}, not syncnet_v2: comparable "
            "with each other, not with the paper's numbers.")
  note += (f" {len(clips)} clips of split '{args.split}'; LSE against the ground-truth audio; "
           "LMD in 96-px face-box units. Text rows: durations GT = the clip's ground-truth "
           "phoneme durations (the paper's protocol), predicted = TAEM's own, fitted to the "
           f"clip's length; TTS cascades stretch each phone to its GT duration (espeak-ng "
           f"voice {args.voice}, {flite.LABEL}).")
  if variants:
    note += " Table 2 rows (TAEM variants): GT durations."
  t = evaluation.table(results, f"Table 1 on {label}", note,
                       backbone=backbone_class(args.backbone).label)
  if args.paper:
    t.add_paper_rows(args.dataset)
    if table2:
      t.add_paper_table2_rows()
  (out / "table.md").write_text(t.to_markdown())
  (out / "table.json").write_text(t.to_json())
  (out / "clips.json").write_text(json.dumps(
      {m: r["clips"] for m, r in results.items()}, indent=1))
  print(t.to_markdown())
  for m, r in results.items():  # not a paper column: the mouth's sharpness vs the truth's
    vals = [c["mouth_detail"] for c in r["clips"].values() if c.get("mouth_detail") is not None]
    if vals:
      print(f"mouth detail (Laplacian variance, generated / truth), {m}: {sum(vals) / len(vals):.3f}")
  print(f"wrote {out / 'table.md'}, {out / 'table.json'}, {out / 'clips.json'}; videos in "
        f"{out}{os.sep}<method>/")
  return 0


if __name__ == "__main__":
  sys.exit(main())
