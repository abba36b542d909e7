"""Writers run as separate OS processes by test_durability.py."""

from __future__ import annotations

import sys

from kb.search import SearchIndex
from kb.sheet import Sheet
from kb.store import ConflictError, ContentStore, Person

COUNTER = "counter.md"


def counter_text(n: int) -> str:
    return f"---\ntitle: Counter\n---\nThe count is {n}.\n"


def open_sheet(content: str, index_dir: str) -> tuple[Sheet, SearchIndex]:
    sheet = Sheet(ContentStore(content))
    index = SearchIndex(index_dir, sheet)
    index.open()
    sheet.after_commit = index.catch_up
    return sheet, index


def save_many(worker: int, content: str, index_dir: str, saves: int, barrier, results) -> None:
    """Alternate new files and read-modify-write increments of one shared counter."""
    sheet, index = open_sheet(content, index_dir)
    me = Person(f"writer{worker}", f"w{worker}@example.com")
    accepted, conflicts = [], 0
    barrier.wait()
    for n in range(saves):
        if n % 2:
            text = (f"---\ntitle: Note {worker} {n}\n---\n"
                    f"Marker zq{worker}x{n} for the test.\n")
            commit = sheet.write({f"w{worker}-{n}.md": text}, message=f"note {worker} {n}",
                                 author=me)
            accepted.append(("note", commit))
            continue
        while True:  # an editor that reloads after a conflict and tries again
            found = sheet.store.read(COUNTER)
            value = int(found.text.split("count is ")[1].split(".")[0])
            try:
                commit = sheet.write({COUNTER: counter_text(value + 1)},
                                     message=f"count {worker} {n}", author=me,
                                     expected={COUNTER: found.version})
            except ConflictError:
                conflicts += 1
                continue
            accepted.append(("count", commit))
            break
    index.close()
    results.put((worker, accepted, conflicts))


def write_forever(content: str, index_dir: str) -> None:
    """Save as fast as possible, saying so after each save, until killed."""
    sheet, _ = open_sheet(content, index_dir)
    me = Person("loop", "loop@example.com")
    n = 0
    while True:
        text = f"---\ntitle: Loop {n}\n---\nLoop marker zl{n}x body text.\n" + "filler " * 200
        sheet.write({f"loop-{n % 7}.md": text, f"other-{n}.md": text}, message=f"loop {n}",
                    author=me)
        print(n, flush=True)
        n += 1


if __name__ == "__main__":
    write_forever(sys.argv[1], sys.argv[2])
