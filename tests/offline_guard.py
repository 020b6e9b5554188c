"""Runs a script with every non-loopback network access recorded and refused.

Usage: python tests/offline_guard.py SCRIPT.py [args]   (used by tests/test_offline.py)

Third-party code often swallows network errors (nltk.download prints and returns), so a guard
that only raised would miss them: every attempt is recorded and the process exits 3 at the end
if there was any, listing them.
"""
import atexit
import ipaddress
import os
import runpy
import socket
import sys

ATTEMPTS = []


def _is_local(host):
  if host in (None, "", "localhost"):
    return True
  try:
    return ipaddress.ip_address(host).is_loopback
  except ValueError:
    return False


def _host_of(address):
  if isinstance(address, tuple) and address:
    return address[0]
  return None  # AF_UNIX paths are local


def _guarded(name, real):
  def wrapper(*args, **kwargs):
    host = args[0] if name == "getaddrinfo" else _host_of(args[1] if len(args) > 1 else None)
    if not _is_local(host):
      ATTEMPTS.append(f"{name}({host!r})")
      raise OSError(f"network disabled by offline_guard: {name}({host!r})")
    return real(*args, **kwargs)
  return wrapper


socket.getaddrinfo = _guarded("getaddrinfo", socket.getaddrinfo)
socket.socket.connect = _guarded("connect", socket.socket.connect)
socket.socket.connect_ex = _guarded("connect_ex", socket.socket.connect_ex)


@atexit.register
def _report():
  if ATTEMPTS:
    sys.stderr.write("offline_guard: network attempts: " + "; ".join(ATTEMPTS) + "\n")
    sys.stderr.flush()
    os._exit(3)


if __name__ == "__main__":
  script = sys.argv[1]
  sys.argv = sys.argv[1:]
  runpy.run_path(script, run_name="__main__")
