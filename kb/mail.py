"""Sending notification emails through the team's SMTP server (KB_SMTP_URL).

The page that caused an email never waits for it: messages go on a queue that one
background thread per process sends, after the notification is committed. A
failure is logged (server and error, never the password) and recorded on the
notification; the in-app notification stays the record either way.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from sqlalchemy import update

from kb.compose import one_line
from kb.db import Database, Notification
from kb.errors import KbError

log = logging.getLogger("kb.mail")
TIMEOUT = 20  # seconds to reach and talk to the SMTP server
EXIT_WAIT = 10  # seconds a stopping process gives its queued emails
SCHEMES = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("ssl", 465)}


class MailSettingError(KbError, ValueError):
    """KB_SMTP_URL cannot be used; the message says how to write it."""


@dataclass(frozen=True)
class SmtpServer:
    security: str  # "plain" | "starttls" | "ssl"
    host: str
    port: int
    username: str = ""
    password: str = ""

    def __str__(self) -> str:  # for logs and messages: never the credentials
        return f"{self.host}:{self.port}"


def parse_smtp_url(url: str) -> SmtpServer:
    """smtp://[user:pass@]host[:port], smtp+starttls://... or smtps://..."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise MailSettingError(
            "KB_SMTP_URL must look like smtp://host:25, smtp+starttls://user:password@host:587 "
            "or smtps://user:password@host:465 (user and password URL-encoded).")
    security, default_port = SCHEMES[parts.scheme]
    try:
        port = parts.port or default_port
    except ValueError:
        raise MailSettingError("KB_SMTP_URL has a port that is not a number from 1 to "
                               "65535.") from None
    return SmtpServer(security, parts.hostname, port, unquote(parts.username or ""),
                      unquote(parts.password or ""))


def default_sender() -> str:
    return f"kb@{socket.gethostname() or 'localhost'}"


def build_message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = one_line(sender)
    message["To"] = one_line(to)  # the policy refuses line breaks as well
    message["Subject"] = one_line(subject)  # built from titles users wrote
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # out-of-office replies stay away
    message.set_content(body)
    return message


def send_now(server: SmtpServer, message: EmailMessage) -> None:
    """Deliver one message, or raise."""
    if server.security == "ssl":
        smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=TIMEOUT,
                                context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=TIMEOUT)
    with smtp:
        if server.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if server.username:
            smtp.login(server.username, server.password)
        smtp.send_message(message)


class Mailer:
    """A queue of emails and the thread that sends them (one per process, started on
    the first email, so a forked server worker starts its own)."""

    def __init__(self, url: str, sender: str = "", db: Database | None = None):
        self.server = parse_smtp_url(url)
        self.sender = sender.strip() or default_sender()
        self.db = db
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._queue: queue.Queue | None = None

    def submit(self, to: str, subject: str, body: str, ids: tuple[int, ...] = ()) -> None:
        """Queue one email; `ids` are the notifications it carries (marked sent or failed)."""
        self._ready().put((to, subject, body, tuple(ids)))

    def flush(self) -> None:
        """Wait until every queued email was sent or failed (tests, shutdown)."""
        if self._queue is not None and self._pid == os.getpid():
            self._queue.join()

    def _ready(self) -> queue.Queue:
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._queue = os.getpid(), queue.Queue()
                threading.Thread(target=self._run, args=(self._queue,), name="kb-mail",
                                 daemon=True).start()
                atexit.register(self._drain, self._queue)
            return self._queue

    @staticmethod
    def _drain(jobs: queue.Queue) -> None:
        """A server worker that stops (restart, scale down) sends what it queued first,
        for a few seconds at most: the thread is a daemon and would die with it."""
        done = threading.Event()
        threading.Thread(target=lambda: (jobs.join(), done.set()), daemon=True).start()
        done.wait(EXIT_WAIT)

    def _run(self, jobs: queue.Queue) -> None:
        while True:
            to, subject, body, ids = jobs.get()
            try:
                send_now(self.server, build_message(self.sender, to, subject, body))
                self._record(ids, "sent")
            except Exception as exc:  # noqa: BLE001 - any failure: log it, keep going
                log.warning("Could not email a notification to %s through %s: %s: %s",
                            to, self.server, type(exc).__name__, exc)
                self._record(ids, "failed")
            finally:
                jobs.task_done()

    def _record(self, ids: tuple[int, ...], outcome: str) -> None:
        if not ids or self.db is None:
            return
        try:
            with self.db.session() as s:
                s.execute(update(Notification).where(Notification.id.in_(ids))
                          .values(mail=outcome))
                s.commit()
        except Exception as exc:  # noqa: BLE001 - the email went (or not) all the same
            log.warning("Could not record an email as %s: %s", outcome, type(exc).__name__)
