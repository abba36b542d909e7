"""Sign-in plumbing: flask-login, bearer tokens, and the role check on routes."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlsplit

from flask import abort, current_app, g, jsonify, redirect, request, session, url_for
from flask_login import LoginManager, current_user, login_user

from kb.db import Database, User
from kb.users import TOKEN_SIGNED_OUT, token_user, user_by_id

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to use the cheat sheet."
login_manager.session_protection = "strong"


def database() -> Database:
    return current_app.extensions["kb_db"]


GENERATION_KEY = "kb_gen"


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    try:
        user = user_by_id(database(), int(user_id))
    except ValueError:
        return None
    if user is None or not user.active or user.is_service:
        return None
    # The server-side check: sign-out, a password change, a reset or disabling moves
    # the user's generation on, and every cookie carrying an older one stops working.
    if session.get(GENERATION_KEY) != user.session_generation:
        return None
    return user


def sign_in(user: User) -> None:
    """Start a session for this user, tied to their current session generation."""
    login_user(user)
    session[GENERATION_KEY] = user.session_generation


def keep_session(generation: int) -> None:
    """After this session itself moved the generation on (a password change), stay in."""
    session[GENERATION_KEY] = generation


@login_manager.request_loader
def _load_from_token(req) -> User | None:
    header = req.headers.get("Authorization", "")
    if g.get("token_refused"):  # token_first refused it already (and may have deleted it)
        return None
    if header.lower().startswith("bearer "):
        user, refused = token_user(database(), header[7:])
        if user is not None:
            g.token_auth = True  # API calls with a token need no CSRF token
        g.token_refused = refused
        return user
    return None


def token_first() -> None:
    """A valid bearer token wins over a session cookie the same client also sends:
    a cookie from another browser fails the session's protection, and flask-login
    would then answer 401 without looking at the token. (Run before every other
    hook that asks who is signed in.)"""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        user, refused = token_user(database(), header[7:])
        if user is not None:
            g._login_user = user  # flask-login's user for this request
            g.token_auth = True
        g.token_refused = refused


@login_manager.unauthorized_handler
def _unauthorized():
    if request.path.startswith("/api/"):
        refused = g.get("token_refused")
        if refused == TOKEN_SIGNED_OUT:
            message = ("You signed out of kb, which ends this token too (it belongs to a "
                       "sign-in, like the browser extension's). Sign in and connect again.")
        elif refused:
            message = ("kb does not know this token: it was revoked, or its person was "
                       "reset or disabled. Make a new one on your profile page.")
        else:
            message = "Sign in, or send 'Authorization: Bearer <token>' (see your profile page)."
        return jsonify(error="Unauthorized", message=message), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def role_required(role: str):
    """Every route says which role it needs; agents are everyone signed in."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.can(role):
                abort(403, description=f"This page is for {role}s. Ask an admin if you "
                                       "need access.")
            return view(*args, **kwargs)

        wrapped.required_role = role
        return wrapped

    return decorate


def public(view):
    """Mark a route as open to everyone (sign-in page, static files)."""
    view.required_role = None
    return view


def safe_next(target: str | None) -> str:
    """Only same-site paths; anything else goes to the search page."""
    if not target:
        return url_for("pages.search")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return url_for("pages.search")
    return target
