"""The text path: words -> phonemes -> TAEM -> one Wav2Lip audio latent z_t per video frame.

    text = TextPath(taem, vocab, options)
    z, sound = text.latents(g2p.g2p_words("Hello there."), speaker, speech=True)

The words are split at pauses into chunks of at most `options.max_chunk_phonemes` phonemes;
each chunk is one TAEM call with its own predicted durations (rounded by
`models.taem.predicted_durations`), in padded shape buckets (one compile per bucket). With
`speech`, espeak-ng says the same phonemes, each stretched to the duration TAEM used
(`speak_phonemes`), so the lips and the sound agree.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from taem_jax.errors import UserError
from taem_jax.models.taem import TAEM, predicted_durations
from taem_jax.rates import DUR_FRAMES_PER_VIDEO_FRAME, DURATION_FPS, VIDEO_FPS
from taem_jax.synthesis.options import Options, Progress, no_progress
from taem_jax.synthesis.runner import bucket_size
from taem_jax.text import espeak
from taem_jax.text.g2p import Word
from taem_jax.text.phonemes import is_pause, normalize_symbol

PHONEME_BUCKET_FLOOR = 16  # smallest padded phoneme length of a TAEM call
FRAME_BUCKET_FLOOR = 32  # smallest padded output length (video frames) of a TAEM call


def words_of_phonemes(phonemes) -> list:
  """A flat phoneme sequence (e.g. a dataset's) as `text.Word`s: each pause its own word, each
  run between pauses one word (word boundaries inside a run are not known, nor needed: TAEM
  reads the phonemes; only chunking looks at words)."""
  words, run = [], []
  for p in phonemes:
    if is_pause(p):
      if run:
        words.append(Word("", tuple(run)))
        run = []
      words.append(Word(p, (p,)))
    else:
      run.append(p)
  if run:
    words.append(Word("", tuple(run)))
  if not words:
    raise UserError("the phoneme sequence is empty")
  return words


def split_chunks(words, max_phonemes: int) -> list[list]:
  """Splits `g2p_words(text)` output into TAEM calls at pauses.

  A chunk starts at a pause word (sil/sp) and runs to the next pause once it holds
  `max_phonemes` (sentences, i.e. `sil`, always start a new chunk); the final `sil` stays with
  the last chunk, so no pause is doubled. A run of words without a pause longer than the limit
  is cut between words.

  Returns:
    a list of chunks, each a list of `text.Word`.
  """
  chunks: list[list] = []
  cur: list = []
  count = 0
  last = len(words) - 1
  for i, w in enumerate(words):
    n = len(w.phonemes)
    boundary = w.is_pause and i != last and cur and (w.phonemes[0] == "sil" or
                                                     count + n > max_phonemes)
    if boundary or (cur and not w.is_pause and count + n > max_phonemes):
      chunks.append(cur)
      cur, count = [], 0
    cur.append(w)
    count += n
  if cur:
    chunks.append(cur)
  return chunks


def share_frames(total: int, weights) -> list[int]:
  """Splits `total` frames over parts in proportion to `weights` (largest remainder), each
  part at least 1 frame (so `total` must be >= the number of parts).

  Example: share_frames(10, [3, 1]) -> [7, 3] (one frame each, the other 8 split 6 : 2).
  """
  w = np.maximum(np.asarray(weights, np.float64), 1e-9)
  k = len(w)
  if total < k:
    raise UserError(f"cannot fit {k} text chunks into {total} frames; give a longer target")
  exact = (total - k) * w / w.sum()
  base = np.floor(exact).astype(np.int64)
  rest = int(total - k - base.sum())
  base[np.argsort(-(exact - base), kind="stable")[:rest]] += 1
  return (base + 1).tolist()


def speak_phonemes(phonemes, durations, voice: str = "en-us") -> tuple[np.ndarray, int]:
  """espeak-ng says `phonemes`, each stretched (WSOLA) to its duration.

  Args:
    phonemes: ARPAbet symbols (pauses included), flat or grouped by word.
    durations: one duration per phoneme in 100 fps mel frames (TAEM's unit).
    voice: espeak-ng voice.

  Shapes:
    durations (L,) -> (wav (N,) float32 at sr, sr), N ~ sum(durations) / 100 * sr.
  """
  syn = espeak.synthesize_phonemes(phonemes, voice=voice)
  bounds = [e.start for e in syn.phonemes] + [syn.phonemes[-1].end]
  seconds = np.asarray(durations, np.float64) / DURATION_FPS
  return espeak.stretch_segments(syn.wav, syn.sr, bounds, seconds), syn.sr


@functools.partial(jax.jit, static_argnums=(0, 7))
def _taem_call(graphdef, state, phonemes, mask, speaker, durations, n_frames, max_frames):
  model = nnx.merge(graphdef, state)
  return model(phonemes, mask, speaker, durations, n_frames, deterministic=True,
               max_frames=max_frames)


def _padded(values: np.ndarray, length: int) -> np.ndarray:
  """(n,) int -> (1, length) int32, zero past n."""
  out = np.zeros((1, length), np.int32)
  out[0, :len(values)] = values
  return out


class TextPath:
  """TAEM's text path for one checkpoint.

  Args:
    taem: a `TAEM` (called deterministically; the caller's model is not changed).
    vocab: the checkpoint's `text.PhonemeVocab`.
    options: `Options` (max_chunk_phonemes, max_phoneme_frames, voice).
  """

  def __init__(self, taem: TAEM, vocab, options: Options = Options()):
    self.config = taem.config
    self.vocab = vocab
    self.options = options
    self._split = nnx.split(taem)

  def encode(self, words) -> np.ndarray:
    """Phoneme ids of `words` in the checkpoint's vocabulary. Shapes: -> (L,) int32."""
    symbols = [p for w in words for p in w.phonemes]
    return np.asarray(self.vocab.encode([normalize_symbol(p, self.vocab.stress)
                                         for p in symbols]), np.int32)

  def durations(self, ids: np.ndarray, speaker: np.ndarray) -> np.ndarray:
    """TAEM's predicted mel-frame durations, rounded as the model rounds them, each at most
    `options.max_phoneme_frames`; a prediction of all zeros gives one video frame
    (4 mel frames) per phoneme instead.

    Shapes: ids (L,) int32; speaker (S,) -> (L,) int32.
    """
    n = len(ids)
    lb = bucket_size(n, floor=PHONEME_BUCKET_FLOOR)
    graphdef, state = self._split
    mask = np.arange(lb)[None] < n
    out = _taem_call(graphdef, state, jnp.asarray(_padded(ids, lb)), jnp.asarray(mask),
                     jnp.asarray(speaker[None]), None, None, 1)
    pred = np.asarray(out["log_dur_pred"][0, :n], np.float64)
    _, rounded, _ = predicted_durations(pred, ids, np.ones(n, bool), self.config,
                                        cap=self.options.max_phoneme_frames,
                                        fallback=DUR_FRAMES_PER_VIDEO_FRAME, xp=np)
    return rounded

  def latents(self, words, speaker: np.ndarray, *, speech: bool = False,
              n_frames: int | None = None, progress: Progress = no_progress,
              durations=None) -> tuple[np.ndarray, tuple[np.ndarray, int] | None]:
    """z_t of every output frame (+ the stretched espeak-ng speech and its rate if `speech`).

    With `n_frames`, the predicted durations are fitted (by TAEM's own length fitting) so the
    output has exactly that many frames; chunks share it in proportion to their predicted
    lengths. Reports one "text" progress step per chunk.

    With `durations` (one per phoneme of `words`, 100 fps frames) TAEM uses them as teacher
    durations in one call (no chunking, so they are not refitted per chunk); with `n_frames`
    they are fitted to 4 * n_frames, a no-op when they already sum to it (ground truth).

    Shapes:
      speaker (S,) float32 -> z (n_frames, D) float32, speech (n_frames * sr / 25,) float32.
    """
    graphdef, state = self._split
    planned = []
    if durations is not None:
      chunks = [list(words)]
      ids = self.encode(words)
      d = np.asarray(durations, np.int32)
      if d.shape != ids.shape or (d < 0).any():
        raise UserError(f"{d.size} durations for {ids.size} phonemes (need one >= 0 each)")
      frames = (int(n_frames) if n_frames is not None
                else max(1, -(-int(d.sum()) // DUR_FRAMES_PER_VIDEO_FRAME)))
      planned.append((words, ids, d, frames))
    else:
      chunks = split_chunks(words, self.options.max_chunk_phonemes)
      for chunk in chunks:
        ids = self.encode(chunk)
        d = self.durations(ids, speaker)
        planned.append((chunk, ids, d, max(1, -(-int(d.sum()) // DUR_FRAMES_PER_VIDEO_FRAME))))
    if n_frames is not None and durations is None:
      shares = share_frames(int(n_frames), [p[3] for p in planned])
      planned = [(c, i, d, f) for (c, i, d, _), f in zip(planned, shares)]
    zs, sounds = [], []
    for chunk, ids, d, frames in planned:
      n = len(ids)
      lb = bucket_size(n, floor=PHONEME_BUCKET_FLOOR)
      fb = bucket_size(frames, floor=FRAME_BUCKET_FLOOR)
      out = _taem_call(graphdef, state, jnp.asarray(_padded(ids, lb)),
                       jnp.asarray(np.arange(lb)[None] < n), jnp.asarray(speaker[None]),
                       jnp.asarray(_padded(d, lb)), jnp.asarray([frames], np.int32), fb)
      zs.append(np.asarray(out["z"][0, :frames], np.float32))
      if speech:
        used = np.asarray(out["durations_used"][0, :n], np.float64)
        wav, sr = speak_phonemes([list(w.phonemes) for w in chunk], used, self.options.voice)
        want = int(round(frames / VIDEO_FPS * sr))
        sounds.append((np.pad(wav, (0, max(0, want - len(wav))))[:want], sr))
      progress("text", 1, len(chunks))
    z = np.concatenate(zs)
    if not speech:
      return z, None
    sr = sounds[0][1]
    return z, (np.concatenate([s for s, _ in sounds]).astype(np.float32), sr)
