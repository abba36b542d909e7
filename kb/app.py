"""The application factory."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import BadRequest, HTTPException, ServiceUnavailable

from kb import config as kb_config
from kb.auth import login_manager, token_first
from kb.db import DOWN, Database
from kb.mail import Mailer
from kb.notifications import DueKeeper, unread_count
from kb.paths import resource_dir
from kb.proxies import TrustedProxies
from kb.proxies import parse as parse_proxies
from kb.render import to_html
from kb.services import open_services
from kb.usage import SearchLogKeeper
from kb.users import ensure_first_admin
from kb.views.common import unless_down

csrf = CSRFProtect()
log = logging.getLogger("kb")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = kb_config.load(config)
    app = Flask(
        "kb",
        template_folder=str(resource_dir("templates")),
        static_folder=str(resource_dir("static")),
        instance_path=settings["INSTANCE_DIR"],
    )
    app.config.update(settings)
    proxies = parse_proxies(settings["TRUSTED_PROXIES"])
    if proxies:
        app.wsgi_app = TrustedProxies(app.wsgi_app, proxies)
    app.extensions["kb"] = open_services(settings)
    app.extensions["kb"].index.warm()  # the first agent's search should not pay for it
    if app.extensions["kb"].remote is not None:
        app.extensions["kb"].remote.follow(app.extensions["kb"], settings["FETCH_INTERVAL"])
    db = Database(settings["DATABASE_URL"])
    app.extensions["kb_db"] = db
    search_log = SearchLogKeeper(db, settings["SEARCH_LOG_DAYS"])
    search_log.purge_if_due()  # at start, then once a day on a request
    mailer = Mailer(settings["SMTP_URL"], settings["MAIL_FROM"], db) \
        if settings["SMTP_URL"] else None
    app.extensions["kb_mail"] = mailer
    due = DueKeeper(db, app.extensions["kb"].index, app.extensions["kb"].sheet, mailer)
    app.extensions["kb_due"] = due
    if mailer is not None and not settings["BASE_URL"]:
        # never the address a request claims (its Host header): an email links only to
        # the address the admin configured, or to nothing
        log.warning("KB_BASE_URL is not set: notification emails carry no links. Set it "
                    "to the address people open kb at, e.g. https://kb.example.com")
    due.check_if_due(settings["BASE_URL"])
    csrf.init_app(app)
    login_manager.init_app(app)
    app.before_request(token_first)
    first_password = ensure_first_admin(db)
    if first_password:
        # Shown once: only its hash is stored, and it must be changed at first sign-in.
        print(f"Created the first user: admin / {first_password}  (one-time password)",
              file=sys.stderr, flush=True)
        app.config["KB_FIRST_ADMIN_PASSWORD"] = first_password

    from kb.views import (
        api,
        auth,
        curate,
        extension,
        health,
        notices,
        pages,
        phrasings,
        reports,
        setup,
    )
    from kb.views.common import IdConverter

    app.url_map.converters["int"] = IdConverter
    app.register_blueprint(pages.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(curate.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(phrasings.bp)
    app.register_blueprint(setup.bp)
    app.register_blueprint(notices.bp)
    app.register_blueprint(extension.bp)
    app.add_template_filter(to_html, "markdown")
    app.add_template_filter(
        lambda ts: dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M"), "datetime")
    app.register_blueprint(api.bp, url_prefix="/api")
    # The JSON API takes only application/json bodies, which a cross-site form
    # cannot send without a CORS preflight; that is its CSRF defence.
    csrf.exempt(api.bp)
    app.register_blueprint(health.bp)
    csrf.exempt(health.bp)  # the webhook proves itself with KB_HOOK_SECRET

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            return jsonify(error=exc.name, message=exc.description), exc.code
        return render_template("error.html", error=exc), exc.code

    broken_body = _broken_body_errors()
    if broken_body:
        @app.errorhandler(broken_body)
        def body_error(exc: Exception):
            """A body whose framing the server cannot read (a bad chunk): the client's
            fault, said as such, never a 500."""
            return http_error(BadRequest(
                "The request's body was cut off or malformed, so nothing was read or saved. "
                "Send it again."))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        message = "This form has expired or came from another site. Reload the page and try again."
        if request.path.startswith("/api/"):
            return jsonify(error="Bad Request", message=message), 400
        exc.description = message
        return _form_kept(message, 400) or (render_template("error.html", error=exc), 400)

    @app.before_request
    def password_first():
        """Someone signed in with a one-time password changes it before anything else."""
        from flask import redirect, url_for
        from flask_login import current_user

        if (current_user.is_authenticated and current_user.must_change_password
                and request.endpoint not in ("auth.profile", "auth.logout", "static")):
            if request.path.startswith("/api/"):
                return jsonify(error="Forbidden", message=(
                    f"{current_user.username} still has a one-time password: sign in and "
                    "change it on the profile page, then the API accepts its tokens. An "
                    "integration should use a service account instead (kb user create NAME "
                    "--service, then kb token create NAME).")), 403
            # say why the page asked for did not open, once per bounce
            from flask import flash

            flash("Choose your own password first: you signed in with a one-time password. "
                  "Every page opens once it is changed (below).", "error")
            return redirect(url_for("auth.profile"))
        return None

    @app.before_request
    def keep_search_log_short():
        unless_down(None, search_log.purge_if_due)

    @app.errorhandler(DOWN[0])
    @app.errorhandler(DOWN[1])
    def database_down(exc: Exception):
        """What needs the database (signing in, proposals, reviews, reports) waits for
        it; searching, reading and copying go on (see kb.users.user_by_id)."""
        log.warning("database unreachable: %s", str(exc).splitlines()[0])
        message = ("The database cannot be reached just now, so this was not saved or "
                   "shown. Searching, reading and copying answers still work. Try again "
                   "in a minute; nothing you typed is lost.")
        if request.path.startswith("/api/"):
            return jsonify(error="Service Unavailable", message=message), 503
        return _form_kept(message, 503) or (
            render_template("error.html", error=ServiceUnavailable(message)), 503)

    @app.before_request
    def tell_owners_what_is_due():
        if not request.path.startswith(("/api/", "/static/")):  # the API stays lean
            due.check_if_due(app.config["BASE_URL"])

    @app.context_processor
    def people():
        from flask_login import current_user

        from kb.proposals import pending_count

        count = unread = 0
        if current_user.is_authenticated and current_user.can("trainer"):
            count = unless_down(0, pending_count, db)
        if current_user.is_authenticated:  # pages only: JSON never renders this
            unread = unless_down(0, unread_count, db, current_user.id)
        remote = app.extensions["kb"].remote
        remote_down = None
        if remote is not None and remote.error and current_user.is_authenticated \
                and current_user.can("trainer"):
            remote_down = remote.down_since
        return {"review_count": count, "remote_down": remote_down, "unread_count": unread}

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        )
        if request.endpoint != "static":
            # Pages and API answers carry what agents typed about customers and the
            # sheet itself: no browser or proxy cache keeps a copy.
            response.headers["Cache-Control"] = "no-store"
        if app.config.get("SESSION_COOKIE_SECURE"):
            # Served over HTTPS: browsers refuse plain HTTP to this site for a year.
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    return app


def _broken_body_errors() -> type[Exception] | None:
    """What gunicorn raises while a view reads a body with broken framing (waitress
    reads the body before the app and answers 400 itself)."""
    try:
        from gunicorn.http.errors import ParseException
    except ImportError:  # no gunicorn on Windows
        return None
    return ParseException


def _form_kept(message: str, status: int):
    """For a form that could not be handled: a page holding what was sent, ready to send
    again (nothing saved, nothing lost), or None when there is no such form."""
    if request.method != "POST" or not request.form or request.endpoint in (
            "auth.login", "auth.logout"):
        return None
    kept = [(k, v) for k, v in request.form.items(multi=True)
            if k not in ("csrf_token", "password", "current_password", "new_password")]
    return render_template("resend.html", kept=kept, message=message,
                           action=request.full_path.rstrip("?")), status
