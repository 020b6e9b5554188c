"""Synthetic in-memory data for tests and smoke runs: no corpus, no front ends.

`synthetic_arrays` makes TAEM examples whose z_a is a learnable function of the phonemes;
`synthetic_clips` makes clips whose mouth and audio follow one hidden viseme sequence, for the
Wav2Lip expert and generator; `synthetic_vocab` names the synthetic phoneme ids.
"""
from __future__ import annotations

import numpy as np

from taem_jax import audio
from taem_jax.rates import DUR_FRAMES_PER_VIDEO_FRAME, FACE_SIZE, MEL_FPS, VIDEO_FPS
from taem_jax.text import PhonemeVocab
from taem_jax.text.phonemes import PAD, UNK


def synthetic_arrays(n: int, *, max_phonemes: int, max_frames: int, vocab_size: int,
                     speaker_dim: int, latent_dim: int, seed: int = 0,
                     with_mel: bool = False) -> dict[str, np.ndarray]:
  """n padded TAEM examples whose z_a is a learnable function of the phonemes.

  Each phoneme id p lasts 4 (1 + p mod 3) mel frames, i.e. whole video frames (so L_dur can be
  learned and every video frame hears one phoneme), and z_a at video frame f is a fixed random
  vector of the phoneme sounding in it, times a speaker-dependent gain.

  With `with_mel`, `mel_windows` holds a fixed random (80, 16) pattern per phoneme at each
  frame (-4 = silence after the end), for runs where Wav2Lip computes z_a.

  Shapes:
    phonemes, phoneme_mask, durations (n, max_phonemes); n_frames (n,); frame_mask (n,
    max_frames); speaker (n, speaker_dim); z_a (n, max_frames, latent_dim); index (n,);
    mel_windows (n, max_frames, 80, 16, 1) if with_mel.
  """
  rs = np.random.RandomState(seed)
  table = rs.randn(vocab_size, latent_dim).astype(np.float32)
  r = DUR_FRAMES_PER_VIDEO_FRAME
  out = {
      "phonemes": np.zeros((n, max_phonemes), np.int32),
      "phoneme_mask": np.zeros((n, max_phonemes), bool),
      "durations": np.zeros((n, max_phonemes), np.int32),
      "n_frames": np.zeros((n,), np.int32),
      "frame_mask": np.zeros((n, max_frames), bool),
      "speaker": rs.randn(n, speaker_dim).astype(np.float32),
      "z_a": np.zeros((n, max_frames, latent_dim), np.float32),
      "index": np.arange(n, dtype=np.int32),
  }
  if with_mel:
    patterns = np.clip(rs.randn(vocab_size, 80, 16, 1), -4, 4).astype(np.float32)
    out["mel_windows"] = np.full((n, max_frames, 80, 16, 1), -4.0, np.float32)
  for i in range(n):
    while True:
      length = rs.randint(max(2, max_phonemes // 2), max_phonemes + 1)
      ph = rs.randint(1, vocab_size, length)
      d = r * (1 + ph % 3)
      frames = int(d.sum()) // r
      if frames <= max_frames:
        break
    out["phonemes"][i, :length] = ph
    out["phoneme_mask"][i, :length] = True
    out["durations"][i, :length] = d
    out["n_frames"][i] = frames
    out["frame_mask"][i, :frames] = True
    at = np.repeat(ph, d)  # phoneme id per mel frame
    gain = 1.0 + 0.1 * np.tanh(out["speaker"][i, 0])
    per_frame = at[r * np.arange(frames) + r // 2]
    out["z_a"][i, :frames] = gain * table[per_frame]
    if with_mel:
      out["mel_windows"][i, :frames] = patterns[per_frame]
  return out



def synthetic_vocab(size: int) -> PhonemeVocab:
  """A vocabulary for the ids of `synthetic_arrays`: <pad>, <unk>, then placeholders p2, p3...

  It only names the ids (so a synthetic TAEM can be exported and loaded); the symbols are not
  phonemes any text front end produces.
  """
  return PhonemeVocab(symbols=[PAD, UNK] + [f"p{i}" for i in range(2, int(size))])


def synthetic_clips(n: int, *, frames: int = 24, visemes: int = 6, seed: int = 0
                    ) -> dict[str, np.ndarray]:
  """n clips whose mouth opening and audio spectrum follow the same hidden viseme sequence.

  Each clip has a random background and upper-face colour (its "speaker"); each video frame
  shows one viseme (runs of 1-4 frames): a dark mouth box whose height grows with the viseme
  id. The mel spectrogram (80 fps, 3.2 rows per video frame) holds a fixed random spectrum
  per viseme plus noise, cut into windows with the real `audio.mel_windows`. So the expert can
  learn sync and the generator can learn to draw the mouth from the audio.

  Shapes:
    faces (n, frames, 96, 96, 3) uint8; mel_windows (n, frames, 80, 16, 1) float32;
    n_frames (n,) int32; valid (n,) bool; index (n,) int32; visemes (n, frames) int32.
  """
  rs = np.random.RandomState(seed)
  spectra = rs.uniform(-3.5, 2.0, (visemes, audio.N_MELS)).astype(np.float32)
  out = {
      "faces": np.zeros((n, frames, FACE_SIZE, FACE_SIZE, 3), np.uint8),
      "mel_windows": np.zeros((n, frames, audio.N_MELS, 16, 1), np.float32),
      "n_frames": np.full((n,), frames, np.int32),
      "valid": np.ones((n,), bool),
      "index": np.arange(n, dtype=np.int32),
      "visemes": np.zeros((n, frames), np.int32),
  }
  yy = np.arange(FACE_SIZE)[:, None]
  xx = np.arange(FACE_SIZE)[None, :]
  for i in range(n):
    seq = []
    while len(seq) < frames:
      seq += [rs.randint(visemes)] * rs.randint(1, 5)
    seq = np.array(seq[:frames])
    out["visemes"][i] = seq
    bg = rs.randint(40, 200, 3)
    skin = rs.randint(90, 240, 3)
    face_box = (np.abs(yy - 50) < 40) & (np.abs(xx - 48) < 32)
    for f, v in enumerate(seq):
      img = np.empty((FACE_SIZE, FACE_SIZE, 3), np.float32)
      img[:] = bg
      img[face_box] = skin
      img[(np.abs(yy - 30) < 4) & (np.abs(np.abs(xx - 48) - 14) < 5)] = 30  # eyes
      half_h = 1 + 2 * v
      img[(np.abs(yy - 70) <= half_h) & (np.abs(xx - 48) < 14)] = (20, 20, 90)  # mouth
      img += rs.randn(FACE_SIZE, FACE_SIZE, 3) * 3.0
      out["faces"][i, f] = np.clip(img, 0, 255).astype(np.uint8)
    n_mel = int(np.ceil(frames * MEL_FPS / VIDEO_FPS)) + 16
    row_frame = np.minimum((np.arange(n_mel) * VIDEO_FPS / MEL_FPS).astype(int), frames - 1)
    mel = spectra[seq[row_frame]] + 0.3 * rs.randn(n_mel, audio.N_MELS).astype(np.float32)
    out["mel_windows"][i] = audio.mel_windows(np.clip(mel, -4, 4), frames)
  return out

