"""Links and small files that go with an answer (kb.attachments): in the email, beside
the copy button, attached to the .eml; checked by content and size; served safely."""

from __future__ import annotations

import email
import email.policy
import io
import re

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from kb.attachments import AttachmentError, check_upload, parse_links, safe_name
from kb.compose import compose
from kb.entry import Entry
from tests.conftest import csrf_from

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def test_links_are_label_and_address_and_written_into_the_email():
    assert parse_links("Returns form | https://shop.example/returns\n\nmailto:help@shop.example"
                       ) == [{"label": "Returns form", "url": "https://shop.example/returns"},
                             {"label": "mailto:help@shop.example",
                              "url": "mailto:help@shop.example"}]
    for bad in ("Form | shop.example/returns", "x | javascript:alert(1)",
                "x | https://a.example/<script>"):
        with pytest.raises(AttachmentError, match="is not an address"):
            parse_links(bad)
    entry = Entry("x", "T", "Answer.\n", extra={"links": [
        {"label": "Returns form", "url": "https://shop.example/r?a=1&b=2"}]})
    mail = compose(entry, "Hi", "Bye", {})
    assert "- Returns form: https://shop.example/r?a=1&b=2\n\nBye" in mail.text
    assert '<a href="https://shop.example/r?a=1&amp;b=2"' in str(mail.html)


def test_a_file_is_checked_by_its_bytes_and_its_size():
    assert safe_name("Returns Form (2024).PDF") == "returns-form-2024.pdf"
    with pytest.raises(AttachmentError, match="only PDF, PNG and JPEG"):
        safe_name("macro.docm")
    assert check_upload("form.pdf", PDF) == "application/pdf"
    with pytest.raises(AttachmentError, match="is not the PDF file its name says"):
        check_upload("form.pdf", b"<html><script>alert(1)</script>")
    with pytest.raises(AttachmentError, match="is not the PNG file"):
        check_upload("photo.png", PDF)
    with pytest.raises(AttachmentError, match="at most 2 MB"):
        check_upload("big.pdf", PDF + b"0" * (2 * 1024 * 1024))
    with pytest.raises(AttachmentError, match="is empty"):
        check_upload("none.pdf", b"")


def _edit_form(trainer, slug: str) -> dict:
    page = trainer.get(f"/e/{slug}/edit").get_data(as_text=True)
    fields = {k: v for k, v in re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', page)
              if k not in ("keep_file",)}
    for name in ("answer", "phone", "phrasings", "chat", "links"):
        found = re.search(rf'<textarea name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
        fields[name] = found.group(1).replace("&#39;", "'") if found else ""
    fields["csrf_token"] = csrf_from(page)
    fields["reason"] = "forms"
    return fields


def test_a_trainer_adds_links_and_a_file_in_one_commit(app, trainer, client):
    store = app.extensions["kb"].sheet.store
    before = len(store.history())
    fields = _edit_form(trainer, "refund-status") | {
        "links": "Refund tracker | https://shop.example/refunds"}
    response = trainer.post("/e/refund-status/edit", data=fields | {
        "upload": (io.BytesIO(PDF), "Refund Form.pdf")}, content_type="multipart/form-data")
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert len(store.history()) == before + 1  # the entry and its file together
    assert store.read_bytes(store.version_of("_files/refund-form.pdf")) == PDF
    entry = app.extensions["kb"].sheet.entry("refund-status")
    assert entry.extra["files"] == ["refund-form.pdf"]
    page = client.get("/e/refund-status").get_data(as_text=True)
    assert 'href="/files/refund-form.pdf"' in page
    assert "Refund tracker: <a href=\"https://shop.example/refunds\"" in page
    served = client.get("/files/refund-form.pdf")
    assert served.data == PDF and served.mimetype == "application/pdf"
    assert served.headers["Content-Disposition"] == 'attachment; filename="refund-form.pdf"'
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    eml = client.post("/e/refund-status/email.eml", data={
        "csrf_token": csrf_from(page), "blanks": "1"})
    msg = email.message_from_bytes(eml.data, policy=email.policy.default)
    [attached] = list(msg.iter_attachments())
    assert attached.get_filename() == "refund-form.pdf" and attached.get_content() == PDF
    assert "Refund tracker: https://shop.example/refunds" in msg.get_body(("plain",)).get_content()
    api = client.get("/api/entries/refund-status").get_json()
    assert api["files"] == ["refund-form.pdf"]
    assert api["links"] == [{"label": "Refund tracker", "url": "https://shop.example/refunds"}]
    # unticked: the entry no longer carries it (the file stays in the history)
    fields = _edit_form(trainer, "refund-status")
    assert trainer.post("/e/refund-status/edit", data=fields).status_code == 302
    assert "files" not in app.extensions["kb"].sheet.entry("refund-status").extra


def test_a_disguised_or_huge_file_is_refused_and_nothing_is_saved(app, trainer):
    store = app.extensions["kb"].sheet.store
    head = store.head()
    fields = _edit_form(trainer, "refund-status")
    for upload, says in ((b"<html><script>alert(1)</script>", "is not the PDF file"),
                         (PDF + b"0" * (2 * 1024 * 1024), "at most 2 MB")):
        # encoded here: the test client would spool a large body to a file it never closes
        boundary, body = encode_multipart(fields | {"upload": FileStorage(
            io.BytesIO(upload), filename="form.pdf", content_type="application/pdf")})
        response = trainer.post("/e/refund-status/edit", data=body,
                                content_type=f"multipart/form-data; boundary={boundary}")
        assert response.status_code == 200 and says in response.get_data(as_text=True)
        assert store.head() == head
    assert trainer.get("/files/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_files_through_the_api(app, trainer, client):
    response = trainer.put("/api/files/returns-form.pdf", data=PDF,
                           content_type="application/pdf")
    assert response.status_code == 201 and response.get_json()["url"] == "/files/returns-form.pdf"
    bad = trainer.put("/api/files/returns-form.pdf", data=b"MZ\x90\x00",
                      content_type="application/pdf")
    assert bad.status_code == 422 and "is not the PDF file" in bad.get_json()["message"]
    assert trainer.put("/api/files/Bad Name.exe", data=PDF,
                       content_type="application/pdf").status_code == 400
    assert trainer.put("/api/files/x.pdf", data=PDF, content_type="text/plain").status_code == 415
    assert client.put("/api/files/x.pdf", data=PDF,
                      content_type="application/pdf").status_code == 403
    assert client.get("/files/returns-form.pdf").data == PDF
