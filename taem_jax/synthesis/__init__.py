"""Talking-face synthesis on user media: a face image or video + text (TAEM) or audio -> mp4.

    from taem_jax.synthesis import Options, Synthesizer
    synth = Synthesizer(wav2lip_dir, taem_dir, options=Options(batch_size=16))
    synth.synthesize("me.jpg", "out.mp4", text="Hello there.", speech=True)
    synth.edit("talk.mp4", "edited.mp4", transcript="...", old="on Monday", new="on Friday")

Modules, each importing only the ones above it:

  options    `Options`, the `Progress` callback type, `no_progress`.
  runner     the batched, jitted Wav2Lip generator calls (`run_batched`, `generate_from_audio`)
             and the one padded-shape rule (`bucket_size`).
  text_path  words -> TAEM -> per-frame latents (+ espeak-ng speech at TAEM's durations).
  editing    the word-span editor (`Synthesizer.edit`'s body).
  engine     `Synthesizer`: load + check the checkpoints, plan a job, track faces, render.
"""
from taem_jax.synthesis.editing import EditResult
from taem_jax.synthesis.engine import Plan, Result, Synthesizer, frame_schedule
from taem_jax.synthesis.options import Options, Progress, no_progress
from taem_jax.synthesis.text_path import TextPath, share_frames, speak_phonemes, split_chunks

__all__ = [
    "EditResult", "Options", "Plan", "Progress", "Result", "Synthesizer", "TextPath",
    "frame_schedule", "no_progress", "share_frames", "speak_phonemes", "split_chunks",
]
