"""Slowing down password guessing without letting a stranger lock anyone out.

Following OWASP's advice, failures are counted per (user name, address) and per
address, and turn into growing delays rather than a hard lock:

- five failures for one name from one address are free (typos); each further one
  refuses that name *from that address* for 15 s, 30 s, 60 s ... up to 15 minutes.
  The same name from any other address is not affected, so nobody can lock the
  admin out from the outside, and the right password from an address that did not
  fail always works;
- an address with many failures over many names (password spraying, or a contact
  centre's shared NAT address on a bad morning) makes every *failing* name from it
  wait after its first failure instead of its fifth. Names that type their password
  right are never slowed, so one office address does not lock out the office.

Checking and counting are one step: an attempt holds its name's counts for a
moment (a PostgreSQL advisory lock; SQLite's write lock), is counted as a failure
before the password is weighed, and is forgiven when it turns out right, so guesses
sent in parallel see each other and the schedule holds.

Addresses are easy to change, so OWASP's device cookies come on top. A browser that
signed in correctly before holds a signed cookie naming that person (kb.devices); its
attempts for that name skip the address counts and have an allowance of their own
(DEVICE_FREE failures an hour, then that cookie counts for nothing until the hour is
out), so the owner on a known device never waits for what strangers did. Every other
attempt for a name shares one budget per account, UNKNOWN_PER_HOUR failures an hour,
whatever the number of addresses they come from.

A good sign-in clears its own (name, address) counter; `kb user unlock NAME` and an
admin's password reset clear all of a name's counters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, text
from sqlalchemy.orm import Session

from kb.db import Database, SignInFailures, utcnow

PAIR_FREE = 5  # failures of one name from one address before any delay
ADDRESS_FREE = 30  # failures from one address (all names) before it counts as noisy
FIRST_DELAY = dt.timedelta(seconds=15)
MAX_DELAY = dt.timedelta(minutes=15)
PAIR_MEMORY = dt.timedelta(hours=24)  # a name's failures are forgotten a day after the last
ADDRESS_MEMORY = dt.timedelta(hours=1)  # an address's, an hour after the last
DEVICE_FREE = 10  # failures a known device may make in an hour before it counts for nothing
UNKNOWN_PER_HOUR = 100  # failures an hour per account from browsers it never signed in on
WINDOW = dt.timedelta(hours=1)
_UNKNOWN = "*unknown devices*"  # the account-wide counter's address


class Throttled(ValueError):
    """Sign-ins for this name from this address must wait; the message says how long."""


def delay_after(failures: int) -> dt.timedelta:
    """How long a (name, address) pair waits after its n-th failure (zero while free)."""
    if failures < PAIR_FREE:
        return dt.timedelta(0)
    return min(MAX_DELAY, FIRST_DELAY * 2 ** min(failures - PAIR_FREE, 20))


def _find(s: Session, username: str, address: str) -> SignInFailures | None:
    """The counter of this name ("" for an address as a whole) at this address (or at
    a device's or the unknown browsers' key)."""
    return s.scalar(select(SignInFailures).where(SignInFailures.username == username,
                                                SignInFailures.address == address))


def _row(s: Session, username: str, address: str, memory: dt.timedelta,
         now: dt.datetime) -> SignInFailures | None:
    row = _find(s, username, address)
    if row is not None and now - row.last_failure > memory and not _blocked(row, now):
        row.failures = 0  # long quiet: start counting again
    return row


def _blocked(row: SignInFailures | None, now: dt.datetime) -> bool:
    return bool(row and row.blocked_until and row.blocked_until > now)


def check(s: Session, username: str, address: str, now: dt.datetime | None = None) -> None:
    """Raise Throttled when this name may not try from this address yet."""
    now = now or utcnow()
    row = _row(s, username, address, PAIR_MEMORY, now)
    if _blocked(row, now):
        minutes = max(1, math.ceil((row.blocked_until - now).total_seconds() / 60))
        raise Throttled(
            f"Too many failed sign-ins for this name from your address. Try again in "
            f"{minutes} minute{'s' if minutes > 1 else ''}, or ask an admin to unlock it.")


def record_failure(s: Session, username: str, address: str,
                   now: dt.datetime | None = None) -> None:
    """Count one failed sign-in for the pair and for the address; set the pair's delay."""
    now = now or utcnow()
    s.execute(delete(SignInFailures).where(
        SignInFailures.last_failure < now - PAIR_MEMORY,
        or_(SignInFailures.blocked_until.is_(None), SignInFailures.blocked_until < now)))
    per_address = _row(s, "", address, ADDRESS_MEMORY, now) or _add(s, "", address)
    per_address.failures += 1
    per_address.last_failure = now
    pair = _row(s, username, address, PAIR_MEMORY, now) or _add(s, username, address)
    pair.failures += 1
    pair.last_failure = now
    counted = pair.failures
    if per_address.failures >= ADDRESS_FREE:
        counted += PAIR_FREE - 1  # a noisy address: wrong attempts wait from the first
    wait = delay_after(counted)
    if wait:
        pair.blocked_until = now + wait


def _add(s: Session, username: str, address: str) -> SignInFailures:
    row = SignInFailures(username=username, address=address, failures=0)
    s.add(row)
    return row


def _window(s: Session, username: str, key: str, now: dt.datetime) -> SignInFailures:
    """An hourly counter (its blocked_until is when the hour ends)."""
    row = _find(s, username, key)
    if row is None:
        row = _add(s, username, key)
    if row.blocked_until is None or row.blocked_until <= now:
        row.failures, row.blocked_until = 0, now + WINDOW
    return row


def device_trusted(s: Session, username: str, device: str | None,
                   now: dt.datetime | None = None) -> bool:
    """Whether this known device still has its allowance for this name."""
    if not device:
        return False
    row = _find(s, username, "device:" + device)
    now = now or utcnow()
    return row is None or row.failures < DEVICE_FREE or (
        row.blocked_until is not None and row.blocked_until <= now)


def check_unknown(s: Session, username: str, now: dt.datetime | None = None) -> None:
    """Raise Throttled when the account's budget for unknown browsers is spent."""
    now = now or utcnow()
    row = _find(s, username, _UNKNOWN)
    if row is not None and row.failures >= UNKNOWN_PER_HOUR and row.blocked_until and \
            row.blocked_until > now:
        minutes = max(1, math.ceil((row.blocked_until - now).total_seconds() / 60))
        raise Throttled(
            f"Too many failed sign-ins for this name from browsers it never signed in on. "
            f"Try again in {minutes} minute{'s' if minutes > 1 else ''} or from a browser you "
            "signed in on before, or ask an admin to unlock it.")


def count_attempt(s: Session, username: str, address: str, device: str | None,
                  now: dt.datetime | None = None) -> None:
    """Count one attempt as failed (before its password is weighed; see forgive): on the
    known device's own allowance, or on the address counts and the account's budget
    for unknown browsers."""
    now = now or utcnow()
    if device:
        _window(s, username, "device:" + device, now).failures += 1
        return
    record_failure(s, username, address, now)
    _window(s, username, _UNKNOWN, now).failures += 1


def hold(s: Session, username: str) -> None:
    """Hold this name's counts until the transaction ends: another attempt for it, from
    any address, thread or process, waits, so its check sees this one's count."""
    if s.get_bind().dialect.name == "postgresql":
        digest = hashlib.blake2b(f"kb-sign-in\0{username}".encode(), digest_size=8).digest()
        s.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                  {"key": int.from_bytes(digest, "big", signed=True)})
    else:  # SQLite: a write first takes the database's write lock until commit
        s.execute(delete(SignInFailures).where(SignInFailures.id == -1))


def forgive(s: Session, username: str, address: str, device: str | None = None) -> None:
    """The attempt counted before its password was weighed was right: clear the
    pair and the device's count, and take that attempt off the address's and the
    account's counts."""
    clear_pair(s, username, address)
    if device:
        s.execute(delete(SignInFailures).where(SignInFailures.username == username,
                                               SignInFailures.address == "device:" + device))
        return
    for name, key in (("", address), (username, _UNKNOWN)):
        row = _find(s, name, key)
        if row is not None and row.failures > 0:
            row.failures -= 1


def clear_pair(s: Session, username: str, address: str) -> None:
    s.execute(delete(SignInFailures).where(SignInFailures.username == username,
                                           SignInFailures.address == address))


def unlock(db: Database, username: str) -> int:
    """Forget every failure of this name, from every address. Returns rows removed."""
    with db.session() as s:
        done = s.execute(delete(SignInFailures).where(
            SignInFailures.username == username.strip().lower()))
        s.commit()
        return done.rowcount


def unlock_address(db: Database, address: str) -> int:
    """Forget every failure from this address (for all names)."""
    with db.session() as s:
        done = s.execute(delete(SignInFailures).where(SignInFailures.address == address))
        s.commit()
        return done.rowcount


@dataclass
class Block:
    username: str  # "" for an address as a whole
    address: str
    failures: int
    until: dt.datetime | None
    reason: str


def current_blocks(db: Database, now: dt.datetime | None = None) -> list[Block]:
    """Who is being slowed down right now, and why: for the admin's users page."""
    now = now or utcnow()
    out: list[Block] = []
    with db.session() as s:
        rows = s.scalars(select(SignInFailures).order_by(SignInFailures.username,
                                                         SignInFailures.address))
        for row in rows:
            if row.address == _UNKNOWN or row.address.startswith("device:"):
                if row.failures >= (UNKNOWN_PER_HOUR if row.address == _UNKNOWN
                                    else DEVICE_FREE) and _blocked(row, now):
                    where = ("browsers it never signed in on" if row.address == _UNKNOWN
                             else "one browser it signed in on before")
                    out.append(Block(row.username, "", row.failures, row.blocked_until,
                                     f"{row.failures} failed sign-ins for this name from "
                                     f"{where} within the hour"))
            elif row.username and _blocked(row, now):
                out.append(Block(row.username, row.address, row.failures, row.blocked_until,
                                 f"{row.failures} failed sign-ins for this name from "
                                 f"{row.address or 'an unknown address'}"))
            elif (not row.username and row.failures >= ADDRESS_FREE
                  and now - row.last_failure <= ADDRESS_MEMORY):
                out.append(Block("", row.address, row.failures, None,
                                 f"{row.failures} failed sign-ins from this address within "
                                 "the hour: names failing from it wait after one failure"))
    return out
