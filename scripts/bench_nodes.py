"""Two kb nodes sharing a bare git remote and one database, on this machine.

Measures, over N saves through node A's JSON API, how long until node B's search
finds the new text (from sending the save, and from the save's answer), and how
long a restarted node takes to be ready (/readyz) after missing some saves.

    .venv/bin/python scripts/bench_nodes.py --saves 50

Uses a throwaway PostgreSQL cluster (Debian's package) when installed, else one
SQLite file. Everything runs on 127.0.0.1 in a temp folder, removed afterwards.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.db import Database  # noqa: E402
from kb.users import create_token, create_user  # noqa: E402
from tests.conftest import entry_text, write_seed  # noqa: E402
from tests.node_procs import NodeProcess  # noqa: E402
from tests.pgcluster import PgCluster, pg_bin_dir  # noqa: E402


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--restarts", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="kb-nodes-") as tmp:
        base = Path(tmp)
        cluster = None
        if pg_bin_dir() is not None:
            cluster = PgCluster(pg_bin_dir())
            cluster.start()
            url = cluster.fresh_database()
        else:
            url = f"sqlite:///{base / 'kb.sqlite'}"
        remote = base / "remote.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        db = Database(url)
        create_user(db, "tara", "bench-password-1", role="trainer", display_name="Tara")
        token = create_token(db, "tara", "bench")
        db.dispose()
        seed = write_seed(base / "seed")
        a, b = (NodeProcess(n, base, str(remote), url, seed) for n in ("a", "b"))
        try:
            a.start()
            b.start()
            from_send, from_answer, save_ms = [], [], []
            version = a.request("GET", "/api/entries/refund-status", token)[1]["version"]
            for n in range(args.saves):
                # a pause of random length: saves do not fall in step with B's fetches
                time.sleep(random.uniform(0, 1))
                word = f"zq{n:03d}marker"
                sent = time.perf_counter()
                status, body = a.request("PUT", "/api/entries/refund-status", token, {
                    "markdown": entry_text("Refund status", f"Refund {word} on its way."),
                    "base_version": version, "reason": "bench"})
                answered = time.perf_counter()
                if status != 200:
                    raise SystemExit(f"save {n} failed: {status} {body}")
                version = body["version"]
                while "refund-status" not in b.search(token, word):
                    time.sleep(0.005)
                found = time.perf_counter()
                save_ms.append((answered - sent) * 1000)
                from_send.append((found - sent) * 1000)
                from_answer.append((found - answered) * 1000)
            print(f"{args.saves} saves on A ({'PostgreSQL' if cluster else 'SQLite'})")
            for label, values in (("save answered (ms)", save_ms),
                                  ("sent on A to findable on B (ms)", from_send),
                                  ("answered on A to findable on B (ms)", from_answer)):
                print(f"  {label:38} p50 {pct(values, 50):7.0f}  p95 {pct(values, 95):7.0f}  "
                      f"max {max(values):7.0f}")
            ready = []
            for _ in range(args.restarts):
                b.stop()
                for n in range(5):  # saves B misses while it is down
                    status, body = a.request("PUT", "/api/entries/refund-status", token, {
                        "markdown": entry_text("Refund status", f"Missed {n}."),
                        "base_version": version, "reason": "bench"})
                    version = body["version"]
                ready.append(b.start())
                assert b.request("GET", "/readyz")[1]["index"] == body["commit"]
            print("  restarted node ready (5 saves behind) : "
                  + ", ".join(f"{s:.1f} s" for s in ready)
                  + f"  (median {statistics.median(ready):.1f} s)")
        finally:
            a.kill()
            b.kill()
            if cluster is not None:
                cluster.stop()


if __name__ == "__main__":
    main()
