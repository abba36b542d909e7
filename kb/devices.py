"""OWASP's device cookies: a browser that signed in correctly keeps a signed cookie
naming the person, and kb.throttle gives its sign-ins an allowance of their own, so
nobody guessing from elsewhere can make the owner wait."""

from __future__ import annotations

import secrets

from flask import Request, Response, current_app
from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "kb_device"
MAX_AGE = 365 * 24 * 3600
_SALT = "kb-device-cookie"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt=_SALT)


def device_for(request: Request, username: str) -> str | None:
    """This browser's device id, when its cookie was issued to `username` by this kb."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer().loads(raw)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != username.strip().lower():
        return None
    device = data.get("d")
    return device if isinstance(device, str) and 8 <= len(device) <= 40 else None


def issue(response: Response, request: Request, username: str) -> Response:
    """A new device cookie after a correct sign-in (a fresh id each time)."""
    value = _serializer().dumps({"u": username, "d": secrets.token_urlsafe(12)})
    response.set_cookie(COOKIE, value, max_age=MAX_AGE, httponly=True, samesite="Lax",
                        secure=request.is_secure)
    return response
