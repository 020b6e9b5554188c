"""The paper's Table 1 on any corpus a builder reads: synthesise every test clip with each
method, compare with the ground-truth video, average.

    clips = load_clips("grid", manual_dir, dataset_dir, split="test", limit=20)
    synth = Synthesizer(wav2lip_dir, taem_dir)
    scorer = metrics.scorer_for(load_pretrained(expert_or_syncnet_v2_dir))
    rows = evaluate(clips, synth, ["wav2lip", "wav2lip_tts", "taem"], out_dir, scorer)

Methods (all drive the same frozen Wav2Lip, with the clip's own video as the face input, as
Wav2Lip's evaluation does):

  wav2lip        audio: the ground-truth speech.
  wav2lip_tts    text, TTS cascade: espeak-ng (formant synthesis) speaks the clip's phonemes,
                 each stretched to its ground-truth duration.
  wav2lip_flite  text, TTS cascade: Flite's cmu_us_slt (statistical-parametric) voice says the
                 clip's phonemes, each stretched to its ground-truth duration.
  taem_gt        text: TAEM on the clip's phonemes with their ground-truth durations (teacher
                 durations). The paper's protocol: every text method gets ground-truth
                 durations, so frames pair one to one with the truth.
  taem           text: TAEM from the transcript with its predicted durations fitted to the
                 clip's length (TAEM's length regulator): what a user gets.
  taem[<name>]   another TAEM checkpoint (`variants`), e.g. the paper's Table 2 loss ablations,
                 with ground-truth durations as `taem_gt`.

Metrics per clip (taem_jax.metrics): SSIM and PSNR on 96x96 crops of both videos cut with the
ground truth's face boxes; LMD between the mouth landmarks of generated and ground-truth frames,
both fitted by dlib inside the ground truth's face box (in 96-px box units); LSE-D / LSE-C of
the generated video against the **ground-truth audio** (for the text methods that is the speech
the face should be saying; for the cascade it is not the audio it was driven by). Columns are
averaged over clips.

Ground truth at another frame rate (TCD-TIMIT: 29.97 fps) is converted to 25 fps exactly as the
builder converted it (`prepare.frames_at_video_fps`: the same source frame for every output frame),
so a prepared example, its ground-truth frames and the generated frames pair one to one; the
converted video (`<out_dir>/ground_truth_25fps/<uid>.mp4`) is the face input of every method.
"""
from __future__ import annotations

import dataclasses
import pathlib
import tempfile
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from taem_jax import audio, face, metrics, video
from taem_jax.data import builder_class, pipeline, prepare
from taem_jax.errors import UserError
from taem_jax.models import targets
from taem_jax.metrics.report import KEYS, Table
from taem_jax.rates import SAMPLES_PER_FRAME, VIDEO_FPS
from taem_jax.synthesis import Options, Synthesizer
from taem_jax.synthesis.text_path import speak_phonemes
from taem_jax.text import PhonemeVocab, flite

GT, PREDICTED = "GT", "predicted"  # where a text method's durations come from
ESPEAK_LABEL = "espeak-ng"

# name -> (input kind, row label, TTS, durations)
METHODS = {
    "wav2lip": ("audio", "Wav2Lip (GT audio)", "", ""),
    "wav2lip_tts": ("text", "Wav2Lip w/ TTS (espeak-ng)", ESPEAK_LABEL, GT),
    "wav2lip_flite": ("text", "Wav2Lip w/ TTS (Flite)", flite.LABEL, GT),
    "taem_gt": ("text", "TAEM + Wav2Lip (GT durations)", "", GT),
    "taem": ("text", "TAEM + Wav2Lip (predicted durations)", "", PREDICTED),
}
TAEM_METHODS = ("taem_gt", "taem")  # need a TAEM checkpoint
VARIANT_LABEL = "TAEM + Wav2Lip, {} (GT durations)"  # row label of a `variants` entry
# The whole generated box is pasted back, as Wav2Lip's own inference and evaluation do: with
# synthesis's default lower-face paste the upper half of every metric crop would be the ground
# truth itself and lift SSIM / PSNR.
EVAL_OPTIONS = Options(paste="box")
NO_TRANSCRIPT = "unlabelled"  # text of a clip without transcript for the GT-phoneme methods
MAX_LENGTH_SLACK = 2  # frames an audio-driven output may differ from the truth by (rounding)


@dataclasses.dataclass(frozen=True)
class EvalClip:
  """One ground-truth utterance and what the methods need of it.

  Attributes:
    uid: clip id in the corpus ("s1/bbaf2n").
    video: the ground-truth video file (any frame rate; see `at_video_fps`).
    audio: a wav file, or None when the speech is the video's audio track.
    text: transcript.
    phonemes: the built dataset's phoneme symbols (pauses included).
    durations: (L,) int ground-truth durations in 100 fps frames, sum = 4 * n_frames.
    n_frames: video frames of the prepared example.
  """
  uid: str
  video: pathlib.Path
  audio: pathlib.Path | None
  text: str
  phonemes: tuple[str, ...]
  durations: np.ndarray
  n_frames: int

  def speech(self) -> np.ndarray:
    """The ground-truth speech at 16 kHz, cut or padded to the clip's length as the builder
    does (corpus audio often ends a little before the video). Shapes: -> (n_frames * 640,)."""
    src = self.audio if self.audio is not None else self.video
    return prepare.fit_length(audio.load_audio(src), self.n_frames * SAMPLES_PER_FRAME)


def load_clips(dataset: str, manual_dir, dataset_dir, split: str = "test",
               limit: int | None = None) -> list[EvalClip]:
  """The clips of a built dataset's split, joined with their raw files in `manual_dir`.

  Args:
    dataset: builder name ('grid' also reads the generated sample corpus).
    manual_dir: the corpus folder the dataset was built from.
    dataset_dir: the built dataset (`<data_dir>/<name>/<config>/<version>`).
    split: which split to evaluate.
    limit: at most this many clips (the first ones in id order), None = all.
  """
  source = pipeline.open_split(dataset_dir, split)
  vocab = PhonemeVocab.from_json(pipeline.dataset_metadata(dataset_dir)["vocab"])
  root = pathlib.Path(manual_dir).expanduser()
  with tempfile.TemporaryDirectory() as tmp:  # the builder only lists files here
    listed = builder_class(dataset)(data_dir=tmp).list_splits(root)
  by_uid = {c.uid: c for clips in listed.values() for c in clips}
  examples = sorted((_text(source[i]["id"]), i) for i in range(len(source)))
  if limit is not None:
    examples = examples[:max(0, int(limit))]
  out = []
  for uid, i in examples:
    raw = by_uid.get(uid)
    if raw is None:
      raise UserError(f"clip {uid} of {dataset_dir} is not in {root}: evaluate with the corpus "
                      "folder the dataset was built from")
    ex = source[i]
    out.append(EvalClip(uid=uid, video=raw.video, audio=raw.audio, text=_text(ex["text"]),
                        phonemes=tuple(vocab.decode(ex["phonemes"])),
                        durations=np.asarray(ex["durations"], np.int64),
                        n_frames=int(ex["n_frames"])))
  if not out:
    raise UserError(f"split {split!r} of {dataset_dir} has no clips to evaluate")
  return out


def _text(v) -> str:
  return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def tts_speech(clip: EvalClip, voice: str = "en-us") -> np.ndarray:
  """The cascade baseline's speech: espeak-ng says the clip's phonemes, each stretched to its
  ground-truth duration. Shapes: -> (4 * n_frames * 40,) float32 at 16 kHz (= n_frames / 25 s).
  """
  wav, sr = speak_phonemes(list(clip.phonemes), clip.durations, voice)
  return audio.load_audio(wav, orig_sr=sr)


def flite_speech(clip: EvalClip) -> np.ndarray:
  """The Flite cascade's speech: cmu_us_slt says the clip's phonemes, each stretched to its
  ground-truth duration. Shapes: -> (n_frames * 640,) float32 at 16 kHz."""
  wav, sr = flite.speak_phonemes(list(clip.phonemes), clip.durations)
  return audio.load_audio(wav, orig_sr=sr)


def synthesize(synth, method: str, clip: EvalClip, out: pathlib.Path, voice: str = "en-us"):
  """Writes `out`: `clip`'s video re-synthesised by `method` (see METHODS)."""
  if method == "wav2lip":
    return synth.synthesize(clip.video, out, audio=clip.speech(), n_frames=clip.n_frames)
  if method == "wav2lip_tts":
    return synth.synthesize(clip.video, out, audio=tts_speech(clip, voice),
                            n_frames=clip.n_frames)
  if method == "wav2lip_flite":
    return synth.synthesize(clip.video, out, audio=flite_speech(clip), n_frames=clip.n_frames)
  if method == "taem_gt" or variant_name(method):
    # Only the phonemes are said; a clip labelled without a transcript (TCD-TIMIT's label file
    # alone) still needs some text for the synthesiser's input check.
    return synth.synthesize(clip.video, out, text=clip.text or NO_TRANSCRIPT,
                            n_frames=clip.n_frames,
                            phonemes=clip.phonemes, durations=clip.durations)
  if method == "taem":
    return synth.synthesize(clip.video, out, text=clip.text, n_frames=clip.n_frames)
  raise UserError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")


def variant_method(name: str) -> str:
  """The method key of a TAEM variant: 'taem[<name>]'."""
  return f"taem[{name}]"


def variant_name(method: str) -> str | None:
  """'taem[<name>]' -> '<name>'; None for the fixed METHODS."""
  if method.startswith("taem[") and method.endswith("]") and len(method) > 6:
    return method[5:-1]
  return None


def variant_names(taem_infos: Sequence[tuple[str, dict]]) -> list[str]:
  """Row names for TAEM variants: each checkpoint's recorded loss objective, else its folder.

  Args:
    taem_infos: (folder name, `TAEMInfo.training`) per checkpoint.
  Returns: one distinct name each (a repeated name gets its folder appended).
  """
  names = [str(t.get("objective") or d) for d, t in taem_infos]
  return [f"{n} ({d})" if names.count(n) > 1 else n for n, (d, _) in zip(names, taem_infos)]


def load_synthesizers(wav2lip_dir, taem_dir=None, variant_dirs: Sequence = (), *,
                      arcface_path=None, allow_mismatched_wav2lip: bool = False,
                      backbone: str = targets.DEFAULT_BACKBONE):
  """The evaluated models: one Wav2Lip, the main TAEM and the Table 2 variant TAEMs.

  Every TAEM is checked against the Wav2Lip as `Synthesizer` does (latent width, audio-encoder
  fingerprint: a TAEM trained against another Wav2Lip is refused unless
  `allow_mismatched_wav2lip`), before any clip is synthesised.

  Args:
    wav2lip_dir: the Wav2Lip checkpoint directory (loaded once, shared by all).
    taem_dir: the main TAEM checkpoint, or None (audio-driven methods only).
    variant_dirs: more TAEM checkpoint directories (`evaluate`'s `variants`).
    backbone: the `targets.BACKBONES` name `wav2lip_dir` holds; every TAEM must be for it.
  Returns:
    (the main Synthesizer, {row name (`variant_names`): Synthesizer} of the variants).
  """
  synth = Synthesizer(wav2lip_dir, taem_dir, arcface_path=arcface_path, options=EVAL_OPTIONS,
                      allow_mismatched_wav2lip=allow_mismatched_wav2lip, backbone=backbone)
  others = [Synthesizer(wav2lip_dir, d, wav2lip=synth.wav2lip, arcface_path=arcface_path,
                        options=EVAL_OPTIONS, allow_mismatched_wav2lip=allow_mismatched_wav2lip,
                        backbone=backbone)
            for d in variant_dirs]
  names = variant_names([(pathlib.Path(d).expanduser().name, v.taem_info.training)
                         for d, v in zip(variant_dirs, others)])
  return synth, dict(zip(names, others))


@dataclasses.dataclass
class _Truth:
  frames: np.ndarray
  wav: np.ndarray
  track: object  # FaceTrack


def truth_frames(path) -> np.ndarray:
  """The frames of a ground-truth video at 25 fps, exactly the builder's (`prepare`): other
  frame rates are converted by `prepare.frames_at_video_fps`. Shapes: -> (T, H, W, 3) uint8 BGR."""
  return prepare.frames_at_video_fps(*video.read_video(path))


GT_25FPS_DIR = "ground_truth_25fps"
GT_CRF = 12  # x264 quality of the converted face input (near-lossless; lossless 1080p is huge)


def at_video_fps(clip: EvalClip, out_dir) -> EvalClip:
  """`clip` with a 25 fps ground-truth video: itself when it already is one, else the converted
  copy in `<out_dir>/ground_truth_25fps/` (written once, atomically; reused on resume). The
  speech is still read from the original file."""
  info = video.probe(clip.video)
  if info.fps and abs(info.fps - VIDEO_FPS) <= 1e-2:
    return clip
  out = pathlib.Path(out_dir) / GT_25FPS_DIR / (clip.uid.replace("/", "_") + ".mp4")
  if not out.is_file():
    out.parent.mkdir(parents=True, exist_ok=True)
    frames = truth_frames(clip.video)[:clip.n_frames]
    video.write_video(out, frames, VIDEO_FPS, audio_wav=clip.speech(), crf=GT_CRF)
  return dataclasses.replace(clip, video=out,
                             audio=clip.audio if clip.audio is not None else clip.video)


def _truth(clip: EvalClip, detector) -> _Truth:
  frames = truth_frames(clip.video)[:clip.n_frames]
  return _Truth(frames, clip.speech(), face.track_faces(frames, detector, stride=1))


def _cut(track, n: int):
  return dataclasses.replace(track, boxes=track.boxes[:n], landmarks=track.landmarks[:n],
                             valid=track.valid[:n], detected=track.detected[:n])


def _mouths_in_boxes(frames, track, detector):
  """Lip points of every frame fitted inside the ground truth's face box (no detection).

  Both videos of a pair are measured this way, so a generated face that the detector would
  miss (or find elsewhere) is still compared at the same place, by the same fit.
  """
  pts = np.zeros((len(frames), face.MOUTH.stop - face.MOUTH.start, 2), np.float32)
  for t in np.flatnonzero(track.valid):
    pts[t] = detector.face_in_box(frames[t], track.boxes[t]).landmarks[face.MOUTH]
  return metrics.MouthTrack(mouth=pts, boxes=track.boxes, valid=np.asarray(track.valid))


def clip_metrics(gen_path, truth: _Truth, scorer, detector) -> dict[str, float]:
  """SSIM, PSNR, LMD, LSE-D, LSE-C (and mouth_detail, `metrics.mouth_detail_ratio`, not a
  Table 1 column) of one generated video against its ground truth."""
  gen, fps = video.read_video(gen_path)
  if abs(fps - VIDEO_FPS) > 1e-2:
    raise UserError(f"{gen_path} is {fps:g} fps, the ground truth {VIDEO_FPS:g} fps")
  n = min(len(gen), len(truth.frames))
  if abs(len(gen) - len(truth.frames)) > MAX_LENGTH_SLACK:
    raise UserError(f"{gen_path} has {len(gen)} frames but its ground truth has "
                    f"{len(truth.frames)}: the clips do not pair up frame by frame")
  gen, gt, track = gen[:n], truth.frames[:n], _cut(truth.track, n)
  metrics.check_frames(gen, gt)
  gen_crops, gt_crops = metrics.face_crops(gen, gt, track)
  lmd = metrics.lmd_of_tracks(_mouths_in_boxes(gen, track, detector),
                              _mouths_in_boxes(gt, track, detector)).lmd
  sync = metrics.score_video(gen, truth.wav, scorer, track=track)
  return {"ssim": metrics.ssim(gen_crops, gt_crops), "psnr": metrics.psnr(gen_crops, gt_crops),
          "lmd": lmd, "lse_d": sync.lse_d, "lse_c": sync.lse_c,
          "mouth_detail": float(metrics.mouth_detail_ratio(gen_crops, gt_crops))}


Progress = Callable[[str, str], None]  # (method, clip uid)


def evaluate(clips: Sequence[EvalClip], synth, methods: Sequence[str], out_dir, scorer, *,
             voice: str = "en-us", keep_videos: bool = True,
             progress: Progress | None = None,
             variants: Mapping[str, object] | None = None) -> dict[str, dict]:
  """Synthesises and scores every clip with every method.

  Args:
    clips: from `load_clips`.
    synth: a `taem_jax.synthesis.Synthesizer` (with a TAEM checkpoint for 'taem').
    methods: names from METHODS.
    out_dir: generated videos go to `<out_dir>/<method>/<uid>.mp4` (an existing complete file
      is reused, so an interrupted evaluation resumes).
    scorer: `metrics.scorer_for(syncnet_v2 or expert)`.
    keep_videos: False deletes each generated video once scored.
    progress: called as (method, uid) after each clip.
    variants: {name: Synthesizer with another TAEM}; each adds the method 'taem[<name>]' (same
      Wav2Lip as `synth`, so rows differ only in the TAEM).

  Returns:
    {method: {"clips": {uid: metrics}, "mean": metrics}}.
  """
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    raise UserError(f"unknown method {unknown[0]!r}: choose from {', '.join(METHODS)}")
  for m in TAEM_METHODS:
    if m in methods and getattr(synth, "taem", None) is None:
      raise UserError(f"method {m!r} needs a TAEM checkpoint (--taem DIR)")
  if "taem" in methods:
    bare = [c.uid for c in clips if not c.text.strip()]
    if bare:
      raise UserError(f"method 'taem' reads the transcript, but {len(bare)} clips have none "
                      f"(first: {bare[0]}); give the corpus its transcripts (TCD-TIMIT: TIMIT's "
                      "prompts.txt) and rebuild, or drop 'taem'")
  if "wav2lip_flite" in methods:
    flite.binary()  # fail before any synthesis when the TTS is missing
  variants = dict(variants or {})
  for name, v in variants.items():
    if getattr(v, "taem", None) is None:
      raise UserError(f"TAEM variant {name!r} has no TAEM checkpoint")
  synths = {m: synth for m in methods}
  synths.update({variant_method(n): v for n, v in variants.items()})
  methods = list(synths)
  detector = face.FaceDetector()
  out_dir = pathlib.Path(out_dir)
  results = {m: {"clips": {}} for m in methods}
  for clip in clips:
    truth = _truth(clip, detector)  # from the original file, converted as the builder did
    clip = at_video_fps(clip, out_dir)
    for m in methods:
      path = out_dir / m / (clip.uid.replace("/", "_") + ".mp4")
      path.parent.mkdir(parents=True, exist_ok=True)
      if not path.is_file():
        synthesize(synths[m], m, clip, path, voice)
      results[m]["clips"][clip.uid] = clip_metrics(path, truth, scorer, detector)
      if not keep_videos:
        path.unlink()
      if progress is not None:
        progress(m, clip.uid)
    if not keep_videos and clip.video.parent.name == GT_25FPS_DIR:
      clip.video.unlink()
  for m in methods:
    results[m]["mean"] = metrics.mean_over_clips(results[m]["clips"].values())
  return results


def table(results: dict[str, dict], title: str, note: str = "", backbone: str = "Wav2Lip"):
  """A `metrics.Table` with one row per method, in METHODS order, then the TAEM variants; each
  row says its TTS and where its durations came from (columns "TTS", "durations").

  `backbone` is the display name (`Backbone.label`) of the model that rendered every row: the
  METHODS labels name Wav2Lip, and under another backbone (PC-AVS) they name that one, as the
  paper's Table 1 rows "PC-AVS" and "PC-AVS w/ TTS" do.
  """
  t = Table(title, note=note)
  rows = [(m, *METHODS[m]) for m in METHODS if m in results]
  rows += [(m, "text", VARIANT_LABEL.format(variant_name(m)), "", GT) for m in results
           if variant_name(m)]
  for m, kind, label, tts, durations in rows:
    mean = results[m]["mean"]
    label = label.replace("Wav2Lip", backbone)
    t.add_row(label, input=kind, tts=tts, durations=durations, **{k: mean.get(k) for k in KEYS})
  return t
