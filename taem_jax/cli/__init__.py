"""Console scripts: argument parsing and printing for the taem-* commands."""
