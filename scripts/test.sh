#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run it.
# Extra arguments go to pytest (e.g. scripts/test.sh -k search).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use for real: Chromium for the browser tests (never a
# downloaded browser), PostgreSQL, whose initdb/pg_ctl the database tests use to
# start a throwaway cluster, HAProxy, which the load balancer test starts in front
# of two nodes with scripts/haproxy.cfg, and OpenSSH's server and client, for a node
# on an ssh:// remote served by a throwaway sshd. `env` sets the variable whether or
# not sudo is in front.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
UPDATED=""
apt_install() {
  if [ -z "$UPDATED" ]; then $SUDO apt-get update -q; UPDATED=1; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}
if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then apt_install postgresql; fi
if [ ! -x /usr/sbin/haproxy ]; then apt_install haproxy; fi
if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen > /dev/null; then
  apt_install openssh-server openssh-client
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test,postgres]"
.venv/bin/ruff check kb tests scripts
.venv/bin/python -m pytest "$@"
