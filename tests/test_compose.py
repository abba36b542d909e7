"""Composing an email: plain substitution, never template evaluation."""

from __future__ import annotations

import email
import email.policy
from urllib.parse import parse_qs, unquote, urlsplit

from kb.compose import compose, fill, phone_script, placeholders_in
from kb.entry import Entry

GREETING = "Hello {{ customer_name }},"
CLOSING = "Kind regards,\n\n{{ agent_name }}  \n{{ company_name }}"
ENTRY = Entry("x", "Late parcel", "Your order {{ order_number }} is **late**, sorry.\n",
              "- Sorry, {{ customer_name }}.\n")


def test_placeholders_in_order_of_first_appearance():
    assert placeholders_in(GREETING, ENTRY.answer, CLOSING) == [
        "customer_name", "order_number", "agent_name", "company_name"]


def test_fill_leaves_unknown_placeholders_visible():
    assert fill("Hi {{ a }} and {{b}}", {"a": "Ana"}) == "Hi Ana and {{b}}"


def test_values_with_template_syntax_come_out_literally():
    mail = compose(ENTRY, GREETING, CLOSING, {
        "customer_name": "{{ agent_name }}", "order_number": "{% for x in y %}{{ 7*7 }}",
        "agent_name": "Sam"})
    assert mail.text.startswith("Hello {{ agent_name }},")
    assert "Your order {% for x in y %}{{ 7*7 }} is **late**" in mail.text
    assert "49" not in mail.text and "49" not in mail.html
    assert "{{ agent_name }}," in mail.html and "Sam" in mail.html


def test_html_in_values_is_escaped():
    mail = compose(ENTRY, GREETING, CLOSING, {"customer_name": "<script>alert(1)</script>"})
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "<strong>late</strong>" in mail.html


def test_missing_placeholders_are_listed_and_flagged():
    mail = compose(ENTRY, GREETING, CLOSING, {"customer_name": "Ana"})
    assert mail.missing == ["order_number", "agent_name", "company_name"]
    assert ('<mark class="missing" data-name="order_number">[Order number]</mark>'
            in mail.html)
    assert "{{" not in mail.text + mail.html + mail.subject  # never braces before people
    assert "Your order [Order number] is" in mail.text


def test_cues_use_the_sheets_labels():
    mail = compose(ENTRY, GREETING, CLOSING, {}, labels={"order_number": "Order no. (8 digits)",
                                                         "customer_name": "Customer's name"})
    assert mail.text.startswith("Hello [Customer's name],")
    assert "Your order [Order no. (8 digits)] is" in mail.text
    assert "[Order no. (8 digits)]</mark>" in mail.html  # escaped like any text
    assert "Customer&#x27;s name" in mail.html or "Customer&#39;s name" in mail.html
    _, points, _ = phone_script("", ENTRY, {}, labels={"customer_name": "Customer's name"})
    assert "Sorry, <mark" in points and "[Customer&#x27;s name]" in points and "{{" not in points


def test_defaults_fill_in_and_values_win():
    mail = compose(ENTRY, GREETING, CLOSING, {}, defaults={"company_name": "Northwind"})
    assert mail.text.rstrip().endswith("Northwind")
    mail = compose(ENTRY, GREETING, CLOSING, {"company_name": "Acme"},
                   defaults={"company_name": "Northwind"})
    assert mail.text.rstrip().endswith("Acme")


def test_entry_markup_is_sanitised():
    evil = Entry("e", "E", '<script>alert(1)</script> <img src=x onerror=alert(1)> '
                 "[x](javascript:alert(1)) [ok](https://example.com)\n")
    html = str(compose(evil, "", "", {}).html)
    assert "<script" not in html and "onerror" not in html and "javascript:" not in html
    assert 'href="https://example.com"' in html


def test_plain_text_has_no_trailing_spaces():
    mail = compose(ENTRY, GREETING, CLOSING, {"agent_name": "Sam"})
    assert all(line == line.rstrip() for line in mail.text.splitlines())
    assert "Sam\n[Company name]" in mail.text


def test_eml_is_a_multipart_draft():
    mail = compose(ENTRY, GREETING, CLOSING, {"customer_name": "Zoë 😀", "agent_name": "Sam"})
    msg = email.message_from_bytes(mail.to_eml(to="zoe@example.com"),
                                   policy=email.policy.default)
    assert msg["Subject"] == "Re: Late parcel" and msg["To"] == "zoe@example.com"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == mail.text
    assert "Zoë 😀" in msg.get_body(("html",)).get_content()


def test_mailto_carries_subject_and_body():
    mail = compose(ENTRY, GREETING, CLOSING, {"customer_name": "Ana & Bo"})
    query = parse_qs(urlsplit(mail.mailto()).query)
    assert query["subject"] == ["Re: Late parcel"]
    assert unquote(mail.mailto()).count("Ana & Bo") == 1
    assert query["body"][0] == mail.text


def test_phone_script_fills_the_agent_name():
    opening, points, missing = phone_script("This is {{ agent_name }}.", ENTRY,
                                            {"agent_name": "Sam"})
    assert "This is Sam." in opening and "[Customer name]" in points
    assert "{{" not in points
    assert missing == ["customer_name"]


def test_text_holding_the_old_internal_marker_renders_as_written():
    # "\u2063kb0\u2063" was once the marker for the first placeholder: text that
    # contains it must neither crash nor swap in a value.
    marker = "\u2063kb0\u2063"
    entry = Entry("m", f"Odd {marker} title", f"Hi {{{{ customer_name }}}}, see {marker} and "
                  "\u2063kb7\u2063.\n", f"- Say {marker}.\n")
    mail = compose(entry, GREETING, CLOSING, {"customer_name": "Ana"})
    assert f"see {marker} and" in mail.text and "Hi Ana," in mail.text
    assert f"see {marker} and" in mail.html and "Hi Ana," in mail.html
    opening, points, _ = phone_script("Hi {{ customer_name }}", entry, {})
    assert marker in points and '[Customer name]</mark>' in opening


def test_a_fallback_fills_an_empty_placeholder_as_plain_text():
    entry = Entry("x", "Late {{ item | parcel }}",
                  "Your {{ item | order }} is late; {{ item }} again.\n")
    mail = compose(entry, "Hi {{ customer_name | there }},", "", {})
    assert mail.text.startswith("Hi there,")
    assert "Your order is late" in mail.text and "[Item] again" in mail.text
    assert mail.subject == "Re: Late parcel"
    assert mail.missing == ["item"]  # the one bare use of item still needs a value
    filled = compose(entry, "Hi {{ customer_name | there }},", "", {"item": "lamp",
                                                                     "customer_name": "Ana"})
    assert filled.text.startswith("Hi Ana,") and "Your lamp is late; lamp again." in filled.text
    assert filled.missing == []
    assert "<mark" not in str(compose(
        Entry("x", "T", "Your {{ item | order }}.\n"), "", "", {}).html)


def test_fallback_text_is_escaped_in_html():
    mail = compose(Entry("x", "T", "See {{ link | <b>here</b> }}.\n"), "", "", {})
    assert "<b>" not in str(mail.html)


ENCODED_WORD = "Refund =?utf-8?q?x=0D=0ABcc:_evil@example.com?= late"


def _header_names(raw: bytes) -> list[str]:
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode()
    return [line.split(":", 1)[0] for line in head.split("\n") if line and line[0] not in " \t"]


def test_an_encoded_word_in_a_title_never_becomes_a_header():
    """An RFC 2047 encoded word holding CR/LF, in a title an agent proposed, must not
    turn into a Bcc: line when Python refolds the header (CVE-2024-6923), whatever
    the Python: neither in a notification email nor in a downloaded .eml."""
    from kb.mail import build_message

    raw = build_message("kb@example.com", "tara@example.com", ENCODED_WORD, "body").as_bytes()
    assert "Bcc" not in _header_names(raw)
    entry = Entry(slug="x", title=ENCODED_WORD, answer="Hello.")
    eml = compose(entry, "Hi,", "Bye", {}).to_eml()
    assert "Bcc" not in _header_names(eml)
