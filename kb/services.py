"""The parts every view needs (content store, sheet, search index), built once per app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app

from kb import meaning
from kb.remote import Remote, open_clone
from kb.search import SearchIndex
from kb.sheet import Sheet
from kb.store import ContentStore


@dataclass
class Services:
    """The parts every view needs, built once per app."""

    store: ContentStore
    sheet: Sheet
    index: SearchIndex
    company_name: str = ""
    remote: Remote | None = None  # the shared git remote, when nodes share one

    def defaults(self) -> dict[str, str]:
        """Placeholder values the form starts from: company name, the agent's own name."""
        from flask_login import current_user

        values = {n: i["default"] for n, i in self.sheet.placeholders().items() if i["default"]}
        if self.company_name:
            values["company_name"] = self.company_name
        if current_user and current_user.is_authenticated:
            values["agent_name"] = current_user.name
        # the team's policy values: filled everywhere, never asked of an agent
        values.update({n: f.value for n, f in self.sheet.facts().items()})
        return values


    def typed(self, values: dict) -> dict:
        """What an agent or a client typed, less any fact: a fact is the team's value."""
        facts = self.sheet.facts()
        return {k: v for k, v in (values or {}).items() if k not in facts}

    def labels(self) -> dict[str, str]:
        """The sheet's label for each placeholder it defines ("Number of days")."""
        return {n: i["label"] for n, i in self.sheet.placeholders().items() if i.get("label")}


def services() -> Services:
    return current_app.extensions["kb"]


def model(settings: dict[str, Any]) -> meaning.Meaning:
    """The process's embedding model, as the settings ask for it."""
    if not settings.get("MEANING", True):
        return meaning.Meaning(enabled=False)
    return meaning.shared(settings.get("MEANING_DIR") or None)


def open_services(settings: dict[str, Any], progress=None) -> Services:
    remote = Remote(settings["REMOTE"]) if settings.get("REMOTE") else None
    if remote is not None:
        store = open_clone(settings["DATA_DIR"], settings["SEED_DIR"], remote)
    else:
        store = ContentStore.open_or_create(settings["DATA_DIR"], settings["SEED_DIR"])
    sheet = Sheet(store)
    index = SearchIndex(settings["INDEX_DIR"], sheet, model(settings))
    index.open(progress)
    sheet.after_commit = index.catch_up
    return Services(store, sheet, index, settings.get("COMPANY_NAME") or "", remote)
