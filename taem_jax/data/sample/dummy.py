"""Tiny talking-face clips made by code, for builder tests and demos (any text, any frame rate).

`write_clip` speaks a sentence with espeak-ng (phoneme-exact, so the mouth follows the speech),
animates a portrait from `portraits.make_portraits` and writes an H.264 + AAC mp4. Corpus
layouts (TCD-TIMIT, LRS2) are assembled from such clips by the tests.
"""
import numpy as np

from taem_jax import audio, video
from taem_jax.data.sample import animate, visemes
from taem_jax.text import espeak, g2p


def write_clip(path, text: str, portrait, *, fps: float = 25.0, voice: str = "en-us",
               rate: int = 175, lead_s: float = 0.2, trail_s: float = 0.2, seed: int = 0,
               wav_path=None) -> int:
  """Writes one clip of `portrait` saying `text`; returns its number of frames.

  Args:
    path: output .mp4 (audio muxed in).
    text: what is said.
    portrait: a `portraits.Portrait`.
    fps: video frame rate (e.g. 29.97 to imitate TCD-TIMIT).
    voice, rate: espeak-ng voice and words per minute.
    lead_s, trail_s: silence before / after the speech.
    seed: head motion and blinks.
    wav_path: also write the 16 kHz audio there (optional).
  """
  words = [list(w.phonemes) for w in g2p.g2p_words(text, edges=False) if w.phonemes]
  syn = espeak.synthesize_phonemes(words, voice=voice, rate=rate)
  wav = audio.load_audio(syn.wav, sr=16000, orig_sr=syn.sr)
  a, b = int(lead_s * 16000), int(trail_s * 16000)
  wav = np.concatenate([np.zeros(a, np.float32), wav, np.zeros(b, np.float32)])
  phones = [(e.name, e.start + lead_s, e.end + lead_s) for e in syn.phonemes]
  n = max(1, int(np.ceil(len(wav) / 16000 * fps)))
  rng = np.random.default_rng(seed)
  anim = animate.FaceAnimator(portrait.image, portrait.landmarks)
  mouth = visemes.mouth_track(phones, n, fps)
  head = animate.head_motion(n, rng, fps)
  blink = animate.blinks(n, rng, fps)
  frames = np.stack([anim.render(mouth[i], float(blink[i]), tuple(head[i])) for i in range(n)])
  video.write_video(path, frames, fps, audio_wav=wav, audio_sr=16000)
  if wav_path is not None:
    video.write_wav(wav_path, wav, 16000)
  return n
