"""Settings: defaults, then `KB_*` environment variables, then the factory's argument."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from kb.paths import resource_dir


def instance_dir() -> Path:
    return Path(os.environ.get("KB_INSTANCE_DIR", "instance")).resolve()


class Config:
    """Every setting can be given as an environment variable with a KB_ prefix."""

    INSTANCE_DIR: str = ""
    DATA_DIR: str = ""  # the content git repository; default <instance>/content
    INDEX_DIR: str = ""  # the search index (derived data); default <instance>/index
    DATABASE_URL: str = ""  # default sqlite:///<instance>/kb.sqlite
    SEED_DIR: str = ""  # starter entries copied into a new content repository
    SECRET_KEY: str = ""
    COMPANY_NAME: str = ""  # overrides the company_name default in placeholders.yml
    MEANING: bool = True  # KB_MEANING=0 ranks on words alone (no embedding model)
    MEANING_DIR: str = ""  # the model's files; default: the installed wordllama package
    MAX_CONTENT_LENGTH: int = 5 * 1024 * 1024  # uploads and form posts
    SESSION_COOKIE_HTTPONLY: bool = True
    SESSION_COOKIE_SAMESITE: str = "Lax"
    SESSION_COOKIE_SECURE: bool = False  # set KB_SESSION_COOKIE_SECURE=1 behind HTTPS
    WTF_CSRF_TIME_LIMIT: int | None = None
    ONE_TIME_PASSWORD_HOURS: int = 72  # a one-time password stops working after this
    SEARCH_LOG_DAYS: int = 90  # searches older than this are deleted (the gaps window)
    # Behind a reverse proxy, how many proxies set X-Forwarded-For / -Proto: sign-in
    # throttling then counts the person's address, not the proxy's. 0 trusts none.
    TRUSTED_PROXIES: str = ""  # addresses or networks of the proxies in front (kb.proxies)
    # Several nodes: the shared git remote (any URL dulwich speaks: a path, ssh://,
    # https:// with credentials), the push webhook's secret, how often to fetch.
    REMOTE: str = ""
    HOOK_SECRET: str = ""
    FETCH_INTERVAL: float = 1.0
    # Notifications by email: smtp://user:pass@host:port, smtp+starttls://..., smtps://...
    # (empty: in the app only). MAIL_FROM defaults to kb@<this host's name>; BASE_URL
    # (https://kb.example.com) makes the links in emails absolute.
    SMTP_URL: str = ""
    MAIL_FROM: str = ""
    BASE_URL: str = ""


def load(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {
        k: getattr(Config, k) for k in dir(Config) if k.isupper()
    }
    for key, default in list(settings.items()):
        env = os.environ.get("KB_" + key)
        if env is not None:
            if isinstance(default, bool):
                settings[key] = env.strip().lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                settings[key] = int(env)
            elif isinstance(default, float):
                settings[key] = float(env)
            else:
                settings[key] = env
    settings.update(overrides or {})
    inst = Path(settings["INSTANCE_DIR"] or instance_dir())
    settings["INSTANCE_DIR"] = str(inst)
    settings["DATA_DIR"] = str(settings["DATA_DIR"] or inst / "content")
    settings["INDEX_DIR"] = str(settings["INDEX_DIR"] or inst / "index")
    private_dir(inst, tighten=True)
    settings["DATABASE_URL"] = settings["DATABASE_URL"] or f"sqlite:///{inst / 'kb.sqlite'}"
    settings["SEED_DIR"] = str(settings["SEED_DIR"] or resource_dir("entries"))
    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = _instance_secret(inst)
    return settings


def private_dir(path: Path, tighten: bool = False) -> None:
    """Create a folder only its owner can read (password hashes, what agents searched
    and the customers' words in the content live below). `tighten` also closes an
    existing folder made by an older kb with the usual 0755; a team's own content
    repository elsewhere keeps the permissions its owner gave it."""
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)  # mkdir's mode is filtered by the umask
    elif tighten and path.is_dir():
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o700)
        except OSError:
            pass  # not ours to change; the owner decides


def _instance_secret(inst: Path) -> str:
    """A random key made on first start and kept in the instance folder."""
    path = inst / "secret_key"
    if path.exists():
        return path.read_text().strip()
    inst.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
