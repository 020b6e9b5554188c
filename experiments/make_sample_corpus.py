"""Generates the sample corpus (GRID grammar, espeak-ng voices, animated photos) in GRID's layout.

    .venv/bin/python experiments/make_sample_corpus.py --out data/sample_corpus
    .venv/bin/python experiments/make_sample_corpus.py --out /tmp/tiny --speakers 2 --utterances 3
    .venv/bin/python experiments/make_sample_corpus.py --out data/sample16 --photos all \
        --speakers 16 --utterances 30 --held_out_identities 3

The default (8 speakers x 50 utterances) takes a few minutes on a 2-core CPU; re-running the same
command completes an interrupted run. The folder is labelled GENERATED_SAMPLE_CORPUS.txt: it is
not the GRID corpus. Build it into a TFDS dataset with
`experiments/build_dataset.py --dataset grid --manual_dir <out> --data_dir <tfds dir>`.
"""
import argparse
import sys

from tqdm import tqdm

from taem_jax.data.sample.generate import SampleCorpusConfig, generate_corpus
from taem_jax.errors import cli_main


def parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--out", required=True, help="output folder (created; resumable)")
  p.add_argument("--speakers", type=int, default=8, help="number of speakers")
  p.add_argument("--utterances", type=int, default=50, help="utterances per speaker")
  p.add_argument("--seed", type=int, default=0, help="random seed (everything follows from it)")
  p.add_argument("--frame_size", type=int, default=192, help="square frame side, pixels")
  p.add_argument("--photos", choices=("packaged", "all"), default="packaged",
                 help="faces from photos inside installed packages (8 people), or also from "
                      "those `bash setup.sh --test` fetches (all: 16 faces of 15 people)")
  p.add_argument("--held_out_identities", type=int, default=0,
                 help="identities written to splits/test.txt only (0: no split lists; the "
                      "builder then holds out a share of each speaker's utterances)")
  return p.parse_args(argv)


@cli_main
def main(argv=None):
  args = parse_args(sys.argv[1:] if argv is None else argv)
  cfg = SampleCorpusConfig(speakers=args.speakers, utterances=args.utterances, seed=args.seed,
                           frame_size=args.frame_size, photos=args.photos,
                           held_out_identities=args.held_out_identities)
  bar = tqdm(total=cfg.speakers * cfg.utterances, unit="utt", desc="sample corpus")

  def progress(done, total):
    del total
    bar.update(done - bar.n)

  stats = generate_corpus(args.out, cfg, progress=progress)
  bar.close()
  print(f"{args.out}: generated {stats.generated} utterances "
        f"({stats.seconds_per_utterance:.2f} s each), {stats.skipped_existing} already there")


if __name__ == "__main__":
  main()
