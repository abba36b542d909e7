"""Several entries in one reply (kb.compose.together): one greeting, the answers in
order, each shared placeholder asked once, one closing."""

from __future__ import annotations

import re

from kb.compose import compose, together
from kb.entry import Entry

A = Entry("a", "Refund late", "Your refund of {{ amount }} for {{ order_number }} is on its "
          "way.\n", "- Say the refund is on its way.\n", extra={"chat": "Refund on its way."})
B = Entry("b", "Box damaged", "Sorry the box for {{ order_number }} came damaged.\n",
          "- Say sorry for the box.\n", extra={"chat": "Sorry about the box."})
C = Entry("c", "No chat", "Email only.\n")


def test_one_greeting_the_answers_in_order_one_closing():
    mail = compose(together([A, B]), "Hi {{ customer_name }},", "Regards,\nSam",
                   {"customer_name": "Ana", "order_number": "NW-1", "amount": "£5"})
    assert mail.text == ("Hi Ana,\n\nYour refund of £5 for NW-1 is on its way.\n\n"
                         "Sorry the box for NW-1 came damaged.\n\nRegards,\nSam\n")
    assert mail.subject == "Re: Refund late and Box damaged"
    assert mail.placeholders == ["customer_name", "amount", "order_number"]  # each once
    reply = together([A, B])
    assert "**Refund late**" in reply.phone and "**Box damaged**" in reply.phone
    assert reply.chat == "Refund on its way. Sorry about the box."
    assert together([A, C]).chat == ""  # not every entry has a chat version
    assert together([A]) is A


def test_the_entry_page_and_the_api_build_one_reply(client):
    page = client.get("/e/refund-status?and=item-arrived-damaged").get_data(as_text=True)
    together_list = page.split('id="together"')[1].split("</ol>")[0]
    assert "Refund status" in together_list and "Item arrived damaged" in together_list
    fields = re.findall(r'<input name="(\w+)"', page.split('id="compose"')[1].split("</form>")[0])
    assert fields.count("customer_name") == 1 and fields.count("order_number") == 1  # once
    assert 'name="item"' in page and 'name="amount"' in page  # from both answers
    preview = page.split('id="preview"')[1].split("</div>")[0]
    assert preview.count("Hello") == 1 and "Your refund of" in preview
    assert "arrived damaged" in preview
    data = client.post("/api/compose/refund-status?and=item-arrived-damaged",
                       json={"customer_name": "Ana"}).get_json()
    assert data["subject"] == "Re: Refund status and Item arrived damaged"
    assert data["text"].count("Hello Ana,") == 1
    # taking one out: a link to the reply without it
    assert 'href="/e/refund-status"' in together_list
    # an entry that is not there is named, not silently dropped
    missing = client.get("/e/refund-status?and=no-such-entry")
    assert missing.status_code == 404 and "no-such-entry" in missing.get_data(as_text=True)
    # the same entry twice, or the page's own, counts once
    page = client.get("/e/refund-status?and=refund-status,wrong-colour,wrong-colour")
    items = re.findall(r"<li>", page.get_data(as_text=True).split('id="together"')[1]
                       .split("</ol>")[0])
    assert len(items) == 2
