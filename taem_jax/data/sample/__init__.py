"""The generated sample corpus: GRID-grammar sentences, espeak-ng voices, animated photos.

Entry point: `generate.generate_corpus(out_dir, generate.SampleCorpusConfig(...))`, or the CLI
`experiments/make_sample_corpus.py`. The result is labelled GENERATED_SAMPLE_CORPUS.txt and is
read by the GRID builder unchanged; it is never the GRID corpus.
"""
