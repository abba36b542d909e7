"""`kb serve` nodes as real processes on one machine, for tests and scripts/bench_nodes.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.pgcluster import free_port

KB = shutil.which("kb", path=str(Path(sys.executable).parent)) or "kb"


class NodeProcess:
    def __init__(self, name: str, base: Path, remote: str, db_url: str, seed: Path,
                 secret: str = "one-key-for-every-node"):
        self.name, self.base = name, base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "KB_INSTANCE_DIR": str(base / name), "KB_DATABASE_URL": db_url,
                    "KB_SECRET_KEY": secret, "KB_SEED_DIR": str(seed), "KB_REMOTE": remote}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait until /readyz says ready; returns the seconds that took."""
        began = time.monotonic()
        log = open(self.base / f"{self.name}.log", "ab")  # noqa: SIM115 (kept by the process)
        self.proc = subprocess.Popen(
            [KB, "serve", "--host", "127.0.0.1", "--port", str(self.port)], env=self.env,
            stdout=log, stderr=log, start_new_session=True)
        log.close()
        while time.monotonic() - began < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.name} exited: see {self.base / self.name}.log")
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return time.monotonic() - began
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"node {self.name} not ready after {timeout} s")

    def kill(self) -> None:
        """SIGKILL the node and every process it started."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def request(self, method: str, path: str, token: str | None = None,
                body: dict | None = None, timeout: float = 30.0) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                return exc.code, json.loads(payload or b"{}")
            except ValueError:
                return exc.code, {"raw": payload.decode("utf-8", "replace")}

    def search(self, token: str, words: str) -> list[str]:
        status, body = self.request("GET", "/api/search?q=" + urllib.request.quote(words), token)
        assert status == 200, body
        return [r["slug"] for r in body["results"]]
