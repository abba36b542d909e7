"""Behind a reverse proxy: whose address a request really comes from.

`X-Forwarded-For`, `-Proto` and `-Host` are believed only when the request comes
straight from a proxy the admin named (KB_TRUSTED_PROXIES: addresses or networks,
comma separated). A client that reaches kb directly and sends these headers itself is
ignored, so it cannot pick the address sign-in throttling counts, or the host kb
thinks it is at. A number instead of addresses (the older form: how many proxies)
trusts proxies on this machine only (loopback addresses)."""

from __future__ import annotations

import ipaddress

from kb.errors import KbError

LOOPBACK = ("127.0.0.0/8", "::1/128")


class ProxySettingError(KbError, ValueError):
    """KB_TRUSTED_PROXIES cannot be read; the message says how to write it."""


def parse(setting: object) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks whose requests may say who they forward for (empty: none)."""
    text = str(setting or "").strip()
    if not text or text == "0":
        return []
    if text.isdigit():  # the older form, a number of proxies: those on this machine
        return [ipaddress.ip_network(n) for n in LOOPBACK]
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ProxySettingError(
                f"KB_TRUSTED_PROXIES: “{part}” is not an address or network. Name the "
                "proxies in front of kb, e.g. 10.0.0.5 or 10.0.0.0/24, comma separated."
            ) from None
    return out


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None


class TrustedProxies:
    """WSGI middleware: from a named proxy, REMOTE_ADDR becomes the first address in
    X-Forwarded-For (read from the right) that is not itself a named proxy, and the
    scheme and host come from the nearest proxy's X-Forwarded-Proto and -Host."""

    def __init__(self, app, networks) -> None:
        self.app = app
        self.networks = list(networks)

    def trusted(self, text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in n for n in self.networks)

    def __call__(self, environ, start_response):
        if self.trusted(environ.get("REMOTE_ADDR", "")):
            chain = [a.strip() for a in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")
                     if a.strip()]
            while chain and self.trusted(chain[-1]):
                chain.pop()
            if chain and _address(chain[-1]) is not None:
                environ["REMOTE_ADDR"] = chain[-1]
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
            host = environ.get("HTTP_X_FORWARDED_HOST", "").split(",")[-1].strip()
            if host:
                environ["HTTP_HOST"] = host
        return self.app(environ, start_response)
