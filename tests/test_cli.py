"""The `kb` command as a person runs it: real processes, real folders."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["init"], ["reindex"], ["check"],
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
