"""Answer checks: each on texts where it must fire and where it must not."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from kb.checks import (
    DEFAULT_RULES_TEXT,
    check_commitment,
    check_entry,
    check_placeholders,
    check_sheet,
    check_tone,
    load_rules,
    reading_level,
    spoken_seconds,
    syllables,
)
from kb.cli import main
from kb.entry import Entry
from kb.sheet import Sheet
from kb.store import ContentStore
from tests.conftest import SMALL_SHEET, STARTER, TARA, entry_text

RULES = load_rules(DEFAULT_RULES_TEXT)


def tone(text: str) -> list[str]:
    return [f.excerpt.lower() for f in check_tone(text, "answer", RULES)]


@pytest.mark.parametrize("text,phrase", [
    ("Please calm down so I can help.", "calm down"),
    ("You're wrong about the date.", "you're wrong"),
    ("That’s incorrect.", "that’s incorrect"),
    ("I don't know.", "i don't know"),
    ("That's not my job.", "that's not my job"),
    ("Sorry, I can't help with that.", "i can't help with that"),
    ("Whatever you prefer.", "whatever"),
    ("It's our policy, so we can't.", "it's our policy"),
    ("You should have read the label.", "you should have"),
    ("Unfortunately there is nothing we can do.", "unfortunately there is nothing"),
    ("No. We don't take returns after 30 days.", "no"),
])
def test_inflaming_phrases_fire(text, phrase):
    assert phrase in tone(text)


@pytest.mark.parametrize("text", [
    "No problem, we will sort it out today.",
    "No worries, I can swap it for you.",
    "There is no charge for the new one.",
    "I don't know yet, but I will find out by noon.",
    "We'll check whatsoever? No: we check every order.",  # "whatsoever" is not "whatever"
    "No. What I can do is send a new one today.",
    "The noodles arrived cold.",
    "Let me find out why the parcel is late.",
])
def test_harmless_texts_do_not_fire(text):
    assert tone(text) == []


@pytest.mark.parametrize("text,phrase", [
    ("You should have checked the size guide before ordering.", "you should have"),
    ("You should have told us sooner.", "you should have"),
    ("You should've kept the receipt.", "you should've"),
    ("You should have been more careful with the box.", "you should have"),
    ("You should have been aware of the fee.", "you should have"),
    ("You shouldn't have opened the parcel.", "you shouldn't have"),
    ("You should not have washed it on hot.", "you should not have"),
    ("You should have already sent it back.", "you should have already"),
    ("You should have\nordered the larger size.", "you should have"),
])
def test_you_should_have_is_blame_before_what_the_customer_did(text, phrase):
    assert phrase in tone(text)


@pytest.mark.parametrize("text", [
    "You should have had it within six weeks, so I'm sorry it is late.",  # we are late
    "You should have enough left for the month.",
    "You should have received an email from us yesterday.",
    "You should have already received the label.",
    "You should have got a text with the tracking link.",
    "You should have already heard from the courier.",
    "You should have been sent a new card by now.",
    "You should have been told about the delay, and I'm sorry you weren't.",
    "You should have been charged once, not twice.",
    "You should have a refund by Friday.",
    "You shouldn't have had to wait this long.",
    "That is not the service you should have received.",
])
def test_you_should_have_about_what_we_owe_is_not_blame(text):
    assert tone(text) == []


def test_the_starter_sheet_has_the_default_rules():
    """A new sheet starts with the same rules as a sheet without the file."""
    assert (STARTER / "_sheet" / "checks.yml").read_text() == DEFAULT_RULES_TEXT


def test_tone_finding_points_at_the_phrase_and_suggests_a_rewrite():
    text = "Thanks for waiting. Please calm down."
    (finding,) = check_tone(text, "answer", RULES)
    assert text[finding.start:finding.end] == "calm down"
    assert finding.level == "error" and finding.suggestion


def test_syllable_counter_on_known_words():
    known = {"cat": 1, "table": 2, "banana": 3, "customer": 3, "refund": 2, "delivery": 4,
             "apology": 4, "package": 2, "happy": 2, "replacement": 3, "organization": 5,
             "the": 1, "quickly": 2, "email": 2, "business": 2, "created": 3, "smile": 1,
             "phone": 1, "every": 3, "area": 3, "arrived": 2, "boxes": 2, "simple": 2,
             "little": 2}
    misses = [w for w, n in known.items() if syllables(w) != n]
    assert len(misses) <= 4, misses


def test_reading_level_of_known_texts():
    assert reading_level("The cat sat on the mat. The dog ran to the park.").grade < 2
    dense = ("The implementation of comprehensive organizational methodologies necessitates "
             "considerable institutional commitment and interdepartmental coordination.")
    assert reading_level(dense).grade > 12
    plain = ("I am sorry your lamp came broken. We will send a new one today. "
             "You do not need to send the old one back.")
    assert reading_level(plain).grade <= 6


def test_reading_level_names_the_hardest_sentence():
    text = ("We are sorry. The reconciliation of intercontinental transportation documentation "
            "necessitates considerable administrative consideration. Thanks.")
    level = reading_level(text)
    assert "reconciliation" in level.hardest[0][1]
    findings = check_entry(Entry("x", "X", text), RULES)
    hard = [f for f in findings if f.check == "reading-level"]
    assert hard and "reconciliation" in hard[0].message


def test_placeholders_do_not_count_against_reading_level():
    assert reading_level("Hi {{ customer_name }}. Your box is here.").grade < 3


def test_spoken_length():
    assert spoken_seconds("- " + " ".join(["word"] * 150)) == pytest.approx(60, abs=1)
    long_points = "\n".join("- " + " ".join(["word"] * 40) for _ in range(4))
    (finding,) = [f for f in check_entry(Entry("x", "X", "Hi.", long_points), RULES)
                  if f.check == "spoken-length"]
    assert finding.level == "error"
    assert not [f for f in check_entry(Entry("x", "X", "Hi.", "- Say sorry.\n"), RULES)
                if f.check == "spoken-length"]


def test_placeholder_checks():
    text = "Hi {{ name }}, order { order_number }}, {{ two words }}, [[ item ]], {{ item }"
    findings = check_placeholders(text, "answer", {"customer_name", "item", "order_number"})
    excerpts = {f.excerpt for f in findings}
    assert "{{ name }}" in excerpts  # unknown
    assert "{ order_number }}" in excerpts  # misspelt braces
    assert "{{ two words }}" in excerpts  # cannot be filled
    assert "[[ item ]]" in excerpts
    assert any(e.startswith("{{ item }") for e in excerpts)
    ok = check_placeholders("Hi {{ customer_name }}, about {{item}}.", "answer",
                            {"customer_name", "item"})
    assert ok == []
    for f in findings:
        assert text[f.start:f.end] == f.excerpt


@pytest.mark.parametrize("text,fires", [
    ("We'll call you back.", True),
    ("I will get back to you soon.", True),
    ("We will follow up.", True),
    ("We'll call you back by 3pm tomorrow.", False),
    ("I will email you within 2 business days.", False),
    ("I'll let you know. You will hear from me by Friday.", False),
    ("We will call you at {{ callback_time }}.", False),
    ("Your parcel is on the way.", False),
])
def test_commitment_names_a_time(text, fires):
    assert bool(check_commitment(text, "answer")) is fires


def test_rules_are_read_from_the_content_repository(tmp_path):
    store = ContentStore.create(tmp_path / "c", SMALL_SHEET, "start")
    sheet = Sheet(store)
    sheet.write({"bad.md": entry_text("Bad", "This is simply unacceptable behaviour.")},
                message="bad", author=TARA)
    assert not [f for e in check_sheet(sheet).entries for f in e.findings if f.check == "tone"]
    rules = DEFAULT_RULES_TEXT + (
        "  - phrase: unacceptable behaviour\n    level: error\n"
        "    why: Sounds like a telling-off.\n    instead: Let's fix it.\n")
    sheet.write({"_sheet/checks.yml": rules}, message="new rule", author=TARA)
    report = check_sheet(sheet)
    found = [f for e in report.entries for f in e.findings if f.check == "tone"]
    assert [f.excerpt for f in found] == ["unacceptable behaviour"]


def test_a_broken_rules_file_is_reported(tmp_path):
    store = ContentStore.create(tmp_path / "c", dict(SMALL_SHEET, **{
        "_sheet/checks.yml": "rules:\n  - phrase: '(unclosed'\n    regex: true\n"}), "start")
    report = check_sheet(Sheet(store))
    assert any("not a valid pattern" in p for p in report.problems)


def _run_check(tmp_path, files):
    seed = tmp_path / "seed"
    for rel, text in files.items():
        (seed / rel).parent.mkdir(parents=True, exist_ok=True)
        (seed / rel).write_text(text)
    env = {"KB_INSTANCE_DIR": str(tmp_path / "inst"), "KB_SEED_DIR": str(seed)}
    return CliRunner().invoke(main, ["--data-dir", str(tmp_path / "content"), "--index-dir",
                                     str(tmp_path / "index"), "check"], env=env)


def test_kb_check_passes_a_clean_sheet_and_fails_a_planted_bad_answer(tmp_path):
    clean = _run_check(tmp_path / "a", SMALL_SHEET)
    assert clean.exit_code == 0, clean.output
    assert "0 errors" in clean.output
    bad = dict(SMALL_SHEET, **{"rude.md": entry_text("Rude", "Calm down. That's not my job.")})
    result = _run_check(tmp_path / "b", bad)
    assert result.exit_code == 1
    assert "rude: [error] tone" in result.output and "calm down" in result.output.lower()


def test_starter_sheet_passes(tmp_path):
    store = ContentStore.open_or_create(tmp_path / "c", STARTER)
    report = check_sheet(Sheet(store))
    assert len(report.entries) >= 40
    errors = [(e.slug, f.message) for e in report.entries for f in e.findings
              if f.level == "error"]
    assert errors == [] and report.problems == []
