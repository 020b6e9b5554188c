"""Animates a portrait: mouth shapes, blinks and small head motion by a landmark-driven warp.

For each frame the 68 landmarks are moved to where the mouth shape, the blink and the pose want
them (mouth and jaw points only for speech, upper eyelids for blinks), and the image is warped
so that the pixels follow. The warp is a thin-plate spline fitted *backwards* (from the moved
points to the original ones), evaluated on a coarse grid and upsampled, then applied with one
`cv2.remap`; points far from the face are pinned so only the lower face and the eyelids move.
An opening mouth needs pixels the photo does not have (the inside of the mouth), so the region
inside the moved inner-lip contour is painted dark, with a light band for the upper teeth.

Photos with an open smile are first closed (the lower lip is moved up onto the upper lip) so
every speaker starts from the same closed, relaxed mouth during silence.
"""
import cv2
import numpy as np

# iBUG-68 index groups.
_JAW_MOVING = {4: 0.15, 5: 0.35, 6: 0.6, 7: 0.85, 8: 1.0, 9: 0.85, 10: 0.6, 11: 0.35, 12: 0.15}
_UPPER_OUTER = (49, 50, 51, 52, 53)
_LOWER_OUTER = (59, 58, 57, 56, 55)      # left to right, under 49..53 roughly
_UPPER_INNER = (61, 62, 63)
_LOWER_INNER = (67, 66, 65)              # under 61, 62, 63
_CORNERS = (48, 54, 60, 64)
_ANCHORS = tuple(range(0, 4)) + tuple(range(13, 17)) + tuple(range(17, 36)) + (36, 39, 40, 41,
                                                                                 42, 45, 46, 47)
_BLINK = (37, 38, 43, 44)  # upper eyelid points
_GRID = 32


def _tps_kernel(r2):
  r2 = np.maximum(r2, 1e-12)
  return 0.5 * r2 * np.log(r2)


def _sq_dists(a, b):
  return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2.0 * a @ b.T, 0.0)


def _merge_close(ctrl, values, eps: float = 0.75):
  """Merges control points closer than `eps` px (averaging their values).

  A closed mouth puts inner upper and lower lip points on top of each other; kept apart they
  make the spline system near-singular and its solution ring around them.
  """
  keep_c, keep_v = [], []
  for c, v in zip(ctrl, values):
    for k, kc in enumerate(keep_c):
      if abs(kc[0] - c[0]) < eps and abs(kc[1] - c[1]) < eps:
        keep_v[k].append(v)
        break
    else:
      keep_c.append(c)
      keep_v.append([v])
  return np.array(keep_c), np.array([np.mean(v, 0) for v in keep_v])


def _fit_tps(ctrl, values, reg):
  """Thin-plate spline through (ctrl -> values); returns a function of (M, 2) points."""
  n = len(ctrl)
  k = _tps_kernel(_sq_dists(ctrl, ctrl)) + reg * np.eye(n)
  p = np.concatenate([np.ones((n, 1)), ctrl], 1)
  a = np.zeros((n + 3, n + 3))
  a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
  b = np.zeros((n + 3, values.shape[1]))
  b[:n] = values
  try:
    coef = np.linalg.solve(a, b)
  except np.linalg.LinAlgError:
    coef = np.linalg.lstsq(a, b, rcond=None)[0]
  w, aff = coef[:n], coef[n:]

  def f(q):
    return _tps_kernel(_sq_dists(q, ctrl)) @ w + q @ aff[1:] + aff[0]

  return f


class FaceAnimator:
  """Renders frames of one portrait.

  Args:
    image: (S, S, 3) uint8 BGR portrait.
    landmarks: (68, 2) float32 points of `image`.
    open_scale: jaw opening at open=1, as a fraction of the mouth width.
  """

  def __init__(self, image: np.ndarray, landmarks: np.ndarray, *, open_scale: float = 0.42):
    self.image = image
    self.size = image.shape[0]
    lm = np.asarray(landmarks, np.float64)
    self.lm = lm
    self.mouth_w = float(np.linalg.norm(lm[54] - lm[48]))
    self.center = lm[48:68].mean(0)
    self.open_px = open_scale * self.mouth_w
    # Gap between inner lips in the photo (an open smile); closing it is the rest pose.
    self.gap = np.array([lm[lo, 1] - lm[up, 1] for up, lo in zip(_UPPER_INNER, _LOWER_INNER)])
    self.gap = np.maximum(self.gap, 0.0)
    s = self.size
    border = [(x, y) for x in (0, s / 2, s - 1) for y in (0, s / 2, s - 1) if (x, y) != (s / 2,
                                                                                   s / 2)]
    self.border = np.array(border, np.float64)
    g = np.linspace(0, s - 1, _GRID)
    gx, gy = np.meshgrid(g, g)
    self.grid = np.stack([gx.ravel(), gy.ravel()], -1)
    skin = image[int(lm[29, 1]), int(lm[29, 0])]  # nose bridge colour, for the closed-eye lid
    self.skin = skin.astype(np.float32)

  def moved_landmarks(self, mouth, blink: float = 0.0) -> np.ndarray:
    """Landmarks for mouth `(open, width, round)` and eyelid closure `blink` in [0, 1].

    Shapes:
      mouth: (3,) -> returns (68, 2) float64 in portrait pixels (before head motion).
    """
    op, wd, rd = (float(v) for v in mouth)
    lm = self.lm.copy()
    drop = self.open_px * op
    gap = self.gap.mean()
    up = -0.12 * drop  # the upper lip lifts a little
    # Lower lip: close the photo's gap, then drop with the jaw.
    for k, (lo_in, lo_out) in enumerate(zip(_LOWER_INNER, _LOWER_OUTER[1:4])):
      dy = -self.gap[k] + drop
      lm[lo_in, 1] += dy
      lm[lo_out, 1] += dy
    for p in (_LOWER_OUTER[0], _LOWER_OUTER[4]):
      lm[p, 1] += 0.75 * (-gap + drop)
    for p in _UPPER_OUTER + _UPPER_INNER:
      lm[p, 1] += up
    for p in _CORNERS:
      lm[p, 1] += 0.35 * (-gap + drop) + 0.5 * up
    for p, share in _JAW_MOVING.items():
      lm[p, 1] += share * (0.9 * drop - 0.5 * gap)
    # Width: spread for /iy/-like shapes, pull in (rounding) for /uw/, /w/.
    sx = 1.0 + 0.14 * wd - 0.3 * rd
    cx = self.center[0]
    lm[48:68, 0] = cx + (lm[48:68, 0] - cx) * sx
    # Rounding pushes the lips forward: the opening gets taller and narrower.
    lm[list(_LOWER_INNER), 1] += 0.1 * rd * self.open_px * min(1.0, op * 3)
    del blink  # eyelids are painted in `render`, not warped (closing them would fold the warp)
    return lm

  def render(self, mouth, blink: float = 0.0, head=(0.0, 0.0, 0.0, 1.0)) -> np.ndarray:
    """One frame.

    Args:
      mouth: (open, width, round) in [0, 1].
      blink: eyelid closure in [0, 1].
      head: (dx, dy, angle_deg, scale) similarity applied about the face centre.

    Returns:
      (S, S, 3) uint8 BGR frame.
    """
    s = self.size
    moved = self.moved_landmarks(mouth, blink)
    dx, dy, ang, sc = head
    h = cv2.getRotationMatrix2D((float(self.center[0]), float(self.center[1]) - 0.3 * s * 0.3),
                                float(ang), float(sc))
    h[:, 2] += (dx, dy)
    h_inv = cv2.invertAffineTransform(h)
    # Backward TPS in portrait coordinates: moved point -> original point.
    # Upper lids are pinned too: blinks are painted, not warped.
    ctrl_idx = list(range(48, 68)) + list(_JAW_MOVING) + list(_ANCHORS) + list(_BLINK)
    ctrl = np.concatenate([moved[ctrl_idx], self.border])
    vals = np.concatenate([self.lm[ctrl_idx], self.border])
    ctrl, vals = _merge_close(ctrl, vals)
    tps = _fit_tps(ctrl, vals, reg=1e-3)
    # Output pixel q -> pose-free point h_inv(q) -> original photo point tps(.)
    q = self.grid @ h_inv[:, :2].T + h_inv[:, 2]
    src = tps(q).reshape(_GRID, _GRID, 2).astype(np.float32)
    src = cv2.resize(src, (s, s), interpolation=cv2.INTER_LINEAR)
    frame = cv2.remap(self.image, src[..., 0], src[..., 1], cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE)
    # Inside of the mouth, in output coordinates.
    pts = moved @ h[:, :2].T + h[:, 2]
    inner = pts[60:68]
    height = float(np.mean([pts[lo, 1] - pts[up, 1] for up, lo in zip(_UPPER_INNER,
                                                                      _LOWER_INNER)]))
    if height > 0.8:
      # Paint only inside a box around the mouth (the rest of the frame is untouched).
      x0, y0 = np.floor(inner.min(0)).astype(int) - 3
      x1, y1 = np.ceil(inner.max(0)).astype(int) + 4
      x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, s), min(y1, s)
      if x1 > x0 and y1 > y0:
        off = np.array([x0, y0], np.float64)
        roi = (y1 - y0, x1 - x0)
        mask = np.zeros(roi, np.float32)
        cv2.fillPoly(mask, [np.round((inner - off) * 8).astype(np.int32)], 1.0, cv2.LINE_AA,
                     shift=3)
        teeth = np.zeros(roi, np.float32)
        band = min(0.45 * height, 0.09 * self.mouth_w)
        upper = pts[[60, 61, 62, 63, 64]] - off
        poly = np.concatenate([upper, upper[::-1] + [0, band]])
        cv2.fillPoly(teeth, [np.round(poly * 8).astype(np.int32)], 1.0, cv2.LINE_AA, shift=3)
        teeth *= mask
        mask = cv2.GaussianBlur(mask, (3, 3), 0)[..., None]
        teeth = cv2.GaussianBlur(teeth, (3, 3), 0)[..., None]
        dark = np.array([30, 28, 72], np.float32)   # BGR: dark red-brown mouth cavity
        light = np.array([200, 205, 210], np.float32)
        f = frame[y0:y1, x0:x1].astype(np.float32)
        f = f * (1 - mask) + dark * mask
        f = f * (1 - teeth) + light * teeth
        frame[y0:y1, x0:x1] = np.clip(f, 0, 255).astype(np.uint8)
    if blink > 0.05:
      frame = self._paint_lids(frame, pts, blink)
    return frame

  def _paint_lids(self, frame, pts, blink):
    """Lowers each upper eyelid over the eye by `blink` (skin from just above the eye)."""
    f = frame.astype(np.float32)
    s = self.size
    for eye in (range(36, 42), range(42, 48)):
      e = pts[list(eye)]
      top, bottom = e[:, 1].min(), e[:, 1].max()
      width = e[:, 0].max() - e[:, 0].min()
      x0, x1 = int(max(0, e[:, 0].min() - 2)), int(min(s, e[:, 0].max() + 3))
      # Skin just under the lower lid (above it there may be brows or hair).
      y_skin = int(min(s - 1, bottom + 0.15 * width))
      skin = f[y_skin:min(s, int(bottom + 0.4 * width) + 1), x0:x1].reshape(-1, 3)
      colour = np.median(skin, 0) if len(skin) else self.skin
      mask = np.zeros((s, s), np.float32)
      cv2.fillPoly(mask, [np.round(e * 8).astype(np.int32)], 1.0, cv2.LINE_AA, shift=3)
      mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
      edge = top + blink * (bottom - top + 2.0)
      rows = np.arange(s, dtype=np.float32)[:, None]
      cover = np.clip(edge - rows + 0.5, 0, 1) * mask
      lash = np.clip(1.0 - np.abs(rows - edge) / 1.2, 0, 1) * mask * 0.6
      f = f * (1 - cover[..., None]) + colour * cover[..., None]
      f = f * (1 - lash[..., None]) + np.array([40, 40, 50], np.float32) * lash[..., None]
    return np.clip(f, 0, 255).astype(np.uint8)


def head_motion(n: int, rng: np.random.Generator, fps: float = 25.0, *, shift_px: float = 2.0,
                angle_deg: float = 1.5, scale: float = 0.01) -> np.ndarray:
  """Small smooth head motion: sums of slow sinusoids with random phases.

  Returns:
    (n, 4) float32 `(dx, dy, angle_deg, scale)` per frame.
  """
  t = np.arange(n) / fps
  out = np.zeros((n, 4), np.float32)
  amps = (shift_px, shift_px, angle_deg, scale)
  for c in range(4):
    for _ in range(2):
      f = rng.uniform(0.15, 0.6)
      out[:, c] += amps[c] * 0.5 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
  out[:, 3] += 1.0
  return out


def blinks(n: int, rng: np.random.Generator, fps: float = 25.0) -> np.ndarray:
  """Eyelid closure per frame: a blink (about 0.2 s, closed at its middle) every 2-5 s.

  Returns:
    (n,) float32 in [0, 1].
  """
  out = np.zeros(n, np.float32)
  t = rng.uniform(0.3, 2.5)
  while t * fps < n:
    c = t * fps
    k = np.arange(n)
    out = np.maximum(out, np.clip(1.0 - np.abs(k - c) / 2.5, 0, 1))
    t += rng.uniform(2.0, 5.0)
  return out
