"""Entry files: parsing, writing back, and clear messages for broken ones."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from kb.entry import (
    Entry,
    EntryError,
    entry_from_fields,
    fields_of,
    parse_entry,
    serialize_entry,
    slugify,
)
from kb.sheet import Sheet, parse_placeholders, parse_synonyms
from tests.conftest import TARA, entry_text


def test_parse_and_serialise_round_trip():
    text = entry_text("Late parcel", "Sorry it is late, {{ customer_name }}.",
                      phone="- Say sorry.\n- Give a date.", phrasings=["where is it", "no show"],
                      tags="[delivery, Late]", category="Orders and delivery",
                      last_reviewed="2026-05-01", review_every_days=90, owner="tara")
    entry = parse_entry("late-parcel", text)
    assert entry.title == "Late parcel" and entry.tags == ("delivery", "late")
    assert entry.phrasings == ("where is it", "no show")
    assert entry.last_reviewed == dt.date(2026, 5, 1) and entry.review_every_days == 90
    assert entry.answer == "Sorry it is late, {{ customer_name }}.\n"
    assert entry.phone == "- Say sorry.\n- Give a date.\n"
    assert parse_entry("late-parcel", serialize_entry(entry)) == entry


def test_lists_may_be_written_as_comma_strings():
    entry = parse_entry("x", "---\ntitle: X\ntags: a, b\nphrasings: one, two\n---\nBody\n")
    assert entry.tags == ("a", "b") and entry.phrasings == ("one", "two")


def test_phone_heading_is_found_whatever_its_case():
    entry = parse_entry("x", "---\ntitle: X\n---\nAnswer\n\n## ON THE PHONE\n\n- point\n")
    assert entry.answer == "Answer\n" and entry.phone == "- point\n"


def test_unknown_front_matter_is_kept():
    entry = parse_entry("x", "---\ntitle: X\nsource: chat\n---\nBody\n")
    assert entry.extra == {"source": "chat"}
    assert "source: chat" in serialize_entry(entry)


@pytest.mark.parametrize("text,message", [
    ("Just text", "does not start with a '---'"),
    ("---\ntitle: X\nBody", "never closed"),
    ("---\ntitle: [oops\n---\nBody\n", "not valid YAML (front matter line"),
    ("---\nphrasings: [a]\n---\nBody\n", "no 'title:'"),
    ("---\ntitle: X\nstatus: maybe\n---\nBody\n", "status 'maybe'"),
    ("---\ntitle: X\nlast_reviewed: last week\n---\nBody\n", "YYYY-MM-DD"),
    ("---\ntitle: X\n---\n\n## On the phone\n- hi\n", "answer is empty"),
    ("---\ntitle: X\nreview_every_days: often\n---\nBody\n", "whole number"),
    ("---\n- a\n- b\n---\nBody\n", "'name: value'"),
])
def test_malformed_files_say_what_is_wrong(text, message):
    with pytest.raises(EntryError, match=re.escape(message)):
        parse_entry("x", text)


def test_yaml_tags_are_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    text = (f"---\ntitle: !!python/object/apply:os.system ['touch {marker}']\n---\nBody\n")
    with pytest.raises(EntryError):
        parse_entry("x", text)
    assert not marker.exists()


def test_slugify():
    assert slugify("Item arrived damaged!") == "item-arrived-damaged"
    assert slugify("  Zoë's   £5 refund ") == "zo-s-5-refund"
    assert slugify("!!!") == "entry"


def test_form_fields_round_trip():
    entry = parse_entry("x", entry_text("X", "Answer", phrasings=["a", "b"], tags="[t]",
                                        last_reviewed="2026-01-02"))
    again = entry_from_fields("x", fields_of(entry), entry)
    assert again.title == entry.title and again.phrasings == entry.phrasings
    assert again.last_reviewed == entry.last_reviewed
    with pytest.raises(EntryError, match="date"):
        entry_from_fields("x", dict(fields_of(entry), last_reviewed="soon"), entry)
    with pytest.raises(EntryError, match="title"):
        entry_from_fields("x", dict(fields_of(entry), title=" "), entry)


def test_a_malformed_file_is_named_and_the_rest_loads(sheet):
    # straight into the store, as a push would: the sheet itself refuses to write it
    sheet.store.write({"broken.md": "---\ntitle: [x\n---\nBody\n"}, message="bad", author=TARA)
    entries, problems = sheet.entries()
    assert {e.slug for e in entries} == {"item-arrived-damaged", "refund-status", "wrong-colour"}
    assert [p.path for p in problems] == ["broken.md"]
    assert "YAML" in problems[0].message
    with pytest.raises(EntryError):
        sheet.entry("broken")
    assert isinstance(sheet.entry("refund-status"), Entry)


def test_synonyms_and_placeholders_files():
    groups = parse_synonyms("# comment\nrefund, Money Back ,reimburse\n\nlonely\nA, a\n")
    assert groups == [("refund", "money back", "reimburse")]
    places = parse_placeholders("customer_name: {label: Customer, default: x}\norder: {}\n")
    assert places["customer_name"] == {"label": "Customer", "example": "", "default": "x"}
    assert places["order"]["label"] == "Order"
    assert parse_placeholders(": [bad") == {}


def test_sheet_parts(sheet: Sheet):
    assert sheet.part("greeting") == "Hello {{ customer_name }},"
    assert ("colour", "color", "shade") in sheet.synonyms()
    assert sheet.placeholders()["company_name"]["default"] == "Northwind Home"


def test_update_text_rewrites_only_the_changed_fields():
    import difflib
    from dataclasses import replace

    from kb.entry import update_text, with_review_defaults

    original = ("---\ntitle: Late parcel\nphrasings:\n  - where is it\n  - still not here\n"
                "tags: [delivery, late]\nowner: ops   # who answers for it\n---\n"
                "Sorry, it is late.\n\nIt leaves today.\n\n## On the phone\n\n- Say sorry.\n")
    old = parse_entry("late", original)
    assert update_text(original, old, old) == original
    new = replace(old, answer="Sorry, it is late.\n\nIt leaves tomorrow.\n",
                  phrasings=(*old.phrasings, "no parcel yet"))
    text = update_text(original, old, new)
    changed = [line for line in difflib.ndiff(original.splitlines(), text.splitlines())
               if line[:1] in "+-"]
    assert changed == ["+   - no parcel yet", "- It leaves today.", "+ It leaves tomorrow."]
    assert parse_entry("late", text) == new
    assert "owner: ops   # who answers for it" in text
    dated = with_review_defaults(old, "tara")
    text = update_text(original, old, dated)
    assert parse_entry("late", text) == dated and "owner: ops" in text
    assert parse_entry("late", text).review_every_days == 180
