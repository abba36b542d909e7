"""The browser extension against real parts, for tests/test_extension_browser.py and
scripts/bench_extension.py: a real `kb serve`, the extension as that kb serves it
(/extension.zip, unpacked), Debian's Chromium with it loaded, and stand-in helpdesk
pages served from another address."""

from __future__ import annotations

import functools
import http.server
import io
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

from tests.pgcluster import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PAGES = Path(__file__).resolve().parent / "extension_pages"
KB = [sys.executable, "-c", "from kb.cli import main; main()"]


class KbServer:
    """`kb serve` (one process, waitress, unless told) on an instance folder, stopped and
    started again on the same port when a test needs kb unreachable."""

    def __init__(self, instance: Path, seed: Path | None = None, workers: int = 1, **env: str):
        self.instance, self.workers = instance, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "KB_INSTANCE_DIR": str(instance),
                    "PYTHONPATH": str(ROOT), **env}
        if seed is not None:
            self.env["KB_SEED_DIR"] = str(seed)
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0) -> None:
        log = open(self.instance.parent / "kb-serve.log", "ab")  # noqa: SIM115 (the process keeps it)
        self.proc = subprocess.Popen([*KB, "serve", "--port", str(self.port),
                                      "--workers", str(self.workers)],
                                     env=self.env, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        began = time.monotonic()
        while time.monotonic() - began < timeout:  # the first start builds the index
            if self.proc.poll() is not None:
                raise RuntimeError("kb serve exited: "
                                   + (self.instance.parent / "kb-serve.log").read_text()[-2000:])
            try:
                urllib.request.urlopen(self.url + "/login", timeout=5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("kb serve did not answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a clean stop writes the usage log
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def download_extension(kb_url: str, token: str, into: Path) -> Path:
    """The extension as kb hands it to an agent, unzipped; returns its folder."""
    request = urllib.request.Request(kb_url + "/extension.zip",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        zipfile.ZipFile(io.BytesIO(response.read())).extractall(into)
    return into / "kb-extension"


class Pages:
    """The stand-in helpdesk pages (tests/extension_pages/), on an address of their own."""

    def __init__(self, folder: Path = PAGES):
        handler = functools.partial(_Quiet, directory=str(folder))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def launch(playwright, profile: Path, extension: Path):
    """Chromium (new headless) with the unpacked extension; returns the context and the
    extension's service worker."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True,
        args=["--headless=new", f"--disable-extensions-except={extension}",
              f"--load-extension={extension}", "--no-sandbox", "--disable-gpu",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run"])
    worker = (context.service_workers[0] if context.service_workers
              else context.wait_for_event("serviceworker", timeout=30_000))
    # The install opens kb's connect page (or the options) in a tab of its own, in front:
    # close it, since a page behind it gets few frames and every step in it waits.
    began = time.monotonic()
    while len(context.pages) < 2 and time.monotonic() - began < 10:
        time.sleep(0.05)
    for page in context.pages[1:]:
        page.close()
    context.pages[0].bring_to_front()
    return context, worker
