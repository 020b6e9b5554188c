"""Speaker embeddings: dlib's descriptor (default) and ArcFace through onnxruntime."""
import hashlib
import pathlib
import warnings

import cv2
import numpy as np
import pytest
import skimage.data

from taem_jax import face, offline
from taem_jax.errors import UserError


def astronaut_bgr():
  return np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])


def insightface_image(name):
  import insightface
  img = cv2.imread(str(pathlib.Path(insightface.__file__).parent / "data" / "images" / name))
  assert img is not None
  return img


def random_arcface_onnx(path, seed=0, size=112, dim=512):
  """A random ArcFace-shaped model: input [N, 3, size, size] -> [N, dim]."""
  import onnx
  from onnx import TensorProto, helper, numpy_helper
  rng = np.random.default_rng(seed)
  w = numpy_helper.from_array(rng.normal(0, 0.1, (8, 3, 3, 3)).astype(np.float32), "w")
  m = numpy_helper.from_array(rng.normal(0, 0.1, (8, dim)).astype(np.float32), "m")
  nodes = [
      helper.make_node("Conv", ["input.1", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
      helper.make_node("Relu", ["c"], ["r"]),
      helper.make_node("GlobalAveragePool", ["r"], ["g"]),
      helper.make_node("Flatten", ["g"], ["f"]),
      helper.make_node("MatMul", ["f", "m"], ["683"]),
  ]
  graph = helper.make_graph(
      nodes, "arcface_like",
      [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, size, size])],
      [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", dim])], [w, m])
  model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
  model.ir_version = 8
  onnx.save(model, str(path))
  return path


@pytest.fixture(scope="module")
def dlib_embedder():
  return face.SpeakerEmbedder()


def test_dlib_descriptor_separates_people(dlib_embedder):
  assert dlib_embedder.kind == "dlib" and dlib_embedder.dim == 128
  img = astronaut_bgr()
  a = dlib_embedder.embed(img)
  mirror = dlib_embedder.embed(np.ascontiguousarray(img[:, ::-1]))
  hanks = dlib_embedder.embed(insightface_image("Tom_Hanks_54745.png"))
  assert a.shape == (128,) and a.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(a), 1.0, rtol=1e-5)
  same = np.linalg.norm(a - mirror)
  other = np.linalg.norm(a - hanks)
  # Measured on these photos: raw distances 0.20 (mirror) and 0.68-0.76 (another person); after L2
  # normalisation (raw norms are ~1.46) about 0.14 and 0.52.
  assert same < 0.25 < 0.4 < other


def test_dlib_embedding_of_given_face_matches_detection(dlib_embedder):
  img = astronaut_bgr()
  track = face.track_faces(img, dlib_embedder.detector)
  np.testing.assert_allclose(dlib_embedder.embed(img, track.face(0)), dlib_embedder.embed(img),
                             atol=1e-5)


def test_no_face_is_a_user_error(dlib_embedder):
  with pytest.raises(UserError, match="no face"):
    dlib_embedder.embed(np.ascontiguousarray(skimage.data.chelsea()[..., ::-1]))


def test_arcface_crop_matches_insightface_alignment(dlib_embedder):
  offline.no_insightface_downloads()
  from insightface.utils import face_align
  img = astronaut_bgr()
  pts = dlib_embedder.detector.detect(img)[0].landmarks
  mine = face.arcface_crop(img, pts)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # skimage's `estimate` deprecation
    ref = face_align.norm_crop(img, face.five_points(pts), image_size=112)
  assert mine.shape == (112, 112, 3)
  assert np.abs(mine.astype(int) - ref).max() <= 2


def test_five_points_from_68():
  pts = np.arange(136, dtype=np.float32).reshape(68, 2)
  five = face.five_points(pts)
  np.testing.assert_allclose(five[0], pts[36:42].mean(0))
  np.testing.assert_allclose(five[1], pts[42:48].mean(0))
  np.testing.assert_array_equal(five[2:], pts[[30, 48, 54]])


def test_arcface_onnx_embedding(tmp_path, dlib_embedder):
  path = random_arcface_onnx(tmp_path / "arcface.onnx")
  emb = face.SpeakerEmbedder("arcface", path, detector=dlib_embedder.detector)
  assert emb.kind == "arcface" and emb.dim == 512
  img = astronaut_bgr()
  v = emb.embed(img)
  assert v.shape == (512,) and v.dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(v), 1.0, rtol=1e-5)
  # Same as insightface's own ArcFace wrapper on the same aligned crop (RGB, (x-127.5)/127.5).
  offline.no_insightface_downloads()
  from insightface.model_zoo import model_zoo
  ref_model = model_zoo.get_model(str(path), providers=["CPUExecutionProvider"])
  crop = face.arcface_crop(img, emb.detector.detect(img)[0].landmarks)
  ref = ref_model.get_feat(crop).reshape(-1)
  np.testing.assert_allclose(v, ref / np.linalg.norm(ref), atol=1e-5)
  # Batched crops give the same rows.
  both = emb.embed_crops(np.stack([crop, crop[:, ::-1]]))
  assert both.shape == (2, 512)
  np.testing.assert_allclose(both[0], v, atol=1e-5)


def test_describe_and_compatibility(tmp_path, dlib_embedder):
  path = random_arcface_onnx(tmp_path / "a.onnx", seed=0)
  other = random_arcface_onnx(tmp_path / "b.onnx", seed=1)
  arc = face.SpeakerEmbedder("arcface", path, detector=dlib_embedder.detector)
  meta = arc.describe()
  assert meta["kind"] == "arcface" and meta["dim"] == 512
  assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
  arc.check_compatible(meta)
  arc.check_compatible(None)  # nothing recorded: nothing to check
  d = dlib_embedder.describe()
  assert d["kind"] == "dlib" and d["dim"] == 128 and len(d["sha256"]) == 64
  dlib_embedder.check_compatible(d)
  with pytest.raises(UserError, match="trained with dlib"):
    arc.check_compatible(d)
  with pytest.raises(UserError, match="trained with arcface"):
    dlib_embedder.check_compatible(meta)
  with pytest.raises(UserError, match="same model file"):
    face.SpeakerEmbedder("arcface", other, detector=dlib_embedder.detector).check_compatible(meta)


def test_arcface_errors(tmp_path, monkeypatch):
  monkeypatch.setenv("TAEM_JAX_ARCFACE", str(tmp_path / "missing.onnx"))
  with pytest.raises(UserError, match="ArcFace ONNX file not found"):
    face.SpeakerEmbedder("arcface")
  bad = tmp_path / "bad.onnx"
  bad.write_bytes(b"not a model")
  with pytest.raises(UserError, match="cannot load"):
    face.SpeakerEmbedder("arcface", bad)
  wrong = random_arcface_onnx(tmp_path / "wrong.onnx", size=64)
  with pytest.raises(UserError, match="not an ArcFace model"):
    face.SpeakerEmbedder("arcface", wrong)
  with pytest.raises(UserError, match="'dlib' or 'arcface'"):
    face.SpeakerEmbedder("vggface")
  with pytest.raises(UserError, match="dlib_face_recognition_resnet_model_v1.dat"):
    face.SpeakerEmbedder("dlib", models_dir=tmp_path)


def test_embedding_of_a_wav2lip_crop(dlib_embedder):
  # A 96x96 crop fills the image, leaving HOG no margin; the embedder retries with a border.
  img = astronaut_bgr()
  track = face.track_faces(img, dlib_embedder.detector)
  crop = face.crop_face(img, track.crop_boxes()[0])
  assert dlib_embedder.detector.detect(crop) == []
  v = dlib_embedder.embed(crop)
  hanks = dlib_embedder.embed(insightface_image("Tom_Hanks_54745.png"))
  full = dlib_embedder.embed(img)
  assert np.linalg.norm(v - full) < 0.3 < np.linalg.norm(v - hanks)
