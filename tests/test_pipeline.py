"""The threaded stage pipeline (`runner.pipelined`): same items in the same order as a plain
loop, a stage's error raised unchanged, and no thread left behind on error or early close."""
import threading
import time

import numpy as np
import pytest

from taem_jax.errors import UserError
from taem_jax.synthesis import runner


def _pipeline_threads():
  return [t for t in threading.enumerate() if t.name.startswith("taem-pipeline")]


def test_same_results_in_order_as_a_loop():
  rng = np.random.default_rng(0)
  items = [rng.standard_normal(5) for _ in range(40)]

  def slow_square(x):
    time.sleep(rng.uniform(0, 0.002))  # uneven stage times must not reorder items
    return x * x
  stages = (("square", slow_square), ("sum", np.cumsum), ("neg", np.negative))
  busy = {}
  got = list(runner.pipelined(iter(items), stages, depth=2, busy=busy))
  want = [-np.cumsum(x * x) for x in items]
  seq_busy = {}
  for g, w in zip(runner.sequential(items, stages, seq_busy), want, strict=True):
    np.testing.assert_array_equal(g, w)
  assert set(seq_busy) == {"square", "sum", "neg"}
  assert len(got) == len(want)
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)
  assert set(busy) == {"read", "square", "sum", "neg"} and all(v >= 0 for v in busy.values())
  assert not _pipeline_threads()
  assert list(runner.pipelined([], stages)) == []


@pytest.mark.parametrize("where", ["items", "stage"])
def test_an_error_is_raised_unchanged_and_stops_every_thread(where):
  seen = []

  def items():
    for k in range(100):
      if where == "items" and k == 3:
        raise UserError("bad frame 3")
      yield k

  def stage(k):
    seen.append(k)
    if where == "stage" and k == 3:
      raise UserError("bad frame 3")
    return k
  out = []
  with pytest.raises(UserError, match="^bad frame 3$"):
    for y in runner.pipelined(items(), (("a", stage), ("b", lambda k: k + 1))):
      out.append(y)
  assert out == [1, 2, 3]  # everything before the failing item came through
  assert max(seen) < 3 + 2 * 3  # bounded queues: the source did not run ahead
  assert not _pipeline_threads()


def test_closing_early_stops_the_threads():
  it = runner.pipelined(iter(range(10**6)), (("id", lambda k: k),), depth=2)
  assert [next(it) for _ in range(3)] == [0, 1, 2]
  it.close()
  assert not _pipeline_threads()
