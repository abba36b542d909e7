"""What trainers read names entries by their titles and versions by date and author;
diffs show an entry's fields by name, never its file name, YAML or a hash."""

from __future__ import annotations

import re

from kb import proposals as P
from kb.history import readable
from kb.users import get_user
from tests.conftest import TARA, entry_text, post_form

HASH = re.compile(r"\b[0-9a-f]{7}\b")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def heading(html: str) -> str:
    return text_of(re.search(r"<h1>(.*?)</h1>", html, re.S).group(1)).strip()


def test_a_readable_entry_has_labelled_fields_and_no_yaml():
    text = entry_text("Parcel left outside", "We will check the photo.", "- Ask where.",
                      category="Delivery", tags=["doorstep", "photo"],
                      phrasings=["left at my door"])
    shown = readable("parcel-left-outside.md", text)
    assert shown.startswith("Title: Parcel left outside\nCategory: Delivery\n")
    assert "Tags: doorstep, photo\n" in shown and "Customers say: left at my door\n" in shown
    assert "Email answer:\nWe will check the photo.\n" in shown
    assert "On the phone:\n- Ask where.\n" in shown
    assert "---" not in shown and "tags:" not in shown
    # not an entry, or an entry that cannot be read: as written
    assert readable("_sheet/synonyms.txt", "a, b\n") == "a, b\n"
    assert readable("x.md", "---\ntitle: [unclosed\n---\n") == "---\ntitle: [unclosed\n---\n"


def test_the_review_queue_and_a_new_entry_s_review_speak_of_titles(app, trainer):
    db, sheet = app.extensions["kb_db"], app.extensions["kb"].sheet
    alice = get_user(db, "alice")
    new = P.create(db, sheet, alice, "parcel-left-outside",
                   entry_text("Parcel left outside", "We will check the photo.",
                              category="Delivery", tags=["doorstep"]),
                   "customers ask", base_version=None, is_new=True)
    queue = trainer.get("/review").get_data(as_text=True)
    row = re.search(rf"<tr><td>{new.id}</td>(.*?)</tr>", queue, re.S).group(1)
    assert "Parcel left outside" in row and "parcel-left-outside" not in text_of(row)
    review = trainer.get(f"/review/{new.id}").get_data(as_text=True)
    changes = review.split("<h2>Changes</h2>")[1].split("</table>")[0]
    assert "Title: Parcel left outside" in changes and "Category: Delivery" in changes
    assert "Email answer:" in changes
    assert "---" not in changes and "title:" not in changes and "tags:" not in changes


def test_history_version_restore_and_diff_name_the_entry_and_the_versions(app, trainer):
    sheet = app.extensions["kb"].sheet
    text = sheet.store.read("refund-status.md").text
    sheet.write({"refund-status.md": text.replace("was sent", "went out")},
                message="clearer", author=TARA)
    history = trainer.get("/history/refund-status.md").get_data(as_text=True)
    assert heading(history) == "History: Refund status"
    old = sheet.store.history("refund-status.md")[1].version
    version = trainer.get(f"/history/refund-status.md/at/{old}").get_data(as_text=True)
    assert heading(version).startswith("Refund status: the version of ")
    assert " by " in heading(version)
    assert not HASH.search(heading(version))
    assert "Email answer:" in version and "title:" not in version
    restore = trainer.get(f"/history/refund-status.md/restore?version={old}").get_data(
        as_text=True)
    assert heading(restore) == "Restore this version of Refund status?"
    assert "title:" not in restore.split("</table>")[0]
    new = sheet.store.version_of("refund-status.md")
    diff = trainer.get(f"/history/refund-status.md/diff?a={old}&b={new}").get_data(
        as_text=True)
    assert heading(diff) == "Compare: Refund status"
    table = text_of(diff.split("<table")[1].split("</table>")[0])
    assert "Tara Trainer" in table and not HASH.search(table)
    done = post_form(trainer, "/history/refund-status.md/restore",
                     {"version": old, "reason": "back"},
                     page_url=f"/history/refund-status.md/restore?version={old}")
    assert done.status_code == 302
    after = trainer.get("/history/refund-status.md").get_data(as_text=True)
    assert "Restored that version as a new version." in after


def test_a_conflict_names_the_entry_and_who_saved_meanwhile(app, trainer):
    sheet = app.extensions["kb"].sheet
    form = trainer.get("/e/refund-status/edit").get_data(as_text=True)
    base = re.search(r'name="base_version" value="([^"]+)"', form).group(1)
    text = sheet.store.read("refund-status.md").text
    sheet.write({"refund-status.md": text.replace("was sent", "went out")},
                message="meanwhile", author=TARA)
    fields = dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', form))
    answer = re.search(r'<textarea[^>]*name="answer"[^>]*>(.*?)</textarea>', form, re.S)
    fields.update({"answer": answer.group(1).replace("Your refund", "The refund"),
                   "base_version": base, "reason": "mine"})
    page = trainer.post("/e/refund-status/edit", data=fields).get_data(as_text=True)
    assert heading(page) == "Not saved: Refund status changed while you were editing"
    assert "saved " in page and "by Tara Trainer" in page
    assert not HASH.search(text_of(page.split("Both texts in full")[1].split("</h3>")[0]))
