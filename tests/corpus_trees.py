"""Corpus trees in the real downloads' layouts and file formats, made by code for the tests.

* `tcd_timit_tree`: volunteers/<id>/Clips/straightcam/<sent>.mp4 at 29.97 fps and the corpus's
  HTK master label file `volunteer_labelfiles.mlf` (100 ns units, lower-case phones, `sil`, one
  `.` per utterance; label-file names as full paths or `*/<id>/<sent>.lab` patterns).
* `grid_zenodo_tree`: GRID as Zenodo record 3625687 unpacks: s<k>/<utt>.mpg (MPEG-1) and the
  alignments/ folders filed under the wrong talkers (s1 <-> s2 swapped), no separate audio.
* `grid_sheffield_tree`: GRID as the Sheffield page distributes it: MPEG-1 .mpg with MPEG
  audio layer II, stereo, 44.1 kHz; flat `align/` tars unpacked into alignments/s<k>/, and 25 kHz
  mono wavs that end 0.4 s before their videos.
* `lrs2_tree`: main/<id>/<clip>.mp4 + .txt, pretrain/<id>/<clip>.mp4 + .txt (`Text:`, `Conf:`,
  then the `WORD START END ASDSCORE` table), and the lists pretrain.txt, train.txt, val.txt,
  test.txt (test lines carry a trailing flag, as the real list does).

Speech is espeak-ng (`dummy.write_clip`), so the phone timings written into the label files are
the true timings of the audio.
"""
import subprocess
import tarfile

import numpy as np
import tensorflow_datasets as tfds  # noqa: TID253 - the tests drive TFDS builders

from taem_jax import video
from taem_jax.data.grid import grid_dataset_builder as grid
from taem_jax.data.sample import dummy
from taem_jax.text import espeak, g2p
from taem_jax.text import phonemes as P

LEAD_S = 0.2  # silence before the speech in every clip (dummy.write_clip's default)
TRAIL_S = 0.1


def speech_phones(text: str, lead_s: float = LEAD_S):
  """[(ARPAbet without stress, start s, end s)] of the speech `dummy.write_clip` makes."""
  words = [list(w.phonemes) for w in g2p.g2p_words(text, edges=False) if w.phonemes]
  syn = espeak.synthesize_phonemes(words)
  return [(P.strip_stress(e.name), e.start + lead_s, e.end + lead_s) for e in syn.phonemes]


def speech_words(text: str, lead_s: float = LEAD_S):
  """[(WORD, start s, end s)] of the speech `dummy.write_clip` makes."""
  words = [w for w in g2p.g2p_words(text, edges=False) if w.phonemes]
  syn = espeak.synthesize_phonemes([list(w.phonemes) for w in words])
  out, k = [], 0
  for w in words:
    ev = syn.phonemes[k:k + len(w.phonemes)]
    k += len(w.phonemes)
    out.append((w.text.upper(), ev[0].start + lead_s, ev[-1].end + lead_s))
  return out


GRID_TICKS_HZ = 25000  # GRID's .align time unit


def ffmpeg(*args):
  subprocess.run([video.ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *map(str, args)],
                 check=True)


def to_grid_mpg(src, dst):
  """Re-encodes a clip in GRID's format: MPEG-1 video, MPEG audio layer II, stereo, 44.1 kHz."""
  ffmpeg("-i", src, "-c:v", "mpeg1video", "-q:v", "3", "-c:a", "mp2", "-ac", "2", "-ar", "44100",
         dst)


def grid_zenodo_tree(root, portraits,
                     utts=(("bbaf2n", "lgiz9a", "bgwa8p"), ("pwbs4p", "srwt6s", "lrbe5s"))):
  """Writes a GRID tree as the Zenodo zips unpack: s<k>/<utt>.mpg, word alignments in 1/25000 s
  with the true word timings of the speech, alignments/s1 and alignments/s2 holding each
  other's files, no separate audio; returns {clip id: sentence}. `utts[k]` are talker k+1's."""
  texts = {}
  for k, names in enumerate(utts):
    spk = f"s{k + 1}"
    filed = {"s1": "s2", "s2": "s1"}.get(spk, spk)  # the misfiled folders
    (root / spk).mkdir(parents=True)
    (root / "alignments" / filed).mkdir(parents=True, exist_ok=True)
    for j, utt in enumerate(names):
      text = " ".join(grid.sentence_of(utt))
      mp4 = root / f".{utt}.mp4"
      n = dummy.write_clip(mp4, text, portraits[k % len(portraits)], seed=j, lead_s=LEAD_S,
                           trail_s=TRAIL_S)
      to_grid_mpg(mp4, root / spk / f"{utt}.mpg")
      mp4.unlink()
      words = speech_words(text)
      assert len(words) == 6, (utt, words)
      rows = [("sil", 0.0, words[0][1])] + [(w.lower(), s, e) for w, s, e in words] + \
          [("sil", words[-1][2], n / 25.0)]
      (root / "alignments" / filed / f"{utt}.align").write_text("".join(
          f"{round(s * GRID_TICKS_HZ)} {round(e * GRID_TICKS_HZ)} {w}\n" for w, s, e in rows))
      texts[f"{spk}/{utt}"] = text
  return texts


def _grid_align_lines(words, seconds):
  """A .align with the six words spread evenly over the clip between leading/trailing sil."""
  t0, t1 = 0.15, seconds - 0.1
  edges = np.linspace(t0, t1, len(words) + 1)
  ticks = lambda t: int(round(t * GRID_TICKS_HZ))  # noqa: E731
  lines = [f"0 {ticks(t0)} sil"]
  lines += [f"{ticks(a)} {ticks(b)} {w}" for w, a, b in zip(words, edges[:-1], edges[1:])]
  lines.append(f"{ticks(t1)} {ticks(seconds)} sil")
  return "\n".join(lines) + "\n"


def grid_sheffield_tree(root, work, portrait, utts=("bbaf2n", "pgwr6p"), speaker: str = "s1"):
  """Writes one Sheffield GRID talker under `root` (scratch files in `work`); returns
  {clip id: sentence}."""
  (root / speaker).mkdir(parents=True)
  (work / "align").mkdir(parents=True)
  (work / "wav").mkdir()
  texts = {}
  for k, utt in enumerate(utts):
    words = grid.sentence_of(utt)
    mp4 = work / f"{utt}.mp4"
    n = dummy.write_clip(mp4, " ".join(words), portrait, seed=k, trail_s=0.0)
    to_grid_mpg(mp4, root / speaker / f"{utt}.mpg")
    (work / "align" / f"{utt}.align").write_text(_grid_align_lines(words, n / 25.0))
    # The separately distributed wav: 25 kHz mono, ending 0.4 s before the video.
    wav = video.extract_audio(mp4, sr=GRID_TICKS_HZ)
    video.write_wav(work / "wav" / f"{utt}.wav", wav[:len(wav) - int(0.4 * GRID_TICKS_HZ)],
                    GRID_TICKS_HZ)
    texts[f"{speaker}/{utt}"] = " ".join(words)
  for name, folder in (("align.tar", "align"), ("audio.tar", "wav")):
    with tarfile.open(work / name, "w") as t:
      t.add(work / folder, arcname=folder)
  # The README's unpack commands for the talker.
  for sub, name in ((f"alignments/{speaker}", "align.tar"), (f"audio_25k/{speaker}", "audio.tar")):
    (root / sub).mkdir(parents=True)
    subprocess.run(["tar", "-xf", str(work / name), "-C", str(root / sub),
                    "--strip-components=1"], check=True)
  return texts


def _htk(t: float) -> int:
  return int(round(t * 1e7))


def mlf_entry(name: str, text: str, n_frames: int, fps: float) -> list[str]:
  """One utterance of an HTK master label file for a clip saying `text`."""
  phones = speech_phones(text)
  end = n_frames / fps
  rows = [("sil", 0.0, phones[0][1])] + [(p.lower(), s, e) for p, s, e in phones] + \
      [("sil", phones[-1][2], end)]
  lines = [f'"{name}"']
  for k, (lab, s, e) in enumerate(rows):
    # The real file has a few boundaries that overlap by one unit (0 10700001 sil, 10700000 ...).
    e_units = _htk(e) + (1 if k == 0 else 0)
    lines.append(f"{_htk(s)} {e_units} {lab}")
  return lines + ["."]


def tcd_timit_tree(root, portraits, sentences, speakers=("01M", "02F"), *, prompts: bool = False,
                   fps: float = 29.97):
  """Writes a TCD-TIMIT volunteers tree under `root`; returns {clip id: text}."""
  mlf = ["#!MLF!#"]
  texts, prompt_lines = {}, []
  for s, spk in enumerate(speakers):
    cam = root / "volunteers" / spk / "Clips" / "straightcam"
    cam.mkdir(parents=True)
    for k, text in enumerate(sentences):
      utt = f"sx{10 + k}"
      n = dummy.write_clip(cam / f"{utt}.mp4", text, portraits[s % len(portraits)], fps=fps,
                           seed=k, lead_s=LEAD_S, trail_s=TRAIL_S)
      # Both name styles of HTK label files: a full path, and a `*/` pattern.
      name = (f"/home/tcd/TCDTIMIT/volunteers/{spk}/Clips/straightcam/{utt}.rec" if s % 2 == 0
              else f"*/{spk}/{utt}.lab")
      mlf += mlf_entry(name, text, n, fps)
      texts[f"{spk}/{utt}"] = text
      if s == 0:
        prompt_lines.append(f"{text} ({utt})")
  (root / "volunteer_labelfiles.mlf").write_text("\n".join(mlf) + "\n")
  if prompts:
    (root / "prompts.txt").write_text("\n".join(prompt_lines) + "\n")
  return texts


def lrs2_txt(text: str, words=None, conf: int = 3) -> str:
  """An LRS2 transcript file; with `words` [(WORD, start, end)] the pretrain word table."""
  out = f"Text:  {text.upper()}\nConf:  {conf}\n"
  if words is not None:
    rng = np.random.default_rng(len(text))
    out += "\nWORD START END ASDSCORE\n" + "".join(
        f"{w} {s:.2f} {e:.2f} {rng.uniform(2, 9):.1f}\n" for w, s, e in words)
  return out


def lrs2_tree(root, portraits, main_sentences, pretrain_sentences,
              shows=("6330311066473698535", "6331559613336179781")):
  """Writes an LRS2 `mvlrs_v1` tree under `root`; returns {list name: [entries]}."""
  lists = {"pretrain.txt": [], "train.txt": [], "val.txt": [], "test.txt": []}
  for s, show in enumerate(shows):
    for part, sentences in (("main", main_sentences), ("pretrain", pretrain_sentences)):
      d = root / part / show
      d.mkdir(parents=True)
      for k, text in enumerate(sentences):
        clip = f"{k + 1:05d}"
        dummy.write_clip(d / f"{clip}.mp4", text, portraits[s % len(portraits)], seed=k,
                         lead_s=LEAD_S, trail_s=TRAIL_S)
        words = speech_words(text) if part == "pretrain" else None
        (d / f"{clip}.txt").write_text(lrs2_txt(text, words))
        if part == "pretrain":
          lists["pretrain.txt"].append(f"{show}/{clip}")
        else:
          name = ("train.txt", "val.txt", "test.txt")[k % 3] if s == 0 else "train.txt"
          lists[name].append(f"{show}/{clip}" + (" NF" if name == "test.txt" else ""))
  for name, lines in lists.items():
    (root / name).write_text("\n".join(lines) + "\n")
  return lists


def build(module, manual, data_dir):
  """Builds corpus builder `module`'s dataset from the tree `manual` under `data_dir`."""
  b = module.Builder(data_dir=str(data_dir))
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
  return b


def examples(b, split) -> dict:
  """{example id: example} of a built split."""
  src = b.as_data_source(split=split)
  return {src[i]["id"].decode(): src[i] for i in range(len(src))}
