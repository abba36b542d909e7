"""The browser extension as kb serves it, and the page-value rules it follows.

The extension's files are in static/extension/. kb hands them out as a zip whose
manifest names this kb's address as the one host the extension may call, with the
address filled in (`kb.json`), so an agent loads it and connects in one click.

Page-value rules say where a helpdesk's page shows a value an entry asks for (the
customer's name, the ticket number): the panel offers it in that field. An admin
writes them in `_sheet/page_values.yml` (the page /admin/page-values), versioned
with the sheet; presets cover common helpdesks' addresses.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any
from urllib.parse import urlsplit

import yaml

from kb.compose import PLACEHOLDER_NAME
from kb.paths import resource_dir

PAGE_VALUES = "_sheet/page_values.yml"
MAX_RULES_BYTES = 64 * 1024
SOURCES = ("selector", "url", "title", "text")  # where on the page a value is read

# Starting points for common helpdesks. The ticket or conversation number comes from
# the page's address, which these products keep stable; the customer's name from an
# element of the ticket page (check it on your own helpdesk: products change their
# pages, and an admin's own rule for the same site comes first).
FIRST_WORD = r"^\s*([^\s,]+)"
PRESETS: dict[str, dict[str, Any]] = {
    "zendesk": {
        "name": "Zendesk", "match": ["https://*.zendesk.com/agent/*"],
        "values": {
            "case_number": [{"url": r"/tickets/(\d+)"}],
            "customer_name": [{"selector": "[data-test-id='ticket-system-field-requester-select'] "
                                           "[data-garden-id='typography.ellipsis']",
                               "pattern": FIRST_WORD}],
        },
    },
    "freshdesk": {
        "name": "Freshdesk", "match": ["https://*.freshdesk.com/a/tickets/*"],
        "values": {
            "case_number": [{"url": r"/tickets/(\d+)"}],
            "customer_name": [{"selector": "[data-test-id='requester-info-name'], "
                                           ".requester-info .name", "pattern": FIRST_WORD}],
        },
    },
    "help-scout": {
        "name": "Help Scout", "match": ["https://secure.helpscout.net/conversation/*"],
        "values": {
            "case_number": [{"url": r"/conversation/\d+/(\d+)"}],
            "customer_name": [{"selector": ".c-customer-name, [data-cy='CustomerName']",
                               "pattern": FIRST_WORD}],
        },
    },
    "zammad": {
        "name": "Zammad (any address)", "match": ["*://*/#ticket/zoom/*"],
        "values": {
            "case_number": [{"selector": ".ticket-number", "pattern": r"(\d+)"}],
            "customer_name": [{"selector": ".ticketZoom-header .user-popover, "
                                           ".sidebar-content .userInfo-name",
                               "pattern": FIRST_WORD}],
        },
    },
    "chatwoot": {
        "name": "Chatwoot (any address)", "match": ["*://*/app/accounts/*/conversations/*"],
        "values": {
            "case_number": [{"url": r"/conversations/(\d+)"}],
            "customer_name": [{"selector": ".conversation-header .user--name, "
                                           ".contact--name", "pattern": FIRST_WORD}],
        },
    },
}

STARTER_RULES = f"""\
# Where a helpdesk's page shows a value an entry asks for. The browser extension
# offers it in the panel's field; the agent checks it and presses Enter.
#
# presets: the built-in rules to use ({", ".join(PRESETS)}).
# sites: your own rules; they come before the presets. Each site has
#   match:  the page's address, * for any part (https://help.example.com/tickets/*)
#   values: per placeholder, where to read it: one of
#     selector: a CSS selector of the element showing it (its text; `attribute` to
#               read an attribute instead), with an optional `pattern`
#     url / title / text: a pattern matched in the page's address, its title or its
#               visible text
#   A pattern is a JavaScript regular expression, case-insensitive; its first group
#   (or the whole match) is the value.
#   chat_boxes: a CSS selector of the site's chat reply boxes: there the panel inserts
#     the entry's chat version when it has one (one-line fields are chat boxes anyway)
presets: [{", ".join(PRESETS)}]
sites: []
# sites:
#   - name: Our helpdesk
#     match: https://help.example.com/tickets/*
#     values:
#       customer_name: {{selector: ".requester .name", pattern: "^\\\\s*(\\\\S+)"}}
#       order_number: {{text: "\\\\b(NW-\\\\d{{6}})\\\\b"}}
#       case_number: {{url: "/tickets/(\\\\d+)"}}
"""


class RulesError(ValueError):
    """Page-value rules that cannot be used; the message lists what to fix."""


def origin_of(url: str) -> str:
    """scheme://host[:port] of an address, for the manifest and the extension."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"Not a web address: {url!r}")
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def extension_dir():
    return resource_dir("static") / "extension"


def build_zip(kb_url: str) -> bytes:
    """The unpacked extension in one folder, `kb-extension/`, set up for this kb: its
    address filled in, and the one host it may call."""
    origin = origin_of(kb_url)
    folder = extension_dir()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            rel = path.relative_to(folder).as_posix()
            data = path.read_bytes()
            if rel == "manifest.json":
                manifest = json.loads(data)
                manifest["host_permissions"] = [origin + "/*"]
                data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
            archive.writestr("kb-extension/" + rel, data)
        archive.writestr("kb-extension/kb.json", json.dumps({"kb_url": origin}) + "\n")
    return out.getvalue()


# -- page-value rules ------------------------------------------------------------------


def _check_pattern(pattern: Any, where: str, problems: list[str]) -> None:
    if not isinstance(pattern, str) or not pattern.strip():
        problems.append(f"{where}: write the pattern as text")
        return
    if "(?P" in pattern:
        problems.append(f"{where}: (?P<name>...) is Python's syntax; write (?<name>...) or "
                        "a plain group (...)")
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        problems.append(f"{where}: the pattern does not read as a regular expression ({exc})")


def _sources(value: Any, where: str, problems: list[str]) -> list[dict[str, str]]:
    items = value if isinstance(value, list) else [value]
    out = []
    for n, item in enumerate(items, 1):
        at = where if len(items) == 1 else f"{where}, source {n}"
        if not isinstance(item, dict):
            problems.append(f"{at}: write one of {', '.join(SOURCES)} with its text")
            continue
        kinds = [k for k in SOURCES if k in item]
        unknown = sorted(set(item) - set(SOURCES) - {"pattern", "attribute"})
        if len(kinds) != 1:
            problems.append(f"{at}: give exactly one of {', '.join(SOURCES)}")
            continue
        if unknown:
            problems.append(f"{at}: unknown key {', '.join(unknown)}")
            continue
        kind = kinds[0]
        if kind == "selector":
            if not isinstance(item["selector"], str) or not item["selector"].strip():
                problems.append(f"{at}: the selector is empty")
                continue
            if "pattern" in item:
                _check_pattern(item["pattern"], at, problems)
        else:
            if "pattern" in item or "attribute" in item:
                problems.append(f"{at}: pattern and attribute go with a selector; for "
                                f"{kind}, the pattern is its value")
                continue
            _check_pattern(item[kind], at, problems)
        out.append({k: str(v) for k, v in item.items()})
    return out


def parse_rules(text: str) -> dict[str, Any]:
    """Check the rules file; RulesError lists every problem, with where it is."""
    if len(text.encode()) > MAX_RULES_BYTES:
        raise RulesError(f"The rules are over {MAX_RULES_BYTES // 1024} KB; keep one rule "
                         "per helpdesk page.")
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" on line {mark.line + 1}" if mark else ""
        raise RulesError(f"The rules are not readable YAML{line}: "
                         f"{getattr(exc, 'problem', None) or exc}.") from None
    data = data or {}
    if not isinstance(data, dict):
        raise RulesError("Write the rules as `presets:` and `sites:` (see the example).")
    problems: list[str] = []
    unknown = sorted(set(map(str, data)) - {"presets", "sites"})
    if unknown:
        problems.append(f"unknown key {', '.join(unknown)}: the keys are presets and sites")
    presets = data.get("presets") or []
    if not isinstance(presets, list):
        problems.append("presets: a list such as [zendesk, freshdesk]")
        presets = []
    for name in presets:
        if name not in PRESETS:
            problems.append(f"presets: there is no preset {name!r}; the presets are "
                            f"{', '.join(PRESETS)}")
    sites = []
    raw_sites = data.get("sites") or []
    if not isinstance(raw_sites, list):
        problems.append("sites: a list of sites, each starting with '- match: ...'")
        raw_sites = []
    for n, site in enumerate(raw_sites, 1):
        where = f"site {n}"
        if not isinstance(site, dict):
            problems.append(f"{where}: write match: and values: under it")
            continue
        if site.get("name"):
            where = f"site {n} ({site['name']})"
        match = site.get("match")
        matches = match if isinstance(match, list) else [match]
        if not match or not all(isinstance(m, str) and re.match(r"^(\*|https?)://", m)
                                for m in matches):
            problems.append(f"{where}: match is the page's address, such as "
                            "https://help.example.com/tickets/* (or several in a list)")
            continue
        unknown = sorted(set(map(str, site)) - {"name", "match", "values", "chat_boxes"})
        if unknown:
            problems.append(f"{where}: unknown key {', '.join(unknown)} (a site has match, "
                            "values, chat_boxes and a name)")
            continue
        values = site.get("values") or ({} if site.get("chat_boxes") else None)
        if not isinstance(values, dict):
            problems.append(f"{where}: values: says, per placeholder, where the page shows it")
            continue
        clean = {}
        for name, value in values.items():
            if not isinstance(name, str) or not PLACEHOLDER_NAME.fullmatch(name):
                problems.append(f"{where}: {name!r} is not a placeholder name "
                                "(letters, digits and _, as in customer_name)")
                continue
            clean[name] = _sources(value, f"{where}, {name}", problems)
        chat = site.get("chat_boxes")
        if chat is not None and (not isinstance(chat, str) or not chat.strip()):
            problems.append(f"{where}: chat_boxes is a CSS selector of the chat reply boxes")
        sites.append({"name": str(site.get("name") or ""), "match": matches, "values": clean,
                      **({"chat_boxes": chat.strip()} if isinstance(chat, str) else {})})
    if problems:
        raise RulesError("; ".join(problems) + ".")
    return {"presets": [str(p) for p in presets], "sites": sites}


def rules_text(store) -> tuple[str, str | None]:
    """The rules file as written, and its version (None: not written yet, the starter)."""
    found = store.read(PAGE_VALUES)
    if found is None:
        return STARTER_RULES, None
    return found.text, found.version


def sites_for_extension(store) -> list[dict[str, Any]]:
    """The rules the extension follows: the admin's own sites first, then the presets
    chosen. A file that no longer reads (edited by hand) gives the presets alone."""
    text, _ = rules_text(store)
    try:
        rules = parse_rules(text)
    except RulesError:
        rules = {"presets": list(PRESETS), "sites": []}
    return rules["sites"] + [PRESETS[name] for name in rules["presets"]]
