"""The README's first command: a photographed face saying your sentence, through TAEM + Wav2Lip,
plus the paper's Table 1 on generated data. Offline, on the CPU.

    .venv/bin/python experiments/demo.py [--text "Place blue at F two now."] [--out out/demo]
    .venv/bin/python experiments/demo.py --train      # retrain the three models from scratch
    .venv/bin/python experiments/demo.py --train --preset v2 --out out/demo_v2   # the v2 retrain

Steps (each one is the project's own command line, so the demo is what a user would run):
  1. generate the sample corpus (GRID grammar, espeak-ng voices, real photos animated by a
     phoneme-driven mouth; NOT the GRID corpus), `experiments/make_sample_corpus.py`, and build
     it with the GRID builder;
  2. models, trained by this project on that corpus at demo scale: the lip-sync expert and the
     Wav2Lip generator (width 1/8, min_channels 16; `wav2lip_expert.py:tiny`,
     `wav2lip_gen.py:tiny`) and TAEM against the frozen generator (`sample.py:demo`), each
     exported by `experiments/train.py --export`. By default the copies committed in
     checkpoints/demo/ are used (made by exactly `demo.py --train`, see its README); --train
     retrains them (600 / 1000 / 600 steps by default: about an hour here);
  3. `experiments/synthesize.py`: <out>/say.mp4, the face of speaker s1 saying --text, with an
     espeak-ng voice timed to TAEM's predicted durations (--speech);
  4. `experiments/evaluate.py`: Table 1 (SSIM, PSNR, LMD, LSE-D, LSE-C) for audio-driven Wav2Lip,
     the espeak-ng and Flite TTS cascades and TAEM + Wav2Lip (ground-truth and predicted
     durations) on held-out clips, LSE by the trained expert.

Presets (--preset; --speakers, --utterances and --steps override a preset's numbers):
  v1 (default): what made the committed models: 4 speakers x 12 utterances from the packaged
     photos (held-out utterances of the same speakers), `wav2lip_expert.py:tiny`,
     `wav2lip_gen.py:tiny`, `sample.py:demo`, 600 / 1000 / 600 steps.
  v2: the retrain for unseen faces: one speaker per real face found (16 faces of 15 people with
     the photos `setup.sh --test` fetches), 24 utterances each, 3 identities held out (the table and the
     generator's validation are on people it never saw), `wav2lip_expert.py:v2`,
     `wav2lip_gen.py:v2` (with the visual-quality GAN), `sample.py:demo_v2`; then
     `experiments/mouth_detail.py` on every real face video and photo (the photos are the
     corpus's faces, so only the carphone clips are unseen). Run 2026-12-02 (~70 min here)
     and, with w_gan 0.01 and mouth_weight 3, 2026-12-03 (the generator at 2.6 s per step,
     ~65 min alone): neither beat v1, so v1's models stay committed; see
     experiments/configs/wav2lip_gen.py (:v2) for the numbers.

Cost here (2-core CPU, fresh machine, committed models): about 5-10 minutes.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

import cv2

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from taem_jax import paths, video  # noqa: E402
from taem_jax.cli import add_backbone_argument  # noqa: E402
from taem_jax.errors import UserError, cli_main  # noqa: E402
from taem_jax.models.targets import backbone_class  # noqa: E402

COMMITTED = paths.DEMO_DIR
MODELS = paths.DEMO_MODELS
CONFIGS = ROOT / "experiments" / "configs"

# What --train makes, per preset (see the module docstring).
PRESETS = {
    "v1": {"corpus": {"speakers": 4, "utterances": 12}, "steps": (600, 1000, 600),
           "configs": ("wav2lip_expert.py:tiny", "wav2lip_gen.py:tiny", "sample.py:demo"),
           "real_media": False},
    "v2": {"corpus": {"speakers": 16, "utterances": 24, "photos": "all",
                      "held_out_identities": 3},
           "steps": (3000, 1500, 700),
           "configs": ("wav2lip_expert.py:v2", "wav2lip_gen.py:v2", "sample.py:demo_v2"),
           "real_media": True},
}


def _run(step, argv, times):
  print(f"[demo] {step}: {' '.join(str(a) for a in argv[1:])}", flush=True)
  t0 = time.time()
  r = subprocess.run([str(a) for a in argv], cwd=ROOT, check=False, stdin=subprocess.DEVNULL)
  if r.returncode != 0:
    raise UserError(f"demo step '{step}' failed (exit {r.returncode}); see the lines above")
  times[step] = time.time() - t0


def _have_models(d: pathlib.Path) -> bool:
  return all((d / m).is_dir() for m in MODELS)


def train_models(corpus: pathlib.Path, runs: pathlib.Path, dst: pathlib.Path, steps, times,
                 configs=PRESETS["v1"]["configs"]):
  """Trains expert -> generator -> TAEM on `corpus`; writes dst/{expert,wav2lip,taem}.

  Args:
    steps: (expert, generator, TAEM) training steps.
    configs: their `<file in experiments/configs>:<variant>`.
  """
  py = sys.executable
  common = ["--dataset=sample", f"--manual_dir={corpus}", "--notensorboard"]
  cfg = [f"--config={CONFIGS / c}" for c in configs]
  _run("train lip-sync expert", [py, "experiments/train.py", *common, cfg[0],
                                 f"--steps={steps[0]}", f"--workdir={runs / 'expert'}",
                                 f"--export={dst / 'expert'}"],
       times)
  _run("train Wav2Lip generator", [py, "experiments/train.py", *common,
                                   cfg[1],
                                   f"--config.expert.dir={dst / 'expert'}", f"--steps={steps[1]}",
                                   f"--workdir={runs / 'wav2lip'}", f"--export={dst / 'wav2lip'}"],
       times)
  _run("train TAEM", [py, "experiments/train.py", *common,
                      cfg[2], f"--init_from={dst / 'wav2lip'}",
                      f"--steps={steps[2]}", f"--workdir={runs / 'taem'}",
                      f"--export={dst / 'taem'}"], times)


def _curve(workdir: pathlib.Path, kind: str, key: str):
  p = workdir / "metrics.jsonl"
  if not p.is_file():
    return None
  rows = [json.loads(l) for l in p.read_text().splitlines() if l.strip()]
  rows = [r for r in rows if r.get("kind") == kind and key in r]
  return (rows[0], rows[-1]) if rows else None


@cli_main
def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n\n", 1)[1])
  p.add_argument("--text", default="Place blue at F two now.",
                 help="the sentence the face says in say.mp4")
  p.add_argument("--out", default="out/demo", help="output folder (created; reused)")
  p.add_argument("--train", action="store_true",
                 help="train the expert, generator and TAEM here instead of using the "
                      "committed checkpoints/demo models (about an hour here)")
  p.add_argument("--preset", choices=sorted(PRESETS), default="v1",
                 help="corpus, configs and steps (v1: the committed models; v2: the retrain "
                      "for unseen faces, 1-2 hours here)")
  p.add_argument("--steps", type=int, nargs=3, default=None,
                 metavar=("EXPERT", "GENERATOR", "TAEM"),
                 help="training steps with --train (default: the preset's)")
  p.add_argument("--speakers", type=int, default=None,
                 help="sample-corpus speakers (default: the preset's)")
  p.add_argument("--utterances", type=int, default=None,
                 help="sample-corpus utterances each (default: the preset's)")
  p.add_argument("--eval_clips", type=int, default=6, help="held-out clips in the table")
  add_backbone_argument(p)
  args = p.parse_args(argv)
  if backbone_class(args.backbone).demo is None:
    raise UserError(f"the demo trains and ships Wav2Lip models only, not {args.backbone}: "
                    "drop --backbone")
  if not args.text.strip():
    raise UserError("empty --text: give a sentence, e.g. --text \"Bin red at A one again.\"")
  if args.eval_clips < 1:
    raise UserError("--eval_clips must be >= 1")

  out = pathlib.Path(args.out)
  out = out if out.is_absolute() else (ROOT / out)
  out = out.resolve()
  out.mkdir(parents=True, exist_ok=True)
  py = sys.executable
  preset = PRESETS[args.preset]
  corpus_args = dict(preset["corpus"])
  for key in ("speakers", "utterances"):
    if getattr(args, key) is not None:
      corpus_args[key] = getattr(args, key)
  steps = tuple(args.steps) if args.steps is not None else preset["steps"]
  corpus, times = out / "sample_corpus", {}
  t_all = time.time()
  _run("generate sample corpus", [py, "experiments/make_sample_corpus.py", "--out", corpus,
                                  *[a for k, v in corpus_args.items() for a in (f"--{k}", v)]],
       times)

  models = COMMITTED
  if args.train or not _have_models(COMMITTED):
    if not args.train:
      print(f"[demo] no committed models in {COMMITTED}: training them (--train)", flush=True)
    models = out / "models"
    train_models(corpus, out / "runs", models, steps, times, preset["configs"])
  else:
    print(f"[demo] using the committed models in {COMMITTED} (made by `demo.py --train`; "
          "pass --train to retrain)", flush=True)

  # A photographed face the models know: speaker s1's photo (first frame of one of its clips).
  first = sorted((corpus / "s1").glob("*.mp4"))[0]
  face = out / "face.png"
  cv2.imwrite(str(face), next(iter(video.iter_frames(first, chunk=1, max_frames=1)))[0])

  say = out / "say.mp4"
  _run("synthesize from text", [py, "experiments/synthesize.py", "--face", face, "--text",
                                args.text, "--speech", "--wav2lip", models / "wav2lip",
                                "--taem", models / "taem", "--out", say, "--no_progress",
                                "--backbone", args.backbone], times)
  _run("evaluate (Table 1)", [py, "experiments/evaluate.py", "--dataset=sample",
                              f"--manual_dir={corpus}", f"--wav2lip={models / 'wav2lip'}",
                              f"--taem={models / 'taem'}", f"--sync={models / 'expert'}",
                              f"--limit={args.eval_clips}", f"--out={out / 'eval'}",
                              f"--backbone={args.backbone}"], times)
  if args.train and preset["real_media"]:
    # Real faces the models never saw: how much of their own mouth detail survives.
    test_clip = (corpus / "splits" / "test.txt").read_text().split()[0]
    _run("mouth detail on real faces", [py, "experiments/mouth_detail.py", "--audio",
                                        corpus / "audio_16k" / f"{test_clip}.wav",
                                        "--wav2lip", models / "wav2lip",
                                        "--out", out / "real_faces"], times)
    _run("mouth strip of say.mp4", [py, "experiments/mouth_detail.py", "--strip", say,
                                    "--out", out / "real_faces"], times)

  print()
  print("| step | seconds |")
  print("|---|---:|")
  for k, v in times.items():
    print(f"| {k} | {v:.0f} |")
  print(f"| total | {time.time() - t_all:.0f} |")
  if args.train:
    for run, key in (("expert", "sync_loss"), ("wav2lip", "l1"), ("taem", "mse")):
      c = _curve(out / "runs" / run, "eval", key)
      if c:
        print(f"{run}: eval {key} {c[0][key]:.4f} (step {c[0]['step']}) -> {c[1][key]:.4f} "
              f"(step {c[1]['step']})")
  print()
  print(f"wrote {say}: the face of {face} saying {args.text!r} (TAEM + Wav2Lip from text, "
        "espeak-ng voice timed to TAEM's durations)")
  print(f"table: {out / 'eval' / 'table.md'} (generated corpus, NOT GRID; models in {models})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
