"""PSNR and SSIM of generated vs ground-truth frames (uint8), per frame, then averaged; and the
mouth region's detail (variance of the Laplacian), to tell a sharp mouth from a blurred one.

Both reproduce scikit-image (`skimage.metrics.peak_signal_noise_ratio` and
`structural_similarity` with `data_range=255`, `channel_axis=-1` for colour) frame by frame:

* SSIM variant. The default, `gaussian=False`, is scikit-image's default and what talking-face
  evaluations built on it report (`compare_ssim(..., multichannel=True)` in older releases): a
  7x7 uniform window, sample covariance (N / (N - 1)), K1 = 0.01, K2 = 0.03, the SSIM map averaged
  over the pixels whose window lies inside the image, colour channels scored separately and
  averaged. `gaussian=True` is Wang et al.'s original setting as scikit-image documents it
  (gaussian_weights=True, sigma 1.5, 11 taps, use_sample_covariance=False).
* PSNR cap. A frame pair that is identical has infinite PSNR (scikit-image returns inf); one
  such frame would make a clip's mean infinite. Per-frame PSNR is therefore capped at
  `max_db=100` dB by default; no pair of uint8 crops up to 224x224x3 that differ in at least one
  value reaches 100 dB (one unit of error in one value of a 224x224x3 crop gives 99.9 dB), so the
  cap only changes identical frames. `max_db=None` keeps inf.

Speed: the default SSIM is computed in JAX (jit, chunks of a fixed number of frames per frame
size, so a clip of any length compiles once per size). Its window sums are done in int32, which
is exact for uint8 input, so the result agrees with scikit-image's float64 to ~1e-7; the
Gaussian variant's moments are float32 (centred on 127.5) and agree to ~1e-5.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from taem_jax import face
from taem_jax.errors import UserError
from taem_jax.metrics.report import check_frames

K1, K2 = 0.01, 0.03
DATA_RANGE = 255.0
UNIFORM_WIN = 7
GAUSS_SIGMA, GAUSS_TRUNCATE = 1.5, 3.5
PSNR_MAX_DB = 100.0
# The mouth region of a face crop (Wav2Lip's 96x96 layout: the mouth sits in the lower half,
# centred), as fractions (top, bottom, left, right) of the crop's side. Choice: narrow enough
# that background and cheeks beside the jaw weigh little, wide enough for the lip corners.
MOUTH_REGION = (0.55, 0.95, 0.2, 0.8)
# Values (frames x H x W x C) per jitted SSIM call: about 1 MB of int32 per statistic, which
# measured fastest on CPU (cache-sized); the chunk length is fixed per frame size, so a clip of
# any length compiles once.
CHUNK_VALUES = 320_000
MAX_CHUNK = 16


def _as_stacks(gen, gt, min_side: int = 1) -> tuple[np.ndarray, np.ndarray]:
  """Both inputs as (T, H, W, C) uint8 of equal shape; (T, H, W) is taken as grey frames."""
  gen, gt = np.asarray(gen), np.asarray(gt)
  for name, a in (("generated", gen), ("ground-truth", gt)):
    if a.dtype != np.uint8:
      raise UserError(f"{name} frames must be uint8 (0..255), got {a.dtype}: convert generated "
                      "faces with taem_jax.face.to_uint8")
    if a.ndim not in (3, 4):
      raise UserError(f"{name} frames must be a stack (T, H, W) or (T, H, W, C), "
                      f"got shape {a.shape}")
  if gen.shape != gt.shape:
    raise UserError(f"generated frames {gen.shape} and ground truth {gt.shape} differ in shape: "
                    "crop both with the same boxes and size, and trim them to the same length")
  if gen.shape[0] == 0:
    raise UserError("no frames to compare")
  if gen.ndim == 3:
    gen, gt = gen[..., None], gt[..., None]
  if min(gen.shape[1:3]) < min_side:
    raise UserError(f"frames of {gen.shape[1]}x{gen.shape[2]} are smaller than the "
                    f"{min_side}x{min_side} SSIM window")
  return gen, gt


def psnr_frames(gen, gt, data_range: float = DATA_RANGE,
                max_db: float | None = PSNR_MAX_DB) -> np.ndarray:
  """Per-frame PSNR in dB: 10 log10(data_range^2 / MSE), MSE over all pixels and channels.

  Args:
    gen: generated frames.
    gt: ground-truth frames (same shape).
    data_range: peak value (255 for uint8).
    max_db: cap for identical frames (see the module docstring); None keeps inf.

  Shapes:
    gen, gt: (T, H, W) or (T, H, W, C) uint8 -> (T,) float64.
  """
  gen, gt = _as_stacks(gen, gt)
  diff = gen.astype(np.int32) - gt.astype(np.int32)
  sse = np.einsum("thwc,thwc->t", diff, diff, dtype=np.int64)  # exact for uint8
  mse = sse / float(np.prod(gen.shape[1:]))
  with np.errstate(divide="ignore"):
    out = 10.0 * np.log10(float(data_range) ** 2 / mse)
  if max_db is not None:
    out = np.minimum(out, float(max_db))
  return out


def psnr(gen, gt, data_range: float = DATA_RANGE, max_db: float | None = PSNR_MAX_DB) -> float:
  """Mean over frames of `psnr_frames`. Shapes: as `psnr_frames` -> scalar."""
  return float(np.mean(psnr_frames(gen, gt, data_range, max_db)))


def _gauss_taps() -> np.ndarray:
  radius = int(GAUSS_TRUNCATE * GAUSS_SIGMA + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  w = np.exp(-0.5 * (x / GAUSS_SIGMA) ** 2)
  return w / w.sum()


def _valid_filter(x: jax.Array, taps) -> jax.Array:
  """Separable 'valid' correlation over H and W of (B, H, W, C) with 1-D `taps`."""
  k = len(taps)
  h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
  rows = sum(t * x[:, i:i + h] for i, t in enumerate(taps))
  return sum(t * rows[:, :, i:i + w] for i, t in enumerate(taps))


def _box_sums(x: jax.Array, k: int) -> jax.Array:
  """'Valid' k x k window sums over axes 2, 3 of (S, B, H, W, C), separably (fastest on CPU)."""
  ones = (1,) * x.ndim
  rows = jax.lax.reduce_window(x, 0, jax.lax.add, (1, 1, k, 1, 1), ones, "VALID")
  return jax.lax.reduce_window(rows, 0, jax.lax.add, (1, 1, 1, k, 1), ones, "VALID")


def _ssim_uniform(x: jax.Array, y: jax.Array) -> jax.Array:
  """(B, H, W, C) uint8 pair -> (B,) mean SSIM, 7x7 box, sample covariance."""
  x, y = x.astype(jnp.int32), y.astype(jnp.int32)
  # Window sums of integers are exact in int32 (|49 * 49 * 255^2| < 2^31), and so are the
  # variance numerators N*Sxx - Sx^2: no cancellation error before the one float conversion.
  sx, sy, sxx, syy, sxy = _box_sums(jnp.stack([x, y, x * x, y * y, x * y]), UNIFORM_WIN)
  n = UNIFORM_WIN * UNIFORM_WIN
  f = lambda v: v.astype(jnp.float32)
  ux, uy = f(sx) / n, f(sy) / n
  norm = float(n * (n - 1))
  vx = f(n * sxx - sx * sx) / norm
  vy = f(n * syy - sy * sy) / norm
  vxy = f(n * sxy - sx * sy) / norm
  return _ssim_from_moments(ux, uy, vx, vy, vxy)


def _ssim_gaussian(x: jax.Array, y: jax.Array) -> jax.Array:
  """(B, H, W, C) uint8 pair -> (B,) mean SSIM, Gaussian sigma 1.5, population covariance."""
  # Centre on 127.5 so the float32 moments lose less to cancellation; SSIM's luminance term is
  # not shift-invariant, so the means are shifted back before use.
  x, y = x.astype(jnp.float32) - 127.5, y.astype(jnp.float32) - 127.5
  taps = tuple(float(t) for t in _gauss_taps())
  ux, uy = _valid_filter(x, taps), _valid_filter(y, taps)
  vx = _valid_filter(x * x, taps) - ux * ux
  vy = _valid_filter(y * y, taps) - uy * uy
  vxy = _valid_filter(x * y, taps) - ux * uy
  return _ssim_from_moments(ux + 127.5, uy + 127.5, vx, vy, vxy)


def _ssim_from_moments(ux, uy, vx, vy, vxy) -> jax.Array:
  c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  return s.mean(axis=(1, 2, 3))


@functools.partial(jax.jit, static_argnames=("gaussian",))
def _ssim_chunk(x: jax.Array, y: jax.Array, gaussian: bool) -> jax.Array:
  return _ssim_gaussian(x, y) if gaussian else _ssim_uniform(x, y)


def ssim_frames(gen, gt, gaussian: bool = False) -> np.ndarray:
  """Per-frame SSIM (scikit-image's, data_range 255; see the module docstring for the variant).

  Args:
    gen: generated frames.
    gt: ground-truth frames (same shape); grey (T, H, W) or colour (T, H, W, C), where the
      channels are scored separately and averaged (so BGR vs RGB order does not matter).
    gaussian: False: 7x7 uniform window (scikit-image default); True: Wang et al.'s Gaussian.

  Shapes:
    gen, gt: (T, H, W) or (T, H, W, C) uint8 with H, W >= 7 (11 for gaussian) -> (T,) float64.
  """
  win = 2 * int(GAUSS_TRUNCATE * GAUSS_SIGMA + 0.5) + 1 if gaussian else UNIFORM_WIN
  gen, gt = _as_stacks(gen, gt, min_side=win)
  t = gen.shape[0]
  chunk = int(np.clip(CHUNK_VALUES // np.prod(gen.shape[1:]), 1, MAX_CHUNK))
  pad = (-t) % chunk
  if pad:
    # Pad to whole chunks with copies of frame 0 (scores of the pad are dropped).
    gen = np.concatenate([gen, np.repeat(gen[:1], pad, 0)])
    gt = np.concatenate([gt, np.repeat(gt[:1], pad, 0)])
  out = [np.asarray(_ssim_chunk(gen[i:i + chunk], gt[i:i + chunk], gaussian))
         for i in range(0, len(gen), chunk)]
  return np.concatenate(out)[:t].astype(np.float64)


def ssim(gen, gt, gaussian: bool = False) -> float:
  """Mean over frames of `ssim_frames`. Shapes: as `ssim_frames` -> scalar."""
  return float(np.mean(ssim_frames(gen, gt, gaussian)))


def face_crops(gen_frames, gt_frames, gt_track, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
  """The face crops PSNR / SSIM are measured on: both videos cut with the ground truth's boxes.

  Using the ground truth's (dlib, S3FD-like) box for both frames of a pair means a mouth in the
  wrong place is penalised instead of being re-centred by a second detection. Crops are
  resized to `size` x `size` (96: Wav2Lip's working resolution). Frames without a face in the
  ground truth are dropped from both.

  Shapes:
    gen_frames, gt_frames: (T, H, W, 3) uint8 -> two (T', size, size, 3) uint8, T' = valid frames.
  """
  check_frames(gen_frames, gt_frames)
  if len(gt_track) != len(gt_frames):
    raise UserError(f"face track has {len(gt_track)} frames but the video has {len(gt_frames)}")
  valid = np.asarray(gt_track.valid, bool)
  boxes = face.pad_boxes(gt_track.boxes, valid, gt_track.frame_size, (0, 0, 0, 0))[valid]
  return (face.crop_faces(np.asarray(gen_frames)[valid], boxes, size),
          face.crop_faces(np.asarray(gt_frames)[valid], boxes, size))


def region_slices(h: int, w: int, region: tuple[float, float, float, float]
                   ) -> tuple[slice, slice]:
  """Rows and columns of an h x w crop that `region` (top, bottom, left, right fractions) covers."""
  top, bottom, left, right = region
  return (slice(int(round(top * h)), int(round(bottom * h))),
          slice(int(round(left * w)), int(round(right * w))))


def mouth_detail(faces, region: tuple[float, float, float, float] = MOUTH_REGION) -> jax.Array:
  """Per-frame detail of the mouth region: variance of the grey image's Laplacian there.

  A blurred mouth (no teeth, soft lip edges) has a small variance, a sharp one a large one.
  The 4-neighbour Laplacian of the mean over channels is taken inside the region only (no
  padding), so the value does not depend on what lies outside it. The unit is the frames' unit
  squared (uint8 input is taken as 0..255): compare frames of the same scale, e.g. with
  `mouth_detail_ratio`. Works on numpy or JAX arrays, inside jit too.

  Args:
    faces: face crops in Wav2Lip's layout (mouth in the lower half; see `MOUTH_REGION`).
    region: (top, bottom, left, right) fractions of the crop's height / width.

  Shapes:
    faces: (..., H, W, C) float / uint8 with a region of >= 3x3 pixels
      -> (...,) float32.
  """
  x = jnp.asarray(faces).astype(jnp.float32).mean(-1)  # (..., H, W) grey
  h, w = x.shape[-2:]
  rows, cols = region_slices(h, w, region)
  if rows.stop - rows.start < 3 or cols.stop - cols.start < 3:
    raise UserError(f"the mouth region of a {h}x{w} crop is smaller than 3x3 pixels: "
                    "use larger crops or a larger region")
  m = x[..., rows, cols]
  lap = (m[..., :-2, 1:-1] + m[..., 2:, 1:-1] + m[..., 1:-1, :-2] + m[..., 1:-1, 2:]
         - 4.0 * m[..., 1:-1, 1:-1])
  return lap.var(axis=(-2, -1))


def mouth_detail_ratio(gen, gt, mask=None,
                       region: tuple[float, float, float, float] = MOUTH_REGION) -> jax.Array:
  """How much of the truth's mouth detail the generated frames keep (1 = as sharp, ~0 = flat).

  The ratio of the mean `mouth_detail` of `gen` to that of `gt` over the (masked) frames: a
  ratio of means, so frames with a closed, featureless mouth do not blow it up.

  Args:
    gen: generated face crops.
    gt: their ground truth (or, for a real video, the input frames), same shape and scale.
    mask: which leading-axis entries count (e.g. valid windows), or None for all.

  Shapes:
    gen, gt: (N, ..., H, W, C); mask (N,) bool or None -> scalar float32.
  """
  dg, dt = mouth_detail(gen, region), mouth_detail(gt, region)  # (N, ...)
  w = jnp.ones(dg.shape[:1], jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
  w = jnp.broadcast_to(w.reshape(w.shape + (1,) * (dg.ndim - 1)), dg.shape)
  return (w * dg).sum() / jnp.maximum((w * dt).sum(), 1e-12)


def mouth_colour_shift(gen, gt, mask=None,
                       region: tuple[float, float, float, float] = MOUTH_REGION) -> jax.Array:
  """Mean colour difference gen - gt per channel in the mouth region (a tint shows as a
  channel far from 0 while the others are not; units of the frames, e.g. 0..255).

  Shapes:
    gen, gt: (N, ..., H, W, C); mask (N,) bool or None -> (C,) float32.
  """
  gen, gt = jnp.asarray(gen, jnp.float32), jnp.asarray(gt, jnp.float32)
  rows, cols = region_slices(*gen.shape[-3:-1], region)
  d = (gen - gt)[..., rows, cols, :].mean(axis=(-3, -2))  # (N, ..., C)
  wt = jnp.ones(d.shape[:1], jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
  wt = jnp.broadcast_to(wt.reshape(wt.shape + (1,) * (d.ndim - 1)), d.shape)
  axes = tuple(range(d.ndim - 1))
  return (wt * d).sum(axes) / jnp.maximum(wt.sum(axes), 1.0)


def mouth_strip(rows, n: int = 12, scale: int = 2,
                region: tuple[float, float, float, float] = MOUTH_REGION) -> np.ndarray:
  """A picture of the mouth over time: the `region` of `n` evenly spaced frames side by side,
  one row per stack (e.g. input above, output below), for looking at what `mouth_detail`
  measures. Frames are picked at the same indices in every row; pixels are repeated `scale`
  times (no smoothing, so blur in the picture is blur in the frames).

  Shapes:
    rows: sequence of (T_i, S, S, C) uint8 face crops of one size -> (R*h*scale, n*w*scale, C)
      uint8, h x w the region's size, n capped at min(T_i).
  """
  rows = [np.asarray(r) for r in rows]
  if not rows or any(r.ndim != 4 or r.shape[1:] != rows[0].shape[1:] for r in rows):
    raise UserError("mouth_strip needs one or more (T, S, S, C) stacks of crops of one size")
  t = min(len(r) for r in rows)
  if t == 0 or n < 1:
    raise UserError("mouth_strip needs at least one frame in every row and n >= 1")
  idx = np.unique(np.linspace(0, t - 1, min(n, t)).round().astype(int))
  ys, xs = region_slices(*rows[0].shape[1:3], region)
  out = []
  for r in rows:
    m = r[idx, ys, xs]  # (n, h', w', C)
    out.append(np.concatenate(list(m), axis=1))
  img = np.concatenate(out, axis=0)
  return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1).astype(np.uint8)
