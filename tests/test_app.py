"""The web app in a real browser: headless Chromium (Playwright) against `taem-app` on loopback.

One server per module: experiments/app.py with the committed demo models, run under
tests/offline_guard.py, so any network access by the server fails the last test; the browser's
requests are recorded too and must all go to the loopback server. Faces are a real photo shipped
in an installed package (skimage's astronaut) and a blank image. A screenshot of each finished
page is saved under out/test-artifacts/.
"""
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import cv2
import numpy as np
import pytest

from taem_jax import video
from taem_jax.cli import app
from taem_jax.data.sample import portraits
from taem_jax.errors import UserError
from taem_jax.face import FaceDetector

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM = pathlib.Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "out" / "test-artifacts"
# Flags that work as root on a closed network; Playwright adds --headless and its own profile.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
START_S = 300  # server start: JAX import + loading the demo models on a busy 2-core box
FIRST_S = 240  # the first generation compiles the models
NEXT_S = 120
MAX_UPLOAD_MB = 2



# -- without a browser ------------------------------------------------------------------------

def test_importing_the_cli_package_does_not_import_gradio():
  r = subprocess.run([sys.executable, "-c", "import sys, taem_jax.cli, taem_jax.cli.app; "
                      "print('gradio' in sys.modules)"], capture_output=True, text=True,
                     cwd=ROOT, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  assert r.stdout.strip() == "False"


def test_progress_maps_stages_onto_the_bar():
  calls = []
  bridge = app.Progress(lambda value, desc, unit: calls.append((value, desc, unit)))
  bridge("detect", 1, 1)
  bridge("render", 8, 20)
  bridge("render", 8, 20)
  bridge("render", 8, 20)
  bridge("text", 1, None)
  assert calls == [((1, 1), "face detection", "frames"),
                   ((8, 20), "generating and encoding frames", "frames"),
                   ((16, 20), "generating and encoding frames", "frames"),
                   ((20, 20), "generating and encoding frames", "frames"),
                   ((1, None), "text -> latents (TAEM)", "chunks")]


def test_request_folders_are_deleted_after_the_time_limit(tmp_path):
  outputs = app.Outputs(tmp_path, keep_s=600)
  try:
    old, new = outputs.new(), outputs.new()
    assert old != new and old.parent == new.parent == tmp_path / "requests"
    (old / "say.mp4").write_bytes(b"x")
    os.utime(old, (time.time() - 601, time.time() - 601))
    assert outputs.sweep() == 1
    assert not old.exists() and new.is_dir()
  finally:
    outputs.close()


class _FailingSynth:
  def __init__(self, error):
    self.error = error

  def synthesize(self, face, out, **kwargs):
    del kwargs
    pathlib.Path(out).write_bytes(b"partial")
    raise self.error


def test_handler_errors_are_one_line_and_leave_no_files(tmp_path):
  uploads = tmp_path / "gradio"
  outputs = app.Outputs(tmp_path, keep_s=600)
  face = uploads / "0123abcd" / "blank.png"
  try:
    for error, want in (
        (UserError(f"no face found in any of the 1 frame(s) of the face image {face}: x"),
         "error: no face found in any of the 1 frame(s) of the face image blank.png: x"),
        (RuntimeError("boom"), "error: internal error (RuntimeError: boom); the server log has "
                               "the details")):
      models = [app.ModelSet("m", _FailingSynth(error), "")]
      handlers = app.Handlers(models, outputs, uploads)
      out, status = handlers.lipsync("m", str(face), "speech.wav")
      assert out is None and status == want
      assert list((tmp_path / "requests").iterdir()) == []
    out, status = handlers.lipsync("m", None, "speech.wav")
    assert status == "error: no face: upload an image or a video, or pick a sample face"
    out, status = handlers.say("other", str(face), "Hi.", False, None)
    assert status == "error: unknown model 'other'; reload the page"
  finally:
    outputs.close()


# -- in the browser ---------------------------------------------------------------------------

def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Server:
  """experiments/app.py in a subprocess under the offline guard."""

  def __init__(self, log: pathlib.Path):
    self.port = _free_port()
    self.url = f"http://127.0.0.1:{self.port}/"
    self.log_path = log
    self._log = open(log, "w")  # pylint: disable=consider-using-with
    self.proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "offline_guard.py"),
         str(ROOT / "experiments" / "app.py"), "--port", str(self.port), "--keep_minutes", "30",
         "--max_upload_mb", str(MAX_UPLOAD_MB)],
        cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
        # The demo models are small: XLA's optimisation passes cost more than they save here.
        env=dict(os.environ, JAX_DISABLE_MOST_OPTIMIZATIONS="true"))
    self._ready = False

  def log(self) -> str:
    self._log.flush()
    return self.log_path.read_text(errors="replace")

  def wait_ready(self) -> None:
    if self._ready:
      return
    t_end = time.monotonic() + START_S
    while time.monotonic() < t_end:
      if self.proc.poll() is not None:
        raise AssertionError(f"the app exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
      try:
        with urllib.request.urlopen(self.url, timeout=5) as r:
          if r.status == 200:
            self._ready = True
            return
      except OSError:
        pass
      time.sleep(1.0)
    raise AssertionError(f"the app did not answer in {START_S} s:\n{self.log()[-4000:]}")

  def stop(self) -> int:
    if self.proc.poll() is None:
      self.proc.send_signal(signal.SIGINT)  # gradio closes its server on KeyboardInterrupt
      try:
        self.proc.wait(60)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait(30)
    self._log.close()
    return self.proc.returncode


@pytest.fixture(scope="module")
def media(tmp_path_factory):
  root = tmp_path_factory.mktemp("app_media")
  portrait = portraits.make_portraits(1, 160, np.random.default_rng(0), FaceDetector())[0]
  cv2.imwrite(str(root / "face.png"), portrait.image)
  cv2.imwrite(str(root / "blank.png"), np.full((120, 120, 3), 200, np.uint8))
  return root


@pytest.fixture(scope="module")
def sync_api():
  api = pytest.importorskip(
      "playwright.sync_api", reason="playwright is not installed (bash setup.sh --test)")
  if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
                "(bash setup.sh --test installs it)")
  return api


@pytest.fixture(scope="module")
def server(sync_api, tmp_path_factory):
  """The app, starting (the browser and the media are made while it loads its models)."""
  del sync_api  # only where the browser tests can run
  srv = Server(tmp_path_factory.mktemp("app_server") / "server.log")
  try:
    yield srv
  finally:
    srv.stop()


@pytest.fixture(scope="module")
def browser(sync_api, server):
  del server  # started first: it takes longest
  with sync_api.sync_playwright() as pw:
    b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
    try:
      yield b
    finally:
      b.close()


@pytest.fixture
def open_page(server, browser, media):
  """open_page() -> a new page on the app; every request it makes is checked to be local."""
  del media  # made while the server loads its models
  contexts, requests = [], []

  def make():
    server.wait_ready()
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    ctx.on("request", lambda r: requests.append(r.url))
    contexts.append(ctx)
    page = ctx.new_page()
    page.goto(server.url, wait_until="domcontentloaded")
    page.locator("#say-generate").wait_for(timeout=60_000)
    return page

  yield make
  for ctx in contexts:
    ctx.close()
  remote = [u for u in requests if urllib.parse.urlsplit(u).scheme in ("http", "https", "ws",
                                                                       "wss")
            and urllib.parse.urlsplit(u).hostname != "127.0.0.1"]
  assert not remote, f"the page reached beyond the app: {remote[:5]}"


def _say(page, face: pathlib.Path, text: str, speech: bool = True) -> None:
  page.locator("#say-face input[type=file]").set_input_files(str(face))
  page.locator("#say-preview img").wait_for(timeout=60_000)  # the upload is done
  page.locator("#say-text textarea").fill(text)
  box = page.locator("#say-speech input[type=checkbox]")
  if box.is_checked() != speech:
    box.click()
  _generate(page)


def _generate(page) -> None:
  """Clicks Generate (the page empties the status first, then shows this request's line)."""
  page.locator("#say-status").evaluate("el => el.dataset.before = "
                                       "el.querySelector('textarea').value")
  page.locator("#say-generate").click()


def _status(page, timeout_s: float) -> str:
  """The status line of the last Generate click once that request has finished."""
  field = page.locator("#say-status textarea")
  before = page.locator("#say-status").get_attribute("data-before")
  t_end = time.monotonic() + timeout_s
  while time.monotonic() < t_end:
    value = field.input_value()
    if value.startswith(("wrote", "error")) and value != before:
      return value
    page.wait_for_timeout(250)
  raise AssertionError(f"no result in {timeout_s} s; status {field.input_value()!r}")


def _fetch_video(page, server, dest: pathlib.Path) -> pathlib.Path:
  el = page.locator("#say-video video")
  el.wait_for(timeout=30_000)
  src = el.get_attribute("src")
  assert src, "the video element has no source"
  with urllib.request.urlopen(urllib.parse.urljoin(server.url, src), timeout=60) as r:
    dest.write_bytes(r.read())
  return dest


def _played_seconds(page) -> float:
  """The duration the browser itself decoded from the video element (it plays the file)."""
  page.wait_for_function("""() => { const v = document.querySelector('#say-video video');
                                    return v && (v.error || v.readyState >= 1); }""",
                         timeout=30_000)
  err = page.evaluate("() => document.querySelector('#say-video video').error?.code ?? null")
  assert err is None, f"the browser cannot play the video (MediaError {err})"
  return float(page.evaluate("() => document.querySelector('#say-video video').duration"))


def _shot(page, name: str) -> pathlib.Path:
  ARTIFACTS.mkdir(parents=True, exist_ok=True)
  path = ARTIFACTS / name
  page.screenshot(path=str(path), full_page=True)
  return path


def _mouth_vs_upper_motion(frames: np.ndarray) -> tuple[float, float]:
  """Mean frame-to-frame change (grey levels) in the lower and the upper half of the face box
  found in the first frame. Shapes: frames (T, H, W, 3) uint8."""
  faces = FaceDetector().detect(frames[0])
  assert faces, "no face in the output video"
  x1, y1, x2, y2 = np.round(max(faces, key=lambda f: f.box[2] - f.box[0]).box).astype(int)
  x1, y1 = max(0, x1), max(0, y1)
  mid = (y1 + y2) // 2
  diff = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=-1)
  return float(diff[:, mid:y2, x1:x2].mean()), float(diff[:, y1:mid, x1:x2].mean())


def test_say_text_plays_an_mp4_with_a_moving_mouth(open_page, server, media, tmp_path):
  page = open_page()
  _say(page, media / "face.png", "Hello, how are you?", speech=True)
  status = _status(page, FIRST_S)
  assert status.startswith("wrote say.mp4 ("), status
  n = int(status.split("(", 1)[1].split()[0])
  out = _fetch_video(page, server, tmp_path / "say.mp4")
  info = video.probe(out)
  assert (info.video_codec, info.fps, info.has_audio) == ("h264", 25.0, True), info
  frames = np.concatenate(list(video.iter_frames(out)))
  assert frames.shape == (n, 160, 160, 3), frames.shape
  assert 0.8 <= n / 25 <= 4.0, f"{n} frames for a four-word sentence"
  assert abs(_played_seconds(page) - n / 25) < 0.15
  lower, upper = _mouth_vs_upper_motion(frames)
  # Measured: ~0.34 vs ~0.006 grey levels per frame (only the generated mouth moves).
  assert lower > 0.1 and lower > 5 * upper, (lower, upper)
  _shot(page, "app_say_text.png")
  cv2.imwrite(str(ARTIFACTS / "app_say_frames.png"),  # every 4th frame, for a person to look at
              np.concatenate(list(frames[::4][:12]), axis=1))


def test_faceless_image_shows_the_error_and_the_next_request_works(open_page, server, media):
  page = open_page()
  _say(page, media / "blank.png", "Good morning.", speech=False)
  status = _status(page, NEXT_S)
  assert status.startswith("error: no face found in any of the 1 frame(s) of the face image "
                           "blank.png"), status
  assert "\n" not in status and "Traceback" not in page.content()
  assert page.locator("#say-video video").count() == 0
  _shot(page, "app_no_face_error.png")
  # The same page again, with the first bundled sample face (a photo an installed package ships).
  page.locator("#say-face button[aria-label='Clear']").click()
  page.locator("#say-samples img").first.click()
  page.wait_for_function("""() => { const t = document.querySelector('#say-face').innerText;
                                    return t.includes('KB') && !t.includes('blank'); }""",
                         timeout=30_000)
  _generate(page)
  status = _status(page, NEXT_S)
  assert status.startswith("wrote say.mp4"), status
  page.locator("#say-video video").wait_for(timeout=30_000)
  assert "Traceback" not in server.log()


def test_three_requests_at_once_all_complete(open_page, server, media, tmp_path):
  pages = [open_page() for _ in range(3)]
  # Sentences of about the length of the earlier ones: the compiled shapes are reused.
  texts = ["Thank you very much.", "See you again soon.", "Good evening to you."]
  for page, text in zip(pages, texts):
    page.locator("#say-face input[type=file]").set_input_files(str(media / "face.png"))
    page.locator("#say-preview img").wait_for(timeout=60_000)
    page.locator("#say-text textarea").fill(text)
    page.locator("#say-speech input[type=checkbox]").uncheck()
  for page in pages:  # all three are queued before the first one is done
    _generate(page)
  for k, page in enumerate(pages):
    status = _status(page, 3 * NEXT_S)
    assert status.startswith("wrote say.mp4"), (k, status)
    out = _fetch_video(page, server, tmp_path / f"say{k}.mp4")
    assert video.probe(out).n_frames == int(status.split("(", 1)[1].split()[0])
  _shot(pages[-1], "app_three_at_once.png")


def test_uploads_over_the_limit_are_refused(open_page, server):
  page = open_page()
  sizes = {}
  for name, n in (("small.png", 1 << 20), ("big.png", (MAX_UPLOAD_MB << 20) + 1)):
    r = page.request.post(server.url + "gradio_api/upload", multipart={
        "files": {"name": name, "mimeType": "image/png", "buffer": b"\0" * n}})
    sizes[name] = r.status
  assert sizes == {"small.png": 200, "big.png": 413}, sizes


def test_server_stops_cleanly_without_network_access(server):
  server.wait_ready()
  log = server.log()
  root = next((ln.split("files under ", 1)[1].strip() for ln in log.splitlines()
               if "files under " in ln), None)
  rc = server.stop()
  log = server.log_path.read_text(errors="replace")
  assert rc == 0, f"exit status {rc} (3: network access):\n{log[-3000:]}"
  assert "offline_guard: network attempts" not in log
  assert root and not pathlib.Path(root).exists(), root
