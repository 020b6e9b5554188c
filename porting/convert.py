"""CLI: `python -m porting.convert --src FILE --dst DIR [--family auto|...]` (see converter.py).

`porting.convert(src, dst_dir, family="auto")` is the library call. Importing this submodule
rebinds the attribute `porting.convert` to the module, so the module is made callable with
the same signature: both spellings keep working.
"""
import sys
import types

from porting.converter import convert, main


class _CallableModule(types.ModuleType):

  def __call__(self, *args, **kwargs):
    return convert(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
  main()
