"""taem-app: the project's web app (Gradio): text or audio -> talking face, and word editing.

  taem-app                                   # the demo models, http://127.0.0.1:7860
  taem-app --wav2lip ckpt/wav2lip --taem ckpt/taem --port 8080 --concurrency 2

(also `python experiments/app.py ...`). Tabs:

  Say text        a face (uploaded image or video, or a bundled sample photo) says a text;
                  optionally with an espeak-ng voice timed to the lips.
  Lip-sync audio  a face lip-synced to an uploaded or recorded audio file.
  Edit words      a talking video, its transcript, the words to replace and the new words ->
                  the video with only that span re-synthesised (its time range is shown).

The models are loaded once at start and stay warm: the embedded demo models, plus the
checkpoint directories given with --wav2lip / --taem (a model menu picks between them; their
provenance is shown from the checkpoints' records). Requests queue: `--concurrency` run at
once (default 1). A bad input shows the one line the CLI prints ("error: ..."), never a
traceback. Each request writes into its own folder under a private temporary root, deleted
`--keep_minutes` after it was made (and the whole root when the server stops). Uploads are
limited to `--max_upload_mb`. The server listens on 127.0.0.1 unless `--host` says otherwise,
and makes no network access of its own (no analytics, no share link, no web fonts).
"""
import argparse
import dataclasses
import logging
import os
import pathlib
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import warnings

import cv2

from taem_jax import paths, video, xla_flags
from taem_jax.cli import add_backbone_argument
from taem_jax.data.sample import portraits
from taem_jax.errors import UserError, cli_main
from taem_jax.models import pretrained, targets
from taem_jax.synthesis import Options, Synthesizer
from taem_jax.text import espeak

LOG = logging.getLogger("taem-app")

# What the page says while a stage of the synthesizer's progress callback runs, and its unit.
STAGES = {
    "align": ("aligning the transcript to the audio", "steps"),
    "detect": ("face detection", "frames"),
    "text": ("text -> latents (TAEM)", "chunks"),
    "render": ("generating and encoding frames", "frames"),
}
SAMPLE_NAMES = {  # installed photo -> the name the page shows
    "skimage:astronaut.png": "astronaut.png",
    "insightface:t1.jpg": "group.jpg",
    "insightface:Tom_Hanks_54745.png": "portrait.png",
}
DEFAULT_VOICE = Options().voice


# ----------------------------------------------------------------------------------------------
# Models and their provenance.


@dataclasses.dataclass
class ModelSet:
  """One Wav2Lip (+ TAEM) pair, loaded once; `voiced` holds a Synthesizer per espeak-ng voice
  that shares the loaded models (and so their compiled programs)."""
  label: str
  synth: Synthesizer
  provenance: str  # markdown
  voiced: dict = dataclasses.field(default_factory=dict)
  lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

  def with_voice(self, voice: str) -> Synthesizer:
    if voice == self.synth.options.voice:
      return self.synth
    with self.lock:
      if voice not in self.voiced:
        s = self.synth
        self.voiced[voice] = Synthesizer(
            wav2lip=s.wav2lip, taem=s.taem, taem_info=s.taem_info, backbone=s.backbone.name,
            options=dataclasses.replace(s.options, voice=voice))
      return self.voiced[voice]


def _wav2lip_record(path: pathlib.Path) -> str:
  meta = pretrained.read_sidecar(path)
  cfg = meta.get("config") or {}
  width = cfg.get("width", 1.0)
  parts = [f"family {meta.get('family')}", f"width {width:g}" + (" (official)" if width == 1
                                                                 else "")]
  if meta.get("num_params"):
    parts.append(f"{int(meta['num_params']):,} params")
  if meta.get("source_file"):
    sha = str(meta.get("source_sha256", ""))[:12]
    parts.append(f"converted from `{meta['source_file']}`" + (f" (sha256 {sha}...)" if sha
                                                               else ""))
  elif meta.get("source"):
    parts.append(f"source: {meta['source']}")
  if meta.get("train_step") is not None:
    parts.append(f"training step {meta['train_step']}")
  return ", ".join(parts)


def _taem_record(synth: Synthesizer) -> str:
  info = synth.taem_info
  cfg = synth.taem.config
  target = info.target or {}
  width = (target.get("config") or {}).get("width")
  parts = [f"hidden {cfg.hidden}", f"{cfg.latent_dim}-d latent",
           f"for {target.get('name', 'wav2lip')}" + (f" width {width:g}" if width else "")]
  spk = info.speaker_embedding or {}
  parts.append(f"{spk.get('kind')} speaker embeddings")
  training = info.training or {}
  if training:
    parts.append(f"objective {training.get('objective', '?')}, step {training.get('step', '?')}")
  else:
    parts.append("training not recorded")
  return ", ".join(parts)


def describe(label: str, wav2lip_dir, synth: Synthesizer) -> str:
  """Markdown provenance of a model set, from the checkpoints' sidecars."""
  lines = [f"**{label}**", "",
           f"- Wav2Lip `{wav2lip_dir}`: {_wav2lip_record(pathlib.Path(wav2lip_dir))}"]
  if synth.taem is not None:
    lines.append(f"- TAEM `{synth.taem_info.path}`: {_taem_record(synth)}")
  else:
    lines.append("- no TAEM: text and editing need one (start the app with --taem DIR)")
  return "\n".join(lines)


def load_models(args, options: Options) -> list[ModelSet]:
  """The demo models (when installed) and the directories given on the command line."""
  sets = []
  demo = targets.backbone_class(args.backbone).demo
  demo_w2l = paths.demo_model(demo) if demo else None
  demo_taem = paths.demo_model("taem")
  if not args.no_demo:
    if demo_w2l is not None and demo_w2l.is_dir() and demo_taem.is_dir():
      synth = Synthesizer(demo_w2l, demo_taem, options=options)
      label = "demo models (trained on the sample corpus)"
      sets.append(ModelSet(label, synth, describe(label, demo_w2l, synth)))
    elif not args.wav2lip:
      raise UserError(f"no demo models for the {args.backbone} backbone are installed (in "
                      f"{paths.DEMO_DIR}); give --wav2lip DIR [--taem DIR]")
  if args.taem and not args.wav2lip and demo_w2l is None:
    raise UserError(f"--taem needs the {args.backbone} checkpoint it was trained against: add "
                    "--wav2lip DIR")
  if args.wav2lip or args.taem:
    w2l = pathlib.Path(args.wav2lip).expanduser() if args.wav2lip else demo_w2l
    synth = Synthesizer(w2l, args.taem, options=options, arcface_path=args.arcface,
                        backbone=args.backbone)
    label = f"given: {w2l.name}" + (f" + {pathlib.Path(args.taem).name}" if args.taem else "")
    sets.append(ModelSet(label, synth, describe(label, w2l, synth)))
  if not sets:
    raise UserError("no models: drop --no_demo or give --wav2lip DIR [--taem DIR]")
  return sets


def voices() -> list[str]:
  """English espeak-ng voices (the default first); just the default when espeak-ng is
  missing (speech then fails with espeak's own one-line message)."""
  try:
    found = espeak.list_voices("en")
  except UserError:
    found = []
  return [DEFAULT_VOICE] + sorted(v for v in set(found) if v != DEFAULT_VOICE)


# ----------------------------------------------------------------------------------------------
# Per-request folders.


class Outputs:
  """Per-request output folders under `root`, each deleted `keep_s` after it was made."""

  def __init__(self, root: pathlib.Path, keep_s: float):
    self.root = root / "requests"
    self.root.mkdir(parents=True, exist_ok=True)
    self.keep_s = float(keep_s)
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._janitor, name="taem-app-cleanup", daemon=True)
    self._thread.start()

  def new(self) -> pathlib.Path:
    d = self.root / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    d.mkdir()
    return d

  def sweep(self, now: float | None = None) -> int:
    """Deletes the folders older than keep_s; returns how many."""
    now = time.time() if now is None else now
    gone = 0
    for d in self.root.iterdir():
      try:
        old = now - d.stat().st_mtime > self.keep_s
      except FileNotFoundError:
        continue
      if old:
        shutil.rmtree(d, ignore_errors=True)
        gone += 1
    return gone

  def _janitor(self) -> None:
    while not self._stop.wait(min(60.0, max(1.0, self.keep_s / 4))):
      self.sweep()

  def close(self) -> None:
    self._stop.set()


# ----------------------------------------------------------------------------------------------
# Request handlers (plain functions of plain values; build_app wires them to the page).


class Progress:
  """The synthesizer's `progress(stage, advance, total)` as calls of a gr.Progress."""

  def __init__(self, bar):
    self.bar = bar
    self.stage, self.done = None, 0

  def __call__(self, stage: str, advance: int, total: int | None) -> None:
    if stage != self.stage:
      self.stage, self.done = stage, 0
    self.done += int(advance)
    desc, unit = STAGES.get(stage, (stage, "steps"))
    self.bar((min(self.done, total) if total else self.done, total), desc=desc, unit=unit)


class Handlers:
  """What the page's buttons do. Every method returns (output path or None, status line)."""

  def __init__(self, models: list[ModelSet], outputs: Outputs, upload_root: pathlib.Path):
    self.models = {m.label: m for m in models}
    self.outputs = outputs
    # Upload paths look like <upload_root>/<hash>/<name>: messages show just <name>.
    self._upload_prefix = re.compile(re.escape(str(upload_root)) + r"/[^/\s]+/")

  def model(self, label: str) -> ModelSet:
    if label not in self.models:
      raise UserError(f"unknown model {label!r}; reload the page")
    return self.models[label]

  def _message(self, e: Exception) -> str:
    return "error: " + self._upload_prefix.sub("", str(e))

  def _run(self, name: str, job) -> tuple[str | None, str]:
    folder = self.outputs.new()
    t0 = time.perf_counter()
    try:
      status = job(folder)
    except UserError as e:
      shutil.rmtree(folder, ignore_errors=True)
      return None, self._message(e)
    except Exception as e:  # pylint: disable=broad-except  # a bug: logged, the page gets a line
      shutil.rmtree(folder, ignore_errors=True)
      LOG.exception("%s failed", name)
      return None, (f"error: internal error ({type(e).__name__}: {str(e)[:200]}); the server "
                    "log has the details")
    out, line = status
    return out, f"{line} in {time.perf_counter() - t0:.1f} s"

  @staticmethod
  def _face(face) -> str:
    if not face:
      raise UserError("no face: upload an image or a video, or pick a sample face")
    return str(face)

  def say(self, label, face, text, speech, voice, progress=None):
    def job(folder):
      synth = self.model(label).with_voice(voice or DEFAULT_VOICE)
      res = synth.synthesize(self._face(face), folder / "say.mp4", text=text or "",
                             speech=bool(speech), progress=progress)
      return res.out, res.summary(pathlib.Path(res.out).name)
    return self._run("say", job)

  def lipsync(self, label, face, audio, progress=None):
    def job(folder):
      if not audio:
        raise UserError("no audio: upload an audio file or record one")
      res = self.model(label).synth.synthesize(self._face(face), folder / "lipsync.mp4",
                                               audio=str(audio), progress=progress)
      return res.out, res.summary(pathlib.Path(res.out).name)
    return self._run("lipsync", job)

  def edit(self, label, clip, audio, transcript, old, new, speech, fade, progress=None):
    """Returns (output path or None, status line, changed span or '')."""
    span = []

    def job(folder):
      if not clip:
        raise UserError("no video: upload the talking video to edit")
      res = self.model(label).synth.edit(
          str(clip), folder / "edited.mp4", transcript=transcript or "", old=old or "",
          new=new or "", audio=str(audio) if audio else None, fade=int(3 if fade is None else fade),
          speech=bool(speech), lossless=False, progress=progress)
      s, e = res.new_span
      span.append(f"{s / res.fps:.2f} s - {e / res.fps:.2f} s (frames {s}..{e - 1} of "
                  f"{res.frames}; spoken words {res.words[0] + 1}..{res.words[1]} replaced by "
                  f"{new.strip()!r})")
      return res.out, res.summary(pathlib.Path(res.out).name)
    out, status = self._run("edit", job)
    return out, status, span[0] if span else ""


def sample_faces(root: pathlib.Path) -> list[pathlib.Path]:
  """The face photos installed packages ship (never part of the repository), copied under
  `root` so the page may serve them."""
  folder = root / "samples"
  folder.mkdir(parents=True, exist_ok=True)
  out = []
  for label, src in portraits.photo_files():
    dst = folder / SAMPLE_NAMES.get(label, src.name)
    shutil.copyfile(src, dst)
    out.append(dst)
  return out


def preview(face):
  """The picture of a face input: the image itself, or a video's first frame (RGB)."""
  if not face:
    return None
  try:
    if video.is_image(face):
      return str(face)
    first = next(iter(video.iter_frames(face, chunk=1, max_frames=1)), None)
    return None if first is None else cv2.cvtColor(first[0], cv2.COLOR_BGR2RGB)
  except UserError:
    return None  # the Generate button reports an unreadable file


# ----------------------------------------------------------------------------------------------
# The page.


def build_app(handlers: Handlers, models: list[ModelSet], samples: list[pathlib.Path],
              voice_names: list[str], args):
  """The Gradio Blocks page (not launched). Returns (blocks, launch keyword arguments)."""
  import gradio as gr  # lazy: heavy, and only the app needs it

  labels = [m.label for m in models]
  limit = max(1, int(args.concurrency))
  run = dict(concurrency_limit=limit, concurrency_id="generate")  # one queue for all tabs

  def clear(outputs):
    """A click's first step, in the browser: empty the previous result and status."""
    values = ", ".join("null" if isinstance(o, gr.Video) else "''" for o in outputs)
    return dict(fn=None, inputs=None, outputs=outputs, js=f"() => [{values}]", queue=False,
                api_visibility="private")

  def face_picker(tab: str):
    face = gr.File(label="Face: an image or a video", file_types=["image", "video"],
                   type="filepath", elem_id=f"{tab}-face")
    if samples:
      gallery = gr.Gallery(value=[str(p) for p in samples], label="...or a sample face",
                           columns=len(samples), height=150, allow_preview=False,
                           interactive=False, elem_id=f"{tab}-samples")
      def pick(evt: gr.SelectData):
        return str(samples[evt.index])
      gallery.select(pick, None, face, api_visibility="private")
    shown = gr.Image(label="Face used", interactive=False, height=200, elem_id=f"{tab}-preview")
    face.change(preview, face, shown, api_visibility="private")
    return face

  with gr.Blocks(title="taem-jax", analytics_enabled=False,
                 delete_cache=(max(60, int(args.keep_minutes * 60) // 4),
                               int(args.keep_minutes * 60))) as blocks:
    gr.Markdown("## taem-jax: text-driven talking faces\nTAEM maps text (phonemes + a speaker "
                "embedding) into a frozen Wav2Lip's audio latent space, so one generator "
                "speaks from text or from audio.")
    with gr.Row():
      model = gr.Dropdown(labels, value=labels[0], label="Models", scale=1, elem_id="model")
      record = gr.Markdown(models[0].provenance, elem_id="provenance")
    model.change(lambda lab: handlers.model(lab).provenance, model, record,
                 api_visibility="private")

    with gr.Tab("Say text", elem_id="tab-say"):
      with gr.Row():
        with gr.Column():
          face = face_picker("say")
        with gr.Column():
          text = gr.Textbox(label="Text", lines=3, placeholder="Hello there.", elem_id="say-text")
          with gr.Row():
            speech = gr.Checkbox(label="Speech (espeak-ng voice timed to the lips)",
                                 value=True, elem_id="say-speech")
            voice = gr.Dropdown(voice_names, value=voice_names[0], label="Voice",
                                elem_id="say-voice")
          go = gr.Button("Generate", variant="primary", elem_id="say-generate")
          status = gr.Textbox(label="Status", interactive=False, elem_id="say-status")
          out = gr.Video(label="Result", interactive=False, buttons=["download"],
                         height=360, elem_id="say-video")

      def say(lab, f, t, sp, v, progress=gr.Progress()):
        return handlers.say(lab, f, t, sp, v, progress=Progress(progress))
      go.click(**clear([out, status])).then(say, [model, face, text, speech, voice],
                                            [out, status], api_name="say", **run)

    with gr.Tab("Lip-sync audio", elem_id="tab-lipsync"):
      with gr.Row():
        with gr.Column():
          face2 = face_picker("lipsync")
        with gr.Column():
          audio = gr.Audio(sources=["upload", "microphone"], type="filepath", format=None,
                           label="Speech audio", elem_id="lipsync-audio")
          go2 = gr.Button("Generate", variant="primary", elem_id="lipsync-generate")
          status2 = gr.Textbox(label="Status", interactive=False, elem_id="lipsync-status")
          out2 = gr.Video(label="Result", interactive=False, buttons=["download"],
                          height=360, elem_id="lipsync-video")

      def lipsync(lab, f, a, progress=gr.Progress()):
        return handlers.lipsync(lab, f, a, progress=Progress(progress))
      go2.click(**clear([out2, status2])).then(lipsync, [model, face2, audio], [out2, status2],
                                               api_name="lipsync", **run)

    with gr.Tab("Edit words", elem_id="tab-edit"):
      with gr.Row():
        with gr.Column():
          clip = gr.File(label="Talking video (with its speech as audio track)",
                         file_types=["video"], type="filepath", elem_id="edit-video-in")
          clip_audio = gr.Audio(sources=["upload"], type="filepath", format=None,
                                label="Its speech, if the video has no audio track (optional)",
                                elem_id="edit-audio")
          transcript = gr.Textbox(label="Transcript: the words spoken in the video", lines=2,
                                  elem_id="edit-transcript")
          with gr.Row():
            old = gr.Textbox(label="Words to replace", elem_id="edit-old")
            new = gr.Textbox(label="New words", elem_id="edit-new")
          with gr.Row():
            speech3 = gr.Checkbox(label="Speak the new words (espeak-ng) in the span",
                                  value=False, elem_id="edit-speech")
            fade = gr.Slider(0, 10, value=3, step=1, label="Cross-faded frames at each edge",
                             elem_id="edit-fade")
          go3 = gr.Button("Edit", variant="primary", elem_id="edit-generate")
        with gr.Column():
          status3 = gr.Textbox(label="Status", interactive=False, elem_id="edit-status")
          span = gr.Textbox(label="Changed span", interactive=False, elem_id="edit-span")
          out3 = gr.Video(label="Edited video", interactive=False, buttons=["download"],
                          height=360, elem_id="edit-video")

      def edit(lab, c, a, tr, o, n, sp, fd, progress=gr.Progress()):
        return handlers.edit(lab, c, a, tr, o, n, sp, fd, progress=Progress(progress))
      go3.click(**clear([out3, status3, span])).then(
          edit, [model, clip, clip_audio, transcript, old, new, speech3, fade],
          [out3, status3, span], api_name="edit", **run)

  blocks.queue(default_concurrency_limit=limit)
  # System fonts only: the page must not fetch web fonts (closed networks, privacy).
  theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
  launch = dict(server_name=args.host, server_port=args.port, share=False,
                max_file_size=int(args.max_upload_mb * (1 << 20)), allowed_paths=[str(args.root)],
                show_error=False, ssr_mode=False, pwa=False, mcp_server=False, theme=theme,
                footer_links=[], quiet=False)
  return blocks, launch


# ----------------------------------------------------------------------------------------------
# Command line.


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="taem-app", description=__doc__.split("\n\n")[0],
                              epilog=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--wav2lip", help="a Wav2Lip checkpoint directory (converted official or "
                 "trained) offered beside the demo models")
  p.add_argument("--taem", help="a TAEM checkpoint directory for --wav2lip (without "
                 "--wav2lip: paired with the demo Wav2Lip)")
  p.add_argument("--arcface", help="ArcFace ONNX file, for a TAEM trained on ArcFace embeddings")
  add_backbone_argument(p)
  p.add_argument("--no_demo", action="store_true", help="do not load the demo models")
  p.add_argument("--host", default="127.0.0.1",
                 help="address to listen on (0.0.0.0: every interface)")
  p.add_argument("--port", type=int, default=7860, help="port to listen on")
  p.add_argument("--concurrency", type=int, default=1,
                 help="generations run at once (the others wait in the queue)")
  p.add_argument("--max_upload_mb", type=float, default=200, help="largest upload accepted")
  p.add_argument("--keep_minutes", type=float, default=60,
                 help="outputs are deleted this long after they were made")
  p.add_argument("--batch_size", type=int, default=Options().batch_size,
                 help="frames per generator batch")
  return p


def _interrupt(signum, frame):
  del signum, frame
  raise KeyboardInterrupt


@cli_main
def main(argv=None) -> int:
  # ffmpeg runs through subprocess (fork + immediate exec), which is safe with JAX's threads.
  warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
  args = _parser().parse_args(argv)
  if args.concurrency < 1:
    raise UserError(f"--concurrency must be >= 1, got {args.concurrency}")
  if args.max_upload_mb <= 0 or args.keep_minutes <= 0:
    raise UserError("--max_upload_mb and --keep_minutes must be > 0")
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
  LOG.setLevel(logging.INFO)
  # Gradio stops its server on KeyboardInterrupt; SIGTERM (and a SIGINT that a background
  # launch ignores) then also stop it cleanly, so the temporary root is removed.
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, _interrupt)
  xla_flags.prefer_eigen_convolutions()  # before JAX starts: faster generator on CPU
  args.root = pathlib.Path(tempfile.mkdtemp(prefix="taem-app-"))
  # Gradio reads these when it is imported: no telemetry, its files under our root.
  os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
  os.environ["GRADIO_TEMP_DIR"] = str(args.root / "gradio")
  outputs = None
  try:
    models = load_models(args, Options(batch_size=args.batch_size))
    LOG.info("models loaded: %s; request files under %s", "; ".join(m.label for m in models),
             args.root)
    outputs = Outputs(args.root, args.keep_minutes * 60)
    handlers = Handlers(models, outputs, args.root / "gradio")
    blocks, launch = build_app(handlers, models, sample_faces(args.root), voices(), args)
    blocks.launch(**launch)
  finally:
    if outputs is not None:
      outputs.close()
    shutil.rmtree(args.root, ignore_errors=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
