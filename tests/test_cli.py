"""The `kb` command as a person runs it: real processes, real folders."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys

import pytest
from sqlalchemy import select

from kb.db import Database, User
from kb.users import update_user
from tests.conftest import ROOT, write_seed


def kb(env: dict, *args: str, merged: bool = False) -> subprocess.CompletedProcess:
    """Run `kb` in a child process with only the given KB_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    return subprocess.run(
        [sys.executable, "-m", "kb.cli", *args], env={**clean, **env}, cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        timeout=120)


@pytest.fixture
def seed(tmp_path):
    return write_seed(tmp_path / "seed")


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["init"], ["reindex"], ["check"],
                                     ["export", "out.csv"]])
def test_a_data_dir_that_is_not_a_repository_is_a_message_not_a_traceback(tmp_path, command):
    data = tmp_path / "notes"
    data.mkdir()
    (data / "todo.txt").write_text("not a sheet\n")
    command = [str(tmp_path / c) if c == "out.csv" else c for c in command]

    done = kb({"KB_INSTANCE_DIR": str(tmp_path / "inst"), "KB_DATA_DIR": str(data)}, *command)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"Error: {data} is not a git repository." in done.stderr
    assert "Point KB_DATA_DIR at the content repository" in done.stderr


def test_every_kb_error_is_its_message_and_exit_1(tmp_path, seed):
    env = {"KB_INSTANCE_DIR": str(tmp_path / "inst"), "KB_SEED_DIR": str(seed)}
    bad = tmp_path / "sheet.xlsx"
    bad.write_text("this is no workbook")

    done = kb(env, "import", str(bad))

    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Error: sheet.xlsx is named like an Excel workbook but is not one." in done.stderr


def test_token_create_prints_the_token_and_nothing_else(tmp_path, seed):
    env = {"KB_INSTANCE_DIR": str(tmp_path / "inst"), "KB_SEED_DIR": str(seed)}
    # a script reads both streams together: no progress labels among the answers
    init = kb(env, "init", merged=True)
    assert init.returncode == 0, init.stdout
    assert "Indexing" not in init.stdout and "Index:   " in init.stdout

    done = kb(env, "token", "create", "admin", merged=True)

    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kb_"), done.stdout


def test_import_of_a_missing_file_is_one_error_line_and_exit_1(tmp_path, seed):
    env = {"KB_INSTANCE_DIR": str(tmp_path / "inst"), "KB_SEED_DIR": str(seed)}

    done = kb(env, "import", "missing.csv")

    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"Error: There is no file missing.csv. Check the name and the folder (a relative "
        f"name starts in {ROOT})."]
    assert not (tmp_path / "inst" / "content").exists()  # no sheet made for a missing file
    folder = kb(env, "import", str(tmp_path))
    assert folder.returncode == 1 and "Usage" not in folder.stderr
    assert f"Error: {tmp_path} is a folder." in folder.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("workers", ["2", "1"])  # gunicorn, waitress
def test_serve_on_a_busy_port_is_one_error_line_and_exit_1(tmp_path, seed, workers):
    env = {"KB_INSTANCE_DIR": str(tmp_path / "inst"), "KB_SEED_DIR": str(seed)}
    with socket.socket() as holder:  # another program listening on the port
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        done = kb(env, "serve", "--port", str(port), "--workers", workers)

    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()  # no "kb is running", no server's retries
    assert line.startswith(f"Error: port {port} is in use on 127.0.0.1 "), line
    assert "; try --port " in line
    # nothing was set up for a start that could not happen: no admin, no password shown
    assert not (tmp_path / "inst" / "kb.sqlite").exists()


def serve_until_announced(env: dict, *args: str) -> list[str]:
    """Start `kb serve`, read what it says until it announces itself, check that the
    port then takes a connection, and stop it. Returns the lines said."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "serve", "--port", str(port),
                             *args], env={**clean, **env}, cwd=ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines = []
    try:
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("kb is running at"):
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert lines and lines[-1].startswith(f"kb is running at http://127.0.0.1:{port}/"), lines
    return lines


NOT_SIGNED_IN = ("note: admin has not signed in with its one-time password yet (it was "
                 "printed when the account was created). If you do not have it, run: "
                 "kb user reset-password admin")


@pytest.mark.parametrize("workers", ["2", "1"])  # gunicorn, waitress
def test_each_start_says_how_to_get_the_admin_password_until_it_is_used(tmp_path, seed,
                                                                        workers):
    inst = tmp_path / "inst"
    env = {"KB_INSTANCE_DIR": str(inst), "KB_SEED_DIR": str(seed)}

    first = serve_until_announced(env, "--workers", workers)
    created = [n for n, line in enumerate(first) if line.startswith("Created the first user")]
    assert len(created) == 1 and created[0] < len(first) - 1, first
    assert not any(line.startswith("note:") for line in first)

    # the password scrolled away (or that start failed): the next start says what to do
    again = serve_until_announced(env, "--workers", workers)
    assert NOT_SIGNED_IN in again, again
    assert not any(line.startswith("Created") for line in again)

    db = Database(f"sqlite:///{inst / 'kb.sqlite'}")
    try:
        with db.session() as s:  # more than three days later
            admin = s.scalar(select(User).where(User.username == "admin"))
            admin.password_set_at -= dt.timedelta(hours=80)
            s.commit()
        expired = kb(env, "init")
        assert ("note: admin's one-time password has expired (it lasts 72 hours), and no "
                "admin has signed in yet. For a new one, run: kb user reset-password admin"
                ) in expired.stdout
        # the admin signs in and sets a password of their own: nothing more is said
        update_user(db, "admin", password="a long own passphrase 7", must_change_password=False)
        done = kb(env, "init")
        assert done.returncode == 0 and "admin" not in done.stdout, done.stdout
    finally:
        db.dispose()
