"""The project's rates and sizes: one definition each, imported everywhere else.

Wav2Lip was trained on 25 fps video with 16 kHz audio, 80 fps mel spectrograms (hop 200) and
96x96 face crops; TAEM's phoneme durations are counted in 100 fps mel frames (hop 160), so
one video frame is 4 duration frames and 640 audio samples. Nothing here imports anything.
"""

VIDEO_FPS = 25.0            # Wav2Lip's (and TAEM's) video rate
SAMPLE_RATE = 16000         # audio rate of every model input
MEL_HOP = 200               # Wav2Lip mel hop in samples (12.5 ms)
MEL_FPS = SAMPLE_RATE / MEL_HOP  # 80.0 Wav2Lip mel frames per second
DURATION_HOP = 160          # hop of the 100 fps mel TAEM durations are counted in
DURATION_FPS = SAMPLE_RATE / DURATION_HOP  # 100.0
DUR_FRAMES_PER_VIDEO_FRAME = int(round(DURATION_FPS / VIDEO_FPS))  # 4
SAMPLES_PER_FRAME = int(round(SAMPLE_RATE / VIDEO_FPS))  # 640
FACE_SIZE = 96              # side of the generator's square face crop
Z_DIM = 512                 # Wav2Lip's audio latent width at width 1.0
