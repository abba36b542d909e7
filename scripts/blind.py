"""Relevance on sheets kb was never tuned on, measured through HTTP.

Each folder of tests/blind/ holds a team's sheet (sheet.csv) and the queries its
agents would type (queries.tsv: query, complaint, kind = keywords | paraphrase,
typo = 1 for a deliberate misspelling), written by someone who never saw the
ranking code and before any result was seen. For each sheet: `kb init --empty`,
`kb import sheet.csv`, `kb serve --workers 1` on 127.0.0.1, and every query sent
to GET /api/search by a signed-in agent. Printed per sheet: keywords and
paraphrases found first and in the top 3, typos mended, and correct words
rewritten (a "did you mean" on a query with no misspelling).

    python scripts/blind.py [--misses] [--code DIR] [SHEET ...]

SHEET is a folder name under tests/blind (default: all but `transport`, the sheet
kept untouched as the final check: name it to measure it). --code runs another
checkout's kb (to measure before and after a change).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLIND = ROOT / "tests" / "blind"
HELD_OUT = "transport"
sys.path.insert(0, str(ROOT / "scripts"))

from load_test import Session, free_port, kb_command, make_users, start_server  # noqa: E402


@dataclass
class Tally:
    cases: int = 0
    first: int = 0
    top3: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, query: str, want: str, titles: list[str]) -> None:
        self.cases += 1
        self.first += bool(titles) and titles[0] == want
        self.top3 += want in titles[:3]
        if not titles or titles[0] != want:
            where = "top3" if want in titles[:3] else "miss"
            self.misses.append(f"{where} {query!r}: want {want!r}, got {titles[:3]}")

    def rate(self) -> str:
        if not self.cases:
            return "-"
        return (f"{100 * self.first / self.cases:3.0f} % first, "
                f"{100 * self.top3 / self.cases:3.0f} % top 3 ({self.cases})")


def norm(text: str) -> str:
    return " ".join(text.casefold().split())


def read_queries(folder: Path) -> list[dict]:
    with (folder / "queries.tsv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def start(folder: Path, base: Path, code: Path) -> tuple[subprocess.Popen, Session, dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env["KB_INSTANCE_DIR"] = str(base / "instance")
    env["PYTHONPATH"] = str(code)
    for args in (["init", "--empty"], ["import", str(folder / "sheet.csv"), "--author", "team"]):
        subprocess.run(kb_command(*args), env=env, check=True, cwd=code,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    make_users(env, 2)
    port = free_port()
    here = Path.cwd()
    os.chdir(code)  # `python -c` puts the working folder first on the path
    try:
        server = start_server(env, port, ["--workers", "1"], base / "server.log")
    finally:
        os.chdir(here)
    session = Session(port)
    session.login("agent0")
    return server, session, env


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def search(session: Session, query: str) -> dict:
    status, payload = session.request("GET", "/api/search?" + urllib.parse.urlencode(
        {"q": query, "limit": "10"}))
    if status != 200:
        raise RuntimeError(f"search {query!r} answered {status}")
    return json.loads(payload)


def measure(folder: Path, code: Path, show_misses: bool) -> dict:
    rows = read_queries(folder)
    base = Path(tempfile.mkdtemp(prefix="kb-blind-"))
    server = None
    try:
        server, session, _ = start(folder, base, code)
        keywords, paraphrases, typos = Tally(), Tally(), Tally()
        rewritten: list[str] = []
        for row in rows:
            answer = search(session, row["query"])
            titles = [norm(r["title"]) for r in answer["results"]]
            want = norm(row["complaint"])
            (paraphrases if row["kind"] == "paraphrase" else keywords).add(
                row["query"], want, titles)
            if row.get("typo") == "1":
                typos.add(row["query"], want, titles)
            elif answer.get("did_you_mean"):
                rewritten.append(f"{row['query']!r} -> {answer['did_you_mean']!r}")
        correct = sum(1 for r in rows if r.get("typo") != "1")
        result = {"keywords": keywords, "paraphrases": paraphrases, "typos": typos,
                  "rewritten": rewritten, "correct": correct}
        print(f"== {folder.name}: {len(rows)} queries")
        print(f"  keywords     {keywords.rate()}")
        print(f"  paraphrases  {paraphrases.rate()}")
        print(f"  typos        {typos.rate()}")
        print(f"  rewritten    {len(rewritten)} of {correct} queries with no misspelling")
        if show_misses:
            for line in keywords.misses + paraphrases.misses:
                print("   ", line)
            for line in rewritten:
                print("    rewritten", line)
        return result
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sheets", nargs="*")
    parser.add_argument("--misses", action="store_true", help="list every miss and rewrite")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose kb runs")
    args = parser.parse_args(argv)
    names = args.sheets or sorted(p.name for p in BLIND.iterdir()
                                  if p.is_dir() and p.name != HELD_OUT)
    for name in names:
        measure(BLIND / name, args.code.resolve(), args.misses)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
