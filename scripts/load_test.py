"""Load test: a room of agents typing at once while a trainer saves, against a real `kb serve`.

Builds a synthetic sheet (scripts/corpus.py), imports it with `kb import`, starts
`kb serve` on 127.0.0.1 as a subprocess and drives it over HTTP with signed-in
sessions, one thread and one kept-alive connection per simulated person:

- each agent types a 1-4 word query one keystroke at a time: a request to
  /api/search from the third character, a key every 150 ms (a key waits for
  the answer to the previous one, like a closed loop), opens the first result
  (/e/<slug>), posts a copy event, pauses 1-3 s and starts again;
- one trainer saves an edit every second (PUT /api/entries/<slug> with the
  version it read), each to a different entry and carrying a unique word.

Afterwards it checks that every accepted save is in `git log` and findable,
and prints requests, errors, search percentiles, saves, server CPU and memory.

    python scripts/load_test.py --agents 50 --seconds 40 --entries 10000

`--sequential N` instead sends N searches one after another from one session
and reports the server's CPU time per search request. `--greedy N` adds one more
agent whose N threads send costly 12-word searches back to back (a script or a stuck
key): the others' search figures show whether one person can take everyone's share.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from corpus import COMPLAINT_WORDS, Corpus, typo  # noqa: E402

HOST = "127.0.0.1"  # never anything else: this is a load generator
PASSWORD = "load-test-password"
KEY_SECONDS = 0.150
TIMEOUT = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


# -- the server ------------------------------------------------------------------------


def kb_command(*args: str) -> list[str]:
    return [sys.executable, "-c", "from kb.cli import main; main()", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def write_sheet(path: Path, entries: int, seed: int) -> list[str]:
    """A CSV sheet of `entries` synthetic complaints; returns their titles."""
    corpus = Corpus(seed)
    titles = []
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Complaint", "Answer", "On the phone", "Phrasings", "Tags", "Category"])
        for n in range(entries):
            e = corpus.entry("")
            title = f"{e.title} {n}"  # unique, so every row is its own entry
            titles.append(title)
            out.writerow([title, e.answer, e.phone, "; ".join(e.phrasings), ", ".join(e.tags),
                          e.category])
    return titles


def make_users(env: dict, agents: int) -> None:
    """Agents and a trainer, with a quick password hash: signing in 500 people
    should not be what the test measures."""
    script = f"""
from sqlalchemy import select
from werkzeug.security import generate_password_hash
from kb import config
from kb.db import Database, User
db = Database(config.load()["DATABASE_URL"])
hashed = generate_password_hash({PASSWORD!r}, "pbkdf2:sha256:1000")
with db.session() as s:
    have = set(s.scalars(select(User.username)))
    if "trainer" not in have:
        s.add(User(username="trainer", display_name="Tess Trainer", role="trainer",
                   password_hash=hashed))
    s.add_all(User(username=f"agent{{n}}", display_name=f"Agent {{n}}", role="agent",
                   password_hash=hashed) for n in range({agents}) if f"agent{{n}}" not in have)
    s.commit()
db.dispose()
"""
    subprocess.run([sys.executable, "-c", script], env=env, check=True)


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError):
            pass
    return total / CLK_TCK


def memory_mb(pids: list[int], key: str) -> dict[int, float]:
    """Rss (pages shared with the other processes counted in each) or Pss (shared
    pages split between them: their sum is what the server really uses)."""
    out = {}
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith(key + ":"):
                    out[pid] = int(line.split()[1]) / 1024
        except OSError:
            pass
    return out


# -- HTTP as a browser does it ---------------------------------------------------------------


class Session:
    """One person: a kept-alive connection and the session cookie."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | None = None,
                form: dict | None = None) -> tuple[int, bytes]:
        headers = {}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=TIMEOUT)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # a kept-alive connection the server closed while idle: a browser
                # reconnects and sends again; so do we, once
                self.close()
                if attempt == 2:
                    raise
                continue
            for value in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if response.headers.get("Connection", "").lower() == "close":
                self.close()
            return response.status, payload
        raise AssertionError("unreachable")

    def login(self, username: str) -> None:
        status, page = self.request("GET", "/login")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        status, _ = self.request("POST", "/login", form={
            "username": username, "password": PASSWORD, "csrf_token": token})
        if status != 302:
            raise RuntimeError(f"{username} could not sign in ({status})")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    search_ms: list[float] = field(default_factory=list)
    other_ms: list[float] = field(default_factory=list)
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    saves_ok: list[tuple[str, str, str]] = field(default_factory=list)  # slug, word, commit
    saves_409: int = 0
    saves_failed: int = 0
    save_ms: list[float] = field(default_factory=list)

    def timed(self, session: Session, method: str, path: str, kind: str,
              body: dict | None = None, ok: tuple[int, ...] = (200,)) -> tuple[int, bytes]:
        start = time.perf_counter()
        try:
            status, payload = session.request(method, path, body=body)
        except Exception as exc:
            with self.lock:
                self.requests += 1
                self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return 0, b""
        elapsed = (time.perf_counter() - start) * 1000
        with self.lock:
            self.requests += 1
            (self.search_ms if kind == "search" else self.save_ms if kind == "save"
             else self.other_ms).append(elapsed)
            if status not in ok:
                self.errors.append(f"{kind}: HTTP {status}")
        return status, payload


def agent(port: int, n: int, stop: float, tally: Tally, session: Session) -> None:
    rng = random.Random(n)
    while time.time() < stop:
        words = [rng.choice(COMPLAINT_WORDS) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.2:
            i = rng.randrange(len(words))
            words[i] = typo(rng, words[i])
        query = " ".join(words)
        data = None
        for end in range(3, len(query) + 1):
            if time.time() >= stop:
                return
            key_at = time.perf_counter()
            if query[end - 1] == " ":
                continue  # a space changes no results: the page sends nothing
            q = urllib.parse.urlencode({"q": query[:end], "limit": "20", "typing": "1"})
            status, payload = tally.timed(session, "GET", f"/api/search?{q}", "search")
            if status == 200:
                data = json.loads(payload)
            time.sleep(max(0.0, KEY_SECONDS - (time.perf_counter() - key_at)))
        if data and data["results"] and time.time() < stop:
            slug, sid = data["results"][0]["slug"], data.get("search_id")
            q = urllib.parse.urlencode({"q": query, "sid": sid or ""})
            status, page = tally.timed(session, "GET", f"/e/{slug}?{q}", "open")
            version = re.search(rb'data-version="([0-9a-f]*)"', page)
            if status == 200 and version:
                tally.timed(session, "POST", "/api/events", "copy", body={
                    "kind": "copy", "slug": slug, "version": version.group(1).decode(),
                    "search_id": sid}, ok=(201,))
        time.sleep(rng.uniform(1.0, 3.0))


def greedy(port: int, n: int, stop: float, counts: dict, session: Session) -> None:
    """One of the greedy agent's threads: long queries, no pause, its own connection."""
    rng = random.Random(1000 + n)
    while time.time() < stop:
        query = " ".join(rng.choice(COMPLAINT_WORDS) for _ in range(12))
        try:
            status, _ = session.request("GET", "/api/search?" + urllib.parse.urlencode(
                {"q": query, "limit": "50"}))
        except Exception:  # noqa: BLE001 - counted, the run goes on
            status = 0
        counts[status] = counts.get(status, 0) + 1


def trainer(port: int, slugs: list[str], stop: float, tally: Tally, session: Session) -> None:
    n = 0
    while time.time() < stop and n < len(slugs):
        started = time.time()
        slug, word = slugs[n], f"qzsave{n}x"
        n += 1
        status, payload = tally.timed(session, "GET", f"/api/entries/{slug}", "read")
        if status != 200:
            with tally.lock:
                tally.saves_failed += 1
            continue
        entry = json.loads(payload)
        body = {"title": entry["title"], "answer": entry["answer"] + f"\n\nReference {word}.",
                "phone": entry["phone"], "reason": f"load test edit {n}",
                "base_version": entry["version"]}
        status, payload = tally.timed(session, "PUT", f"/api/entries/{slug}", "save", body=body,
                                      ok=(200, 409))
        with tally.lock:
            if status == 200:
                tally.saves_ok.append((slug, word, json.loads(payload)["commit"]))
            elif status == 409:
                tally.saves_409 += 1
            else:
                tally.saves_failed += 1
        time.sleep(max(0.0, 1.0 - (time.time() - started)))


# -- running it -------------------------------------------------------------------------------


def start_server(env: dict, port: int, serve_args: list[str], log: Path) -> subprocess.Popen:
    proc = subprocess.Popen(kb_command("serve", "--host", HOST, "--port", str(port), *serve_args),
                            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=5)
            conn.request("GET", "/login")
            conn.getresponse().read()
            conn.close()
            time.sleep(1.0)  # let every worker finish opening
            return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"kb serve exited:\n{log.read_text()}") from None
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("kb serve did not answer within 300 s")


def sequential(port: int, server_pid: int, count: int) -> None:
    session = Session(port)
    session.login("agent0")
    rng = random.Random(1)
    queries = []
    while len(queries) < count:
        text = " ".join(rng.choice(COMPLAINT_WORDS) for _ in range(rng.randint(1, 4)))
        queries.extend(text[:end] for end in range(3, len(text) + 1) if text[end - 1] != " ")
    queries = queries[:count]
    for q in queries[:20]:  # warm up
        session.request("GET", "/api/search?" + urllib.parse.urlencode({"q": q, "typing": "1"}))
    pids = process_tree(server_pid)
    cpu0, wall0 = cpu_seconds(pids), time.perf_counter()
    times = []
    for q in queries:
        start = time.perf_counter()
        status, _ = session.request("GET", "/api/search?" + urllib.parse.urlencode(
            {"q": q, "limit": "20", "typing": "1"}))
        times.append((time.perf_counter() - start) * 1000)
        assert status == 200, status
    cpu = cpu_seconds(pids) - cpu0
    wall = time.perf_counter() - wall0
    if os.environ.get("KB_LOAD_TEST_HIST"):
        print(sorted(round(t) for t in times))
    print(f"{count} sequential searches in {wall:.1f} s: latency p50 {pct(times, 50):.1f} ms, "
          f"p95 {pct(times, 95):.1f} ms; server CPU {cpu / count * 1000:.2f} ms per search")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve-args", default="",
                        help="extra arguments for kb serve, e.g. '--workers 2'")
    parser.add_argument("--sequential", type=int, default=0, metavar="N",
                        help="instead: N searches one after another, CPU per search")
    parser.add_argument("--greedy", type=int, default=0, metavar="N",
                        help="one more agent sending costly searches from N threads at once")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="instance folder to use (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the instance folder")
    args = parser.parse_args(argv)

    base = args.out_dir or Path(tempfile.mkdtemp(prefix="kb-load-"))
    base.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env["KB_INSTANCE_DIR"] = str(base / "instance")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT)]))
    threading.stack_size(512 * 1024)
    server = None
    try:
        if not (base / "instance" / "content").exists():
            sheet = base / "sheet.csv"
            write_sheet(sheet, args.entries, args.seed)
            started = time.time()
            subprocess.run(kb_command("import", str(sheet), "--author", "loadtest"),
                           env=env, check=True, stdout=subprocess.DEVNULL)
            print(f"imported {args.entries} entries with kb import in "
                  f"{time.time() - started:.0f} s", flush=True)
        make_users(env, max(args.agents, 1) + (1 if args.greedy else 0))
        port = free_port()
        server = start_server(env, port, args.serve_args.split(), base / "server.log")
        if args.sequential:
            sequential(port, server.pid, args.sequential)
            return 0
        return run_load(args, env, port, server, base)
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if not args.keep and args.out_dir is None:
            shutil.rmtree(base, ignore_errors=True)


def run_load(args, env: dict, port: int, server: subprocess.Popen, base: Path) -> int:
    tally = Tally()
    people = [Session(port) for _ in range(args.agents)]
    for n, session in enumerate(people):
        session.login(f"agent{n}")
    boss = Session(port)
    boss.login("trainer")
    status, payload = boss.request("GET", "/api/search?q=" + "+".join(COMPLAINT_WORDS[:40])
                                   + "&limit=50")
    slugs = sorted({r["slug"] for r in json.loads(payload)["results"]})
    listing = subprocess.run(["git", "--git-dir", str(base / "instance" / "content"),
                              "ls-tree", "--name-only", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.split()
    slugs += [p[:-3] for p in listing if p.endswith(".md") and p[:-3] not in slugs]
    random.Random(3).shuffle(slugs)
    print(f"{args.agents} agents signed in; running {args.seconds:.0f} s", flush=True)

    pids = process_tree(server.pid)
    cpu0, wall0, own0 = cpu_seconds(pids), time.time(), time.process_time()
    stop = wall0 + args.seconds
    threads = [threading.Thread(target=agent, args=(port, n, stop, tally, s), daemon=True)
               for n, s in enumerate(people)]
    threads.append(threading.Thread(target=trainer, args=(port, slugs, stop, tally, boss),
                                    daemon=True))
    greedy_counts: dict[int, int] = {}
    greedy_sessions = []
    for n in range(args.greedy):  # one person (the extra agent), several connections
        session = Session(port)
        session.login(f"agent{args.agents}")
        greedy_sessions.append(session)
        threads.append(threading.Thread(target=greedy, args=(port, n, stop, greedy_counts,
                                                             session), daemon=True))
    for i, t in enumerate(threads):
        t.start()
        if i % 50 == 49:
            time.sleep(0.05)  # people arrive within a second, not in one instant
    peak: dict[int, float] = {}
    peak_pss: dict[int, float] = {}
    while time.time() < stop:
        time.sleep(1.0)
        pids = process_tree(server.pid)
        now, now_pss = memory_mb(pids, "Rss"), memory_mb(pids, "Pss")
        if sum(now.values()) > sum(peak.values()):
            peak = now
        if sum(now_pss.values()) > sum(peak_pss.values()):
            peak_pss = now_pss
    for t in threads:
        t.join(timeout=TIMEOUT + 5)
    wall = time.time() - wall0
    cpu = cpu_seconds(process_tree(server.pid)) - cpu0
    for s in people + [boss] + greedy_sessions:
        s.close()

    # every accepted save: in git, and findable
    checker = Session(port)
    checker.login("trainer")
    log = subprocess.run(["git", "--git-dir", str(base / "instance" / "content"), "log",
                          "--format=%H"], capture_output=True, text=True, check=True).stdout
    in_git = set(log.split())
    missing_git = [c for _, _, c in tally.saves_ok if c not in in_git]
    not_found = []
    for slug, word, _ in tally.saves_ok:
        _, payload = checker.request("GET", f"/api/search?q={word}")
        if slug not in [r["slug"] for r in json.loads(payload)["results"]]:
            not_found.append(slug)
    checker.close()

    s = tally.search_ms
    print()
    print(f"agents {args.agents}, entries {args.entries}, {wall:.0f} s, "
          f"server: {args.serve_args or 'kb serve defaults'}")
    print(f"requests {tally.requests} ({tally.requests / wall:.0f}/s), "
          f"searches {len(s)} ({len(s) / wall:.0f}/s), errors {len(tally.errors)}")
    print(f"search ms p50 {pct(s, 50):.0f} / p95 {pct(s, 95):.0f} / p99 {pct(s, 99):.0f} / "
          f"max {max(s, default=float('nan')):.0f}; over 1 s: {sum(x > 1000 for x in s)}, "
          f"over 2 s: {sum(x > 2000 for x in s)}")
    if args.greedy:
        print(f"greedy agent ({args.greedy} threads): answers by status {greedy_counts}")
    o = tally.other_ms
    print(f"open/copy ms p50 {pct(o, 50):.0f} / p95 {pct(o, 95):.0f} / "
          f"max {max(o, default=float('nan')):.0f}")
    v = tally.save_ms
    print(f"saves ok {len(tally.saves_ok)}, 409 {tally.saves_409}, failed {tally.saves_failed}; "
          f"save ms p50 {pct(v, 50):.0f} / p95 {pct(v, 95):.0f} / "
          f"max {max(v, default=float('nan')):.0f}")
    print(f"accepted saves in git log: {len(tally.saves_ok) - len(missing_git)}"
          f"/{len(tally.saves_ok)}; findable: {len(tally.saves_ok) - len(not_found)}"
          f"/{len(tally.saves_ok)}")
    print(f"server CPU {cpu / wall:.2f} cores ({cpu * 1000 / max(1, tally.requests):.1f} ms "
          f"per request); load generator CPU {(time.process_time() - own0) / wall:.2f} cores")
    print(f"server memory at peak: PSS {sum(peak_pss.values()):.0f} MB (RSS "
          f"{sum(peak.values()):.0f} MB) over {len(peak)} processes, RSS each "
          f"{', '.join(f'{m:.0f}' for m in sorted(peak.values()))} MB")
    try:
        load = os.getloadavg()[0]
        print(f"machine load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores")
    except OSError:
        pass
    for error in sorted(set(tally.errors))[:10]:
        print(f"  error: {error} (x{tally.errors.count(error)})")
    ok = not tally.errors and not missing_git and not not_found and not tally.saves_failed
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
