"""The application factory."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from kb import config as kb_config
from kb.paths import resource_dir
from kb.search import SearchIndex
from kb.sheet import Sheet
from kb.store import ContentStore

csrf = CSRFProtect()
log = logging.getLogger("kb")


@dataclass
class Services:
    """The parts every view needs, built once per app."""

    store: ContentStore
    sheet: Sheet
    index: SearchIndex
    company_name: str = ""

    def defaults(self) -> dict[str, str]:
        """Placeholder values the form starts from (company name and such)."""
        values = {n: i["default"] for n, i in self.sheet.placeholders().items() if i["default"]}
        if self.company_name:
            values["company_name"] = self.company_name
        return values


def services() -> Services:
    return current_app.extensions["kb"]


def open_services(settings: dict[str, Any], progress=None) -> Services:
    store = ContentStore.open_or_create(settings["DATA_DIR"], settings["SEED_DIR"])
    sheet = Sheet(store)
    index = SearchIndex(settings["INDEX_DIR"], sheet)
    index.open(progress)
    sheet.after_commit = index.catch_up
    return Services(store, sheet, index, settings.get("COMPANY_NAME") or "")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = kb_config.load(config)
    app = Flask(
        "kb",
        template_folder=str(resource_dir("templates")),
        static_folder=str(resource_dir("static")),
        instance_path=settings["INSTANCE_DIR"],
    )
    app.config.update(settings)
    app.extensions["kb"] = open_services(settings)
    csrf.init_app(app)

    from kb.views import api, pages

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp, url_prefix="/api")
    # The JSON API takes only application/json bodies, which a cross-site form
    # cannot send without a CORS preflight; that is its CSRF defence.
    csrf.exempt(api.bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            return jsonify(error=exc.name, message=exc.description), exc.code
        return render_template("error.html", error=exc), exc.code

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        message = "This form has expired or came from another site. Reload the page and try again."
        if request.path.startswith("/api/"):
            return jsonify(error="Bad Request", message=message), 400
        exc.description = message
        return render_template("error.html", error=exc), 400

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
        return response

    return app
