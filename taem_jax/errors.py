"""The one exception type for user mistakes.

Library code raises `UserError` with a single line that says what was wrong and what to do.
Command-line entry points catch it (see `cli_main`) and print it without a stack trace.
"""
import functools
import sys


class UserError(Exception):
  """A problem with the user's input (file, text, checkpoint, flag), not a bug."""


def cli_main(fn):
  """Wraps a CLI `main(argv)` so that a UserError prints one line and exits with status 2."""

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    try:
      return fn(*args, **kwargs)
    except UserError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
    except KeyboardInterrupt:
      print("interrupted", file=sys.stderr)
      sys.exit(130)

  return wrapper
