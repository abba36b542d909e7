"""A throwaway OpenSSH server for tests: its own host key, one client key, a free port.

sshd runs as whoever runs the tests and lets in only that user with the generated
key. Run as root, sshd insists on its privilege-separation folder /run/sshd, which
Debian's package makes at boot (tmpfiles.d) and a container never booted: it is
made here the same way. As any other user sshd needs none of it.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from pathlib import Path

from tests.pgcluster import free_port

SSHD = "/usr/sbin/sshd"


class SshServer:
    def __init__(self, base: Path):
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.key = base / "client_key"
        self.known_hosts = base / "known_hosts"
        self.proc: subprocess.Popen | None = None

    @property
    def ssh_command(self) -> str:
        """What GIT_SSH_COMMAND holds: this key only, this host key only, no prompts,
        and none of the user's own ssh configuration."""
        return (f"ssh -F /dev/null -i {self.key} -o IdentitiesOnly=yes -o BatchMode=yes "
                f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes")

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 30.0) -> None:
        host = self.base / "host_key"
        for key in (host, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True)
        (self.base / "authorized_keys").write_text(Path(f"{self.key}.pub").read_text())
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} "
                                    f"{Path(f'{host}.pub').read_text()}")
        config = self.base / "sshd_config"
        config.write_text("\n".join([
            "ListenAddress 127.0.0.1",
            f"HostKey {host}",
            f"PidFile {self.base / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.base / 'authorized_keys'}",
            f"AllowUsers {self.user}",
            "StrictModes no",  # the temp folder's permissions are not sshd's business
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",  # a key only, when the tests run as root
            "",
        ]))
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = open(self.base / "sshd.log", "ab")  # noqa: SIM115 (kept by the process)
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config), "-p", str(self.port)],
                                     stdout=log, stderr=log)
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.base / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd not listening after {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
