"""Placeholders and synonyms edited as rows (kb.part_forms): no YAML to type, the
file's comments kept, bad rows refused with the rows kept."""

from __future__ import annotations

import re

import pytest

from kb.part_forms import RowError, rows_of, text_of
from kb.sheet import parse_placeholders, parse_synonyms
from tests.conftest import csrf_from

PLACEHOLDERS = ("# How the file works.\n# Second line.\n"
                "customer_name: {label: Customer name, example: Ana}\n"
                "days: {label: Number of days, default: '5'}\n")
SYNONYMS = ("# groups\nrefund, money back  # money\n\n# Delivery\n"
            "broken, damaged, smashed\nlate, delayed\n")


def test_placeholder_rows_round_trip_and_keep_the_opening_comments():
    rows = rows_of("placeholders", PLACEHOLDERS)
    assert rows == [{"name": "customer_name", "label": "Customer name", "example": "Ana",
                     "default": ""},
                    {"name": "days", "label": "Number of days", "example": "", "default": "5"}]
    rows[1]["default"] = "7"
    rows.append({"name": "team_name", "label": "Team: who", "example": "the billing team",
                 "default": ""})
    text = text_of("placeholders", PLACEHOLDERS, rows)
    assert text.startswith("# How the file works.\n# Second line.\n")
    parsed = parse_placeholders(text)
    assert parsed["days"]["default"] == "7" and parsed["team_name"]["label"] == "Team: who"
    assert list(parsed) == ["customer_name", "days", "team_name"]


@pytest.mark.parametrize("row,says", [
    ({"name": "", "label": "Order", "example": "", "default": ""}, "has no name"),
    ({"name": "order number", "label": "", "example": "", "default": ""}, "cannot be"),
    ({"name": "days", "label": "Again", "example": "", "default": ""}, "twice"),
])
def test_a_bad_placeholder_row_is_refused_with_what_to_do(row, says):
    with pytest.raises(RowError, match=says):
        text_of("placeholders", PLACEHOLDERS, rows_of("placeholders", PLACEHOLDERS) + [row])


def test_synonym_rows_keep_every_comment_and_blank_line():
    rows = rows_of("synonyms", SYNONYMS)
    assert [r["words"] for r in rows] == ["refund, money back", "broken, damaged, smashed",
                                         "late, delayed"]
    rows[0]["words"] = "refund, money back, reimbursement"
    rows[2] = rows[2] | {"words": ""}  # removed
    rows.append({"words": "parcel, package, box", "line": ""})
    text = text_of("synonyms", SYNONYMS, rows)
    assert text == ("# groups\nrefund, money back, reimbursement  # money\n\n# Delivery\n"
                    "broken, damaged, smashed\nparcel, package, box\n")
    assert ("late", "delayed") not in parse_synonyms(text)
    with pytest.raises(RowError, match="alone is no group"):
        text_of("synonyms", SYNONYMS, rows + [{"words": "parcel", "line": ""}])


def _form(page: str) -> dict[str, str]:
    fields = {k: v for k, v in re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', page)
              if not k.startswith("remove_")}  # boxes are sent only when ticked
    fields["original"] = re.search(r'<textarea name="original"[^>]*>(.*?)</textarea>', page,
                                   re.S).group(1)
    fields["text"] = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', page,
                               re.S).group(1)
    fields["csrf_token"] = csrf_from(page)
    return {k: v.replace("&#39;", "'").replace("&amp;", "&") for k, v in fields.items()}


def test_placeholders_are_edited_as_rows_through_the_page(app, trainer):
    store = app.extensions["kb"].sheet.store
    page = trainer.get("/sheet/placeholders").get_data(as_text=True)
    assert 'id="part-rows"' in page and 'value="customer_name"' in page
    form = _form(page)
    n = next(int(k.split("_")[1]) for k, v in form.items() if k.startswith("name_") and not v)
    form |= {f"name_{n}": "refund_days", f"label_{n}": "Refund window (days)",
             f"default_{n}": "14", "reason": "policy", "action": "save"}
    response = trainer.post("/sheet/placeholders", data=form)
    assert response.status_code == 302
    saved = parse_placeholders(store.read("_sheet/placeholders.yml").text)
    assert saved["refund_days"] == {"label": "Refund window (days)", "example": "",
                                    "default": "14"}
    assert "customer_name" in saved
    # a row removed (no entry uses it)
    form = _form(trainer.get("/sheet/placeholders").get_data(as_text=True))
    row = next(k for k, v in form.items() if v == "refund_days").split("_")[1]
    form |= {f"remove_{row}": "1", "reason": "not needed", "action": "save"}
    assert trainer.post("/sheet/placeholders", data=form).status_code == 302
    saved = parse_placeholders(store.read("_sheet/placeholders.yml").text)
    assert "refund_days" not in saved and "customer_name" in saved
    # a bad row: refused, nothing saved, the rows as typed are on the page again
    before = store.head()
    form = _form(trainer.get("/sheet/placeholders").get_data(as_text=True))
    n = next(int(k.split("_")[1]) for k, v in form.items() if k.startswith("name_") and not v)
    form |= {f"name_{n}": "order number", f"label_{n}": "Typed label kept",
             "reason": "x", "action": "save"}
    response = trainer.post("/sheet/placeholders", data=form)
    assert response.status_code == 422 and store.head() == before
    shown = response.get_data(as_text=True)
    assert "cannot be a placeholder" in shown and 'value="Typed label kept"' in shown


def test_the_file_itself_wins_when_it_was_edited(app, trainer):
    store = app.extensions["kb"].sheet.store
    form = _form(trainer.get("/sheet/synonyms").get_data(as_text=True))
    form |= {"text": form["text"] + "parcel, package\n", "reason": "raw", "action": "save"}
    assert trainer.post("/sheet/synonyms", data=form).status_code == 302
    assert ("parcel", "package") in parse_synonyms(store.read("_sheet/synonyms.txt").text)
