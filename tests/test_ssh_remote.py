"""A node whose shared remote is an ssh:// URL, served by a real OpenSSH sshd; the key
and known-hosts file come from GIT_SSH_COMMAND, as for git itself."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from kb.db import Database
from kb.remote import redact
from kb.users import create_token, create_user
from tests.conftest import PASSWORD, entry_text, write_seed
from tests.node_procs import NodeProcess
from tests.sshd_proc import SshServer


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True, env={**os.environ, "GIT_AUTHOR_NAME": "T",
                                          "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "T",
                                          "GIT_COMMITTER_EMAIL": "t@x"}).stdout


def wait_until(what, timeout: float = 60.0):
    """Poll; a wait with a generous limit, not a measure of speed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if what():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def sshd(tmp_path):
    server = SshServer(tmp_path / "sshd")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def remote(tmp_path) -> Path:
    """A bare repository that already holds a sheet, with an entry the seed lacks."""
    bare = tmp_path / "sheet.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    work = write_seed(tmp_path / "first")
    (work / "lost-parcel.md").write_text(entry_text("Lost parcel", "The platypus courier."))
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "The team's sheet", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    return bare


def test_a_node_on_an_ssh_remote_clones_saves_and_follows(tmp_path, sshd, remote):
    url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    db = Database(url)
    create_user(db, "tara", PASSWORD, role="trainer")
    token = create_token(db, "tara", "ssh test")
    db.dispose()
    node = NodeProcess("a", tmp_path, sshd.url(remote), url, write_seed(tmp_path / "seed"))
    node.env["GIT_SSH_COMMAND"] = sshd.ssh_command
    try:
        # it clones over ssh: the remote's own entry, not the seed
        node.start()
        assert "lost-parcel" in node.search(token, "platypus")
        ready = node.request("GET", "/readyz")[1]
        remote_head = git("--git-dir", str(remote), "rev-parse", "main").strip()
        assert ready["remote"]["reachable"] and ready["content"] == remote_head
        assert ready["remote"]["url"] == sshd.url(remote)  # a user name is no password

        # a save on the node lands on the bare repository
        base = node.request("GET", "/api/entries/refund-status", token)[1]["version"]
        status, body = node.request("PUT", "/api/entries/refund-status", token, {
            "markdown": entry_text("Refund status", "Your wombat refund was sent."),
            "base_version": base, "reason": "over ssh"})
        assert status == 200, body
        assert git("--git-dir", str(remote), "rev-parse", "main").strip() == body["commit"]
        assert "wombat" in git("--git-dir", str(remote), "show", "main:refund-status.md")

        # a commit pushed to the bare repository from outside reaches the node
        work = tmp_path / "outside"
        git("clone", "-q", str(remote), str(work))
        (work / "wrong-colour.md").write_text(entry_text("Colour differs", "An axolotl shade."))
        git("commit", "-qam", "from outside", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        assert wait_until(lambda: "wrong-colour" in node.search(token, "axolotl"))
    finally:
        node.kill()
    assert "Accepted publickey for" in (tmp_path / "sshd" / "sshd.log").read_text()


def test_only_a_password_is_hidden_in_a_remote_url():
    assert redact("ssh://git@git.example.com/team/sheet.git") == \
        "ssh://git@git.example.com/team/sheet.git"
    assert redact("https://kb:glpat-s3cret@git.example.com/team/sheet.git") == \
        "https://kb:***@git.example.com/team/sheet.git"
