"""Relevance on sheets kb was never tuned on, measured through HTTP.

Each folder of tests/blind/ holds a team's sheet (sheet.csv) and the queries its
agents would type (queries.tsv: query, complaint, kind = keywords | paraphrase,
typo = 1 for a deliberate misspelling), written by someone who never saw the
ranking code and before any result was seen. For each sheet: `kb init --empty`,
`kb import sheet.csv`, `kb serve --workers 1` on 127.0.0.1, and every query sent
to GET /api/search by a signed-in agent. Printed per sheet: keywords and
paraphrases found first and in the top 3, typos mended, and correct words
rewritten (a "did you mean" on a query with no misspelling).

    python scripts/blind.py [--misses] [--code DIR] [--learn] [SHEET ...]

--learn also runs the learning loop end to end through HTTP: two agents search
the keyword queries of the even lines ("taught"); where the first result is not
the right entry they search again with its title, as agents do, and copy the
right entry (POST /api/events); a trainer then adds every wording /phrasings
offers ticked, in one batch (POST /phrasings/accept-many). Printed: the taught
wordings, the other keyword queries (odd lines) and the paraphrases found first,
before and after.

SHEET is a folder name under tests/blind (default: all but `transport`, the sheet
kept untouched as the final check: name it to measure it). --code runs another
checkout's kb (to measure before and after a change).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from html import unescape
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


def slug_of_title(session: Session, title: str) -> str | None:
    for hit in search(session, title)["results"]:
        if norm(hit["title"]) == norm(title):
            return hit["slug"]
    return None


def first_rate(session: Session, rows: list[dict]) -> str:
    found = sum(1 for r in rows if [norm(h["title"]) for h in
                                    search(session, r["query"])["results"][:1]]
                == [norm(r["complaint"])])
    return f"{100 * found / max(1, len(rows)):3.0f} % first ({len(rows)})"


def learn(session: Session, port: int, rows: list[dict]) -> None:
    """The loop through HTTP: agents search and copy, a trainer adds what is offered."""
    keywords = [r for r in rows if r["kind"] != "paraphrase"]
    taught, other = keywords[0::2], keywords[1::2]
    paraphrases = [r for r in rows if r["kind"] == "paraphrase"]
    print(f"  learning: before: taught {first_rate(session, taught)}, other keywords "
          f"{first_rate(session, other)}, paraphrases {first_rate(session, paraphrases)}")
    slugs: dict[str, str | None] = {}
    for name in ("agent0", "agent1"):
        agent = Session(port)
        agent.login(name)
        for row in taught:
            want = norm(row["complaint"])
            answer = search(agent, row["query"])
            sid = answer["search_id"]
            if [norm(h["title"]) for h in answer["results"][:1]] != [want]:
                sid = search(agent, row["complaint"])["search_id"]  # the words failed
            if want not in slugs:
                slugs[want] = slug_of_title(agent, row["complaint"])
            status, _ = agent.request("POST", "/api/events", body={
                "kind": "copy", "slug": slugs[want], "search_id": sid})
            assert status == 201, status
        agent.close()
    trainer = Session(port)
    trainer.login("trainer")
    status, page = trainer.request("GET", "/phrasings")
    html = page.decode()
    picks = [unescape(v) for v in re.findall(
        r'<input type="checkbox" name="pick" form="accept-many" value="([^"]*)"\s+'
        r'aria-label="[^"]*" checked>', html)]
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    status, _ = trainer.request("POST", "/phrasings/accept-many",
                                form={"csrf_token": token, "pick": picks})
    print(f"  learning: {len(picks)} wordings offered ticked and added in one commit "
          f"({status})")
    print(f"  learning: after:  taught {first_rate(session, taught)}, other keywords "
          f"{first_rate(session, other)}, paraphrases {first_rate(session, paraphrases)}")


def measure(folder: Path, code: Path, show_misses: bool, learning: bool = False) -> dict:
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
        if learning:
            learn(session, session.port, rows)
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
    parser.add_argument("--learn", action="store_true", help="also run the learning loop")
    args = parser.parse_args(argv)
    names = args.sheets or sorted(p.name for p in BLIND.iterdir()
                                  if p.is_dir() and p.name != HELD_OUT)
    for name in names:
        measure(BLIND / name, args.code.resolve(), args.misses, args.learn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
