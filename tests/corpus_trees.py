"""Corpus trees in the real downloads' layouts and file formats, made by code for the tests.

* `tcd_timit_tree`: volunteers/<id>/Clips/straightcam/<sent>.mp4 at 29.97 fps and the corpus's
  HTK master label file `volunteer_labelfiles.mlf` (100 ns units, lower-case phones, `sil`, one
  `.` per utterance; label-file names as full paths or `*/<id>/<sent>.lab` patterns).
* `lrs2_tree`: main/<id>/<clip>.mp4 + .txt, pretrain/<id>/<clip>.mp4 + .txt (`Text:`, `Conf:`,
  then the `WORD START END ASDSCORE` table), and the lists pretrain.txt, train.txt, val.txt,
  test.txt (test lines carry a trailing flag, as the real list does).

Speech is espeak-ng (`dummy.write_clip`), so the phone timings written into the label files are
the true timings of the audio.
"""
import numpy as np
import tensorflow_datasets as tfds  # noqa: TID253 - the tests drive TFDS builders

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
