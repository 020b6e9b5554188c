"""What the three corpus builders (GRID, TCD-TIMIT, LRS2) share.

A corpus builder only has to say which clips exist and which split each belongs to
(`list_splits`); this base class runs the front ends (`prepare.FrontEnd`), caches every processed
clip (so an interrupted preparation resumes where it stopped), skips / logs / counts clips that
cannot be used, and writes `array_record` files without TensorFlow.

Feature dict of one example (see `prepare` for how each is made):

    id                 Text      clip id, e.g. "s1/bbaf2n"
    speaker            Text      speaker id
    text               Text      transcript
    phonemes           (L,) int32       ids in the vocabulary stored in the metadata
    durations          (L,) int32       100 fps frames, sum = 4 * n_frames
    mel                (M, 80) float32  Wav2Lip mel, 80 fps, M = 1 + 3.2 * n_frames
    faces              (n_frames,) bytes  JPEG of 96x96x3 BGR face crops
    n_frames           int32            video frames at 25 fps
    speaker_embedding  (D,) float32     D = 128 (dlib) or 512 (ArcFace)
    z_a                (n_frames, D) float32   only in the *_za configs; D = the Wav2Lip's
                                                 latent width (512 at width 1)

Metadata (`builder.info.metadata`, saved as metadata.json next to the data): the phoneme
vocabulary JSON (`vocab`), frame rates, the speaker embedder, the split rule, the number of
skipped clips per reason (`skipped`), and in the *_za configs which Wav2Lip made z_a
(`z_a_target`: {"name", "latent_dim", "fingerprint", "source"}, see
`taem_jax.models.targets.target_record`; training refuses another Wav2Lip against it).

Configs: `dlib` (default), `dlib_za`, `arcface`, `arcface_za`. The `_za` configs need
`wav2lip_dir=` (a converted Wav2Lip checkpoint), `arcface*` need `arcface_path=` (or the
TAEM_JAX_ARCFACE file).

Scaling out: `workers=N` prepares clips in N spawned worker processes (examples still come out
in listing order, and are the same bit for bit); `beam=True` makes `_generate_examples` return an
Apache Beam PTransform, so TFDS runs the build on the Beam runner given by
`tfds.download.DownloadConfig(beam_options=...)` (DirectRunner on one machine, Dataflow / Flink /
Spark on a cluster). Each clip is prepared by the same `ClipPreparer` in every mode.
"""
import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import multiprocessing
import pathlib
import zlib

import numpy as np
import tensorflow_datasets as tfds  # noqa: TID253 - the corpus builders subclass TFDS classes

from taem_jax import rates
from taem_jax.data import prepare
from taem_jax.errors import UserError
from taem_jax.models.targets import DEFAULT_BACKBONE, backbone_class
from taem_jax.text import PhonemeVocab

log = logging.getLogger(__name__)

EMBED_DIMS = {"dlib": 128, "arcface": 512}


@dataclasses.dataclass
class CorpusConfig(tfds.core.BuilderConfig):
  """embedder: speaker embedding kind; with_za: also store Wav2Lip's z_a targets."""
  embedder: str = "dlib"
  with_za: bool = False


CONFIGS = [
    CorpusConfig(name="dlib", description="dlib 128-d speaker embedding, no z_a"),
    CorpusConfig(name="dlib_za", with_za=True,
                 description="dlib 128-d speaker embedding + cached Wav2Lip z_a"),
    CorpusConfig(name="arcface", embedder="arcface",
                 description="ArcFace 512-d speaker embedding (needs an ONNX file), no z_a"),
    CorpusConfig(name="arcface_za", embedder="arcface", with_za=True,
                 description="ArcFace 512-d speaker embedding + cached Wav2Lip z_a"),
]


def features(embedder: str, with_za: bool, z_dim: int = rates.Z_DIM
             ) -> tfds.features.FeaturesDict:
  f = {
      "id": tfds.features.Text(),
      "speaker": tfds.features.Text(),
      "text": tfds.features.Text(),
      "phonemes": tfds.features.Tensor(shape=(None,), dtype=np.int32),
      "durations": tfds.features.Tensor(shape=(None,), dtype=np.int32),
      "mel": tfds.features.Tensor(shape=(None, 80), dtype=np.float32),
      # JPEG bytes: tfds.features.Video/Image need TensorFlow to encode, which is not installed.
      "faces": tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.object_)),
      "n_frames": tfds.features.Scalar(dtype=np.int32),
      "speaker_embedding": tfds.features.Tensor(shape=(EMBED_DIMS[embedder],), dtype=np.float32),
  }
  if with_za:
    f["z_a"] = tfds.features.Tensor(shape=(None, int(z_dim)), dtype=np.float32)
  return tfds.features.FeaturesDict(f)


# -- split helpers ----------------------------------------------------------------------------------

def held_out_per_speaker(clips, fraction: float, seed: int = 0):
  """Seen-speaker split: from every speaker, a fixed fraction of utterances goes to test.

  Utterances of a speaker are sorted by id and permuted with a generator seeded by (seed,
  speaker), so the split depends only on the ids present, not on listing order. A speaker with
  n >= 2 utterances gives round(fraction * n) to test, at least 1 and at most n - 1.

  Returns:
    (train, test) lists of clips.
  """
  by_spk = {}
  for c in clips:
    by_spk.setdefault(c.speaker, []).append(c)
  train, test = [], []
  for spk in sorted(by_spk):
    group = sorted(by_spk[spk], key=lambda c: c.uid)
    n = len(group)
    k = 0 if n < 2 else min(n - 1, max(1, int(round(fraction * n))))
    rng = np.random.default_rng([seed, zlib.crc32(spk.encode("utf-8"))])
    order = rng.permutation(n)
    held = set(order[:k].tolist())
    for i, c in enumerate(group):
      (test if i in held else train).append(c)
  return train, test


def read_split_file(path: pathlib.Path) -> list[str]:
  """Clip ids of a split list: one per line, first whitespace-separated token, blanks skipped."""
  out = []
  for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
    tok = line.split()
    if tok:
      out.append(tok[0])
  return out


def user_splits(manual: pathlib.Path, clips, normalize=None) -> dict | None:
  """Splits from `<manual>/splits/<name>.txt` (clip ids) if that folder exists, else None.

  Lets a user reproduce a published split exactly (e.g. ParaLip's GRID lists) by dropping the
  lists in the corpus folder. Unknown ids are an error (the list does not match the corpus).
  `normalize(entry) -> clip id` maps a corpus's other published list formats onto its ids
  (used for entries that are not ids already).
  """
  folder = manual / "splits"
  if not folder.is_dir():
    return None
  lists = sorted(folder.glob("*.txt"))
  if not lists:
    raise UserError(f"{folder} exists but holds no <split>.txt lists (e.g. train.txt, test.txt)")
  by_id = {c.uid: c for c in clips}
  out = {}
  for p in lists:
    ids = read_split_file(p)
    if normalize is not None:
      ids = [i if i in by_id else normalize(i) for i in ids]
    unknown = [i for i in ids if i not in by_id]
    if unknown:
      raise UserError(f"{p} lists {len(unknown)} clips not found in {manual} (first: "
                      f"{unknown[0]!r}); ids look like {next(iter(by_id), '?')!r}")
    out[p.stem] = [by_id[i] for i in ids]
  return out


# -- the base builder ---------------------------------------------------------------------------------

class CorpusBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the corpus builders. Subclasses set the class attributes and `list_splits`.

  Args (beyond tfds's `data_dir`, `config`, ...):
    wav2lip_dir: converted Wav2Lip checkpoint (required by the *_za configs).
    arcface_path: ArcFace ONNX file (arcface configs; default: TAEM_JAX_ARCFACE / home).
    cache_dir: where processed clips are cached (default `<data_dir>/_prep_cache/<name>/...`).
    detect_stride: face detection stride (frames between detector runs).
    vocab: a `PhonemeVocab` (default: ARPAbet without stress + pauses).
    workers: clips prepared in parallel by this many spawned processes (1: in this process).
    beam: return Beam PTransforms from `_generate_examples` (needs apache-beam and beam_options
      or a beam_runner in the DownloadConfig); `workers` is then the runner's business.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: faces, Wav2Lip mel, phonemes, durations, speaker "
                            "embedding, optional z_a."}
  BUILDER_CONFIGS = CONFIGS
  DEFAULT_CONFIG_NAME = "dlib"
  HOMEPAGE = ""
  SPLIT_RULE = ""

  def __init__(self, *, wav2lip_dir=None, arcface_path=None, cache_dir=None,
               detect_stride: int = 5, vocab=None, workers: int = 1, beam: bool = False,
               backbone: str = DEFAULT_BACKBONE, **kwargs):
    self._wav2lip_dir = str(wav2lip_dir) if wav2lip_dir else None
    self._backbone = backbone_class(backbone).name  # whose encoder makes z_a
    self._arcface_path = str(arcface_path) if arcface_path else None
    self._cache_dir = cache_dir
    self._detect_stride = int(detect_stride)
    self._vocab = vocab if vocab is not None else PhonemeVocab()
    if int(workers) < 1:
      raise UserError(f"workers must be at least 1 (got {workers})")
    self._workers = int(workers)
    self._beam = bool(beam)
    self._pool = None  # WorkerPool while a build with workers > 1 runs
    self._skipped = {}
    self._front = None  # prepare.FrontEnd, built on first use (it may load the Wav2Lip)
    self.listing_skips = {}  # {reason: count} of clips dropped while listing (missing files)
    self.listing_report = {}  # {talker: {...}} filled by builders that report per talker
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)
    if self.builder_config.with_za and not self._wav2lip_dir:
      raise UserError(f"config {self.builder_config.name!r} stores z_a targets: pass "
                      "wav2lip_dir= (a converted Wav2Lip checkpoint folder)")

  def download_and_prepare(self, *args, **kwargs):
    """tfds's download_and_prepare; also stops this build's worker processes at the end."""
    try:
      return super().download_and_prepare(*args, **kwargs)
    finally:
      if self._pool is not None:
        self._pool.close()
        self._pool = None

  # -- tfds hooks --------------------------------------------------------------------------------
  def _front_spec(self) -> prepare.FrontEndSpec:
    return prepare.FrontEndSpec(self._vocab, embedder=self.builder_config.embedder,
                                arcface_path=self._arcface_path, wav2lip_dir=self._wav2lip_dir,
                                detect_stride=self._detect_stride, backbone=self._backbone)

  def _front_end(self) -> prepare.FrontEnd:
    if self._front is None:
      self._front = self._front_spec().build()
    return self._front

  def _z_a_target(self) -> dict | None:
    """The Wav2Lip record of the z_a this build stores (None: no z_a)."""
    if not self.builder_config.with_za or not self._wav2lip_dir:
      return None
    return self._front_end().z_a_target()

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    za = self._z_a_target()
    meta = {
        "vocab": self._vocab.to_json(),
        "fps": rates.VIDEO_FPS,
        "sample_rate": rates.SAMPLE_RATE,
        "mel_fps": rates.MEL_FPS,
        "duration_fps": rates.DURATION_FPS,
        "face_size": rates.FACE_SIZE,
        "face_color": "BGR",
        "embedder": cfg.embedder,
        "embed_dim": EMBED_DIMS[cfg.embedder],
        "with_za": cfg.with_za,
        "z_a_target": za,
        "split_rule": self.SPLIT_RULE,
        "skipped": {},
        "listing_report": {},
    }
    return self.dataset_info_from_configs(
        features=features(cfg.embedder, cfg.with_za,
                          za["latent_dim"] if za else rates.Z_DIM),
        homepage=self.HOMEPAGE or None,
        metadata=tfds.core.MetadataDict(meta),
    )

  def _manual_root(self, dl_manager) -> pathlib.Path:
    # tfds asserts (no message a user can act on) when the folder is missing or empty, so look
    # at the configured path first.
    raw = getattr(dl_manager, "_manual_dir", None)
    if raw is None:
      try:
        raw = dl_manager.manual_dir
      except Exception:  # pylint: disable=broad-except
        raw = None
    if raw is None:
      raise UserError(f"no manual_dir for {self.name}: pass the folder you downloaded "
                      f"(--manual_dir); expected layout:\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    root = pathlib.Path(str(raw))
    if not root.is_dir():
      raise UserError(f"{self.name} manual_dir {root} does not exist or is not a folder; "
                      f"it should hold {self.EXPECTED_SHORT}")
    return root

  def _split_generators(self, dl_manager):
    root = self._manual_root(dl_manager)
    splits = self.list_splits(root)
    front = self._front_end()
    cache = self._cache_path()
    cache.mkdir(parents=True, exist_ok=True)
    self._skipped = {"listing": dict(self.listing_skips)} if self.listing_skips else {}
    if self.listing_report:
      self.info.metadata["listing_report"] = json.loads(json.dumps(self.listing_report))
      for line in report_lines(self.listing_report):
        log.info("%s: %s", self.name, line)
    for reason, n in self.listing_skips.items():
      log.warning("%s: %d clips skipped while listing the corpus (%s)", self.name, n, reason)
    empty = [name for name, clips in splits.items() if not clips]
    if empty:  # tfds cannot write a split without examples
      log.warning("%s: split(s) %s have no clips and are left out", self.name, ", ".join(empty))
    return {name: self._generate_examples(clips, front, cache, name)
            for name, clips in splits.items() if clips}

  def _generate_examples(self, clips, front, cache, split):
    preparer = ClipPreparer(self._front_spec(), str(cache), split,
                            keep_za=self.builder_config.with_za)
    if self._beam:
      self._skipped.setdefault(split, {})  # filled from the workers' counters at the end
      # Lazy: apache-beam is optional (requirements-beam.txt), needed only for Beam builds.
      import apache_beam as beam
      return beam.Create(list(clips)) | beam.FlatMap(preparer)
    return self._generate_locally(clips, front, preparer)

  def _generate_locally(self, clips, front, preparer):
    counts = self._skipped.setdefault(preparer.split, {})
    if self._workers > 1:
      if self._pool is None:
        self._pool = WorkerPool(self._workers)
      results = parallel_prepare(preparer, clips, self._pool)
    else:
      cache = pathlib.Path(preparer.cache)
      results = ((clip, prepare.prepare_clip(front, cache, clip)) for clip in clips)
    for clip, (ex, skip) in results:
      if skip is not None:
        counts[skip[0]] = counts.get(skip[0], 0) + 1
        log.warning("%s: skipping %s (%s): %s", self.name, clip.uid, skip[0], skip[1])
        self.info.metadata["skipped"] = json.loads(json.dumps(self._skipped))
        continue
      yield clip.uid, preparer.strip(ex)
    self.info.metadata["skipped"] = json.loads(json.dumps(self._skipped))

  def _process_pipeline_result(self, pipeline_result) -> None:
    """After a Beam build: the skip counts the workers reported, into the metadata."""
    # Lazy: only Beam builds get here, and apache-beam is optional.
    from apache_beam.metrics.metric import MetricsFilter
    res = pipeline_result.metrics().query(MetricsFilter().with_namespace(SKIP_NAMESPACE))
    for c in res["counters"]:
      split, _, kind = c.key.metric.name.partition(":")
      n = int(c.committed if c.committed is not None else c.attempted)
      if n:
        counts = self._skipped.setdefault(split, {})
        counts[kind] = counts.get(kind, 0) + n
    self.info.metadata["skipped"] = json.loads(json.dumps(self._skipped))

  # -- helpers -----------------------------------------------------------------------------------
  def _cache_path(self) -> pathlib.Path:
    cfg = self.builder_config
    key = [str(self.VERSION), cfg.name, self._arcface_path, self._wav2lip_dir,
           self._vocab.to_json(), self._detect_stride]
    za = self._z_a_target()
    if za:  # a Wav2Lip retrained in place must not reuse the old z_a
      key.append(za["fingerprint"])
    key = json.dumps(key)
    tag = hashlib.sha1(key.encode()).hexdigest()[:10]
    base = pathlib.Path(self._cache_dir) if self._cache_dir else (
        pathlib.Path(str(self.data_dir_root)) / "_prep_cache" / self.name)
    return base / f"{cfg.name}-{tag}"

  @property
  def skipped(self) -> dict:
    """{split: {reason: count}} of the last preparation."""
    return self._skipped

  EXPECTED_SHORT = "the corpus files"

  def list_splits(self, root: pathlib.Path) -> dict:
    """{split name: [prepare.Clip]} found under the manual folder `root` (UserError if not).

    Clips whose files are incomplete are left out and counted in `self.listing_skips`.
    """
    raise NotImplementedError

  def count_listing_skip(self, reason: str, n: int = 1) -> None:
    self.listing_skips[reason] = self.listing_skips.get(reason, 0) + n


# -- preparing clips in other processes ------------------------------------------------------------

SKIP_NAMESPACE = "taem_jax.skipped"  # Beam counters "<split>:<reason>" of skipped clips

_FRONT_ENDS = {}  # FrontEndSpec -> FrontEnd, one per process (models load once per worker)


def shared_front_end(spec: prepare.FrontEndSpec) -> prepare.FrontEnd:
  """This process's `FrontEnd` for `spec` (built on first use)."""
  if spec not in _FRONT_ENDS:
    _FRONT_ENDS[spec] = spec.build()
  return _FRONT_ENDS[spec]


@dataclasses.dataclass(frozen=True)
class ClipPreparer:
  """Prepares (or reads from the cache) one clip in whatever process it is sent to.

  Picklable: pool workers and Beam workers receive it and build their own front end from
  `spec`. Called on a clip (Beam's FlatMap) it yields the (uid, example) to write, or nothing
  for a skipped clip (counted in Beam's counter `<split>:<reason>`).
  """
  spec: prepare.FrontEndSpec
  cache: str
  split: str
  keep_za: bool = False

  def result(self, clip: prepare.Clip):
    """`prepare.prepare_clip` with this process's front end: (example, None) | (None, skip)."""
    cache = pathlib.Path(self.cache)
    cache.mkdir(parents=True, exist_ok=True)  # a cluster worker may not have the folder yet
    return prepare.prepare_clip(shared_front_end(self.spec), cache, clip)

  def strip(self, ex: dict) -> dict:
    """Drops a cached z_a that this config does not store."""
    if "z_a" in ex and not self.keep_za:
      return {k: v for k, v in ex.items() if k != "z_a"}
    return ex

  def __call__(self, clip: prepare.Clip):
    ex, skip = self.result(clip)
    if skip is not None:
      # Lazy: only Beam calls this, and apache-beam is optional.
      from apache_beam.metrics import Metrics
      Metrics.counter(SKIP_NAMESPACE, f"{self.split}:{skip[0]}").inc()
      log.warning("skipping %s (%s): %s", clip.uid, skip[0], skip[1])
      return
    yield clip.uid, self.strip(ex)


def _cached_result(cache: pathlib.Path, key: str):
  ex = prepare.load_cached(cache, key)
  if ex is not None:
    return ex, None
  skip = prepare.load_skip(cache, key)
  return (None, skip) if skip is not None else None


class WorkerPool:
  """Spawned processes that prepare clips; started on first need, shared by all splits.

  Processes are spawned, not forked: a fork of a process running JAX, dlib or onnxruntime
  threads can hang. Each worker builds its front end once (`shared_front_end`) and keeps it.
  """

  def __init__(self, workers: int):
    self.workers = int(workers)
    self._pool = None

  def submit(self, fn, *args) -> concurrent.futures.Future:
    if self._pool is None:
      self._pool = concurrent.futures.ProcessPoolExecutor(
          max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))
    return self._pool.submit(fn, *args)

  def close(self) -> None:
    if self._pool is not None:
      self._pool.shutdown(wait=True, cancel_futures=True)
      self._pool = None


def parallel_prepare(preparer: ClipPreparer, clips, pool: WorkerPool, window: int | None = None):
  """Yields (clip, preparer.result(clip)) in the order of `clips`, prepared by `pool`'s workers.

  Clips already in the cache are read here and never sent out (a finished build restarts no
  workers). At most `window` (default 4 x workers) clips are held between submission and
  yield, so memory stays bounded however long the listing.
  """
  window = int(window or 4 * pool.workers)
  cache = pathlib.Path(preparer.cache)
  pending = collections.deque()  # (clip, result or Future), in listing order
  try:
    for clip in clips:
      hit = _cached_result(cache, clip.cache_id)
      pending.append((clip, pool.submit(preparer.result, clip) if hit is None else hit))
      while len(pending) >= window:
        yield _resolve(pending.popleft())
    while pending:
      yield _resolve(pending.popleft())
  finally:
    for _, r in pending:  # the consumer stopped early: do not prepare the rest
      if isinstance(r, concurrent.futures.Future):
        r.cancel()


def _resolve(item):
  clip, r = item
  if not isinstance(r, concurrent.futures.Future):
    return clip, r
  try:
    return clip, r.result()
  except concurrent.futures.BrokenExecutor:  # a worker was killed (e.g. by the OOM killer)
    raise UserError(f"a worker process died while preparing {clip.uid} (out of memory?): run "
                    "the same command again with fewer --workers; finished clips are cached"
                    ) from None


def require_dir(path: pathlib.Path, what: str) -> pathlib.Path:
  if not path.is_dir():
    raise UserError(f"expected {what} at {path}, but it is missing")
  return path


def report_lines(report: dict) -> list[str]:
  """One line per talker of a builder's listing report (kept, skipped by reason, recovered)."""
  lines = []
  for spk, r in report.items():
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(r.get("skipped", {}).items())) or "none"
    line = f"{spk}: kept {r.get('kept', 0)}, skipped {skipped}"
    if r.get("recovered_from"):
      line += f"; alignments recovered from {', '.join(r['recovered_from'])}"
    lines.append(line)
  return lines

